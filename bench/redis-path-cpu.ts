/**
 * CPU per webhook of the Redis part of a sync, with the gateway's own code: the lock
 * (createRedlockLocker: acquire, release), the recent-fetch read under it and the record
 * (createRecentFetches), 32 webhooks in flight, against a Redis of its own started on a free
 * port; for each ioredis client setting named, alternating round by round:
 *
 *   npx tsx bench/redis-path-cpu.ts [--ops=20000] [--rounds=3]
 *
 * Prints this process's CPU microseconds (user + system) per webhook; Redis's own CPU is not counted.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { createRedlockLocker } from '../src/lock/redlock-locker.js';
import { createRecentFetches } from '../src/payments/recent-fetches.js';

const option = (name: string, fallback: number) => Number(process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const ops = option('ops', 20000);
const rounds = option('rounds', 3);

const port = await new Promise<number>((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const address = server.address();
    server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
  });
});
const redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((resolve) => setTimeout(resolve, 300));

const base: RedisOptions = { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: false };
const variants: Record<string, RedisOptions> = {
  'auto-pipelining, 200 ms command timeout (as shipped)': { ...base, enableAutoPipelining: true, commandTimeout: 200 },
  'auto-pipelining, no command timeout': { ...base, enableAutoPipelining: true },
  'no auto-pipelining, 200 ms command timeout': { ...base, enableAutoPipelining: false, commandTimeout: 200 },
  'no auto-pipelining, no command timeout': { ...base, enableAutoPipelining: false },
};

const setups = await Promise.all(
  Object.entries(variants).map(async ([name, options]) => {
    const client = new Redis(`redis://127.0.0.1:${port}`, { ...options, retryStrategy: () => 50 });
    await new Promise((resolve) => client.once('ready', resolve));
    const locker = createRedlockLocker([client], { ttlMs: 10_000, waitMs: 2_000, keyPrefix: `${name.length}:` });
    const recent = createRecentFetches({ redis: client, keyPrefix: `${name.length}:`, windows: { foundMs: 10_000, notFoundMs: 60_000 } });
    return { name, client, locker, recent };
  }),
);

let serial = 0;
async function pass(setup: (typeof setups)[number]): Promise<number> {
  let left = ops;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (left-- > 0) {
        const key = `payment:mollie:tr_${serial++}`;
        await setup.locker.withLock(key, async () => {
          await setup.recent.get(key);
          await setup.recent.record(key, { startedAt: Date.now(), outcome: 'found' });
        });
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / ops;
}

for (const setup of setups) await pass(setup);
const results = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) for (const setup of setups) results.set(setup.name, [...(results.get(setup.name) ?? []), await pass(setup)]);
for (const [name, perOp] of results) console.log(`${name.padEnd(56)} ${perOp.map((us) => us.toFixed(0)).join(', ')} µs per webhook`);
for (const setup of setups) setup.client.disconnect();
redisServer.kill();
process.exit(0);
