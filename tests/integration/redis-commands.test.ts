/**
 * What a webhook costs in Redis commands. Two gateway instances (separate memory, as two
 * processes would) share a private Redis that nothing else talks to, so its command
 * counters are theirs alone: a fresh payment's webhook takes the lock, reads the fetch
 * record under it, records its fetch and releases (four commands in two round trips: the
 * read travels with the lock attempt, the record with the release; the read before the
 * lock is answered from memory); webhooks for an id this process fetched or has read
 * cost none; an id fetched by the other process costs one lock, read and release here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import Redlock from 'redlock';
import type { Deps } from '../../src/deps.js';
import { waitForRedis } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createRedlockLocker, pooledLockValues } from '../../src/lock/redlock-locker.js';
import { createRecentFetches, decideFromRecentFetch } from '../../src/payments/recent-fetches.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';
import { startRedisServer } from '../helpers/processes.js';

let database: TestDatabase;
let mollie: MollieSandbox;
let redisServer: Awaited<ReturnType<typeof startRedisServer>>;
let admin: Redis;
const opened: Deps[] = [];

function instance() {
  const deps = buildTestDeps(
    {
      DATABASE_URL: database.url,
      REDIS_URL: redisServer.url,
      WEBHOOK_REFETCH_WINDOW_MS: '60000',
      WEBHOOK_NOT_FOUND_WINDOW_MS: '60000',
    },
    { providers: { mollie: createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: mollie.url }) } },
  );
  opened.push(deps);
  return { deps, app: createApp(deps) };
}

type Instance = ReturnType<typeof instance>;

/** One classic (anonymous) webhook, and whatever it left running, through. */
async function webhook({ deps, app }: Instance, id: string): Promise<void> {
  const response = await app.request('/webhooks/mollie', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `id=${id}`,
  });
  expect(response.status).toBe(200);
  await deps.background.drain();
}

/**
 * The commands the gateways send while `work` runs, by name, as MONITOR sees them (the
 * commands a script runs inside Redis are its own, not sent: those are left out). A marker
 * sent after the work tells when every command before it has been seen.
 */
async function counted(work: () => Promise<void>): Promise<Record<string, number>> {
  const monitor = await admin.monitor();
  const counts: Record<string, number> = {};
  const marker = `counted:${Math.random()}`;
  let seen!: () => void;
  const markerSeen = new Promise<void>((resolve) => (seen = resolve));
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0] === 'echo' && args[1] === marker) return seen();
    if (source === 'lua') return;
    const name = args[0]!.toLowerCase();
    counts[name] = (counts[name] ?? 0) + 1;
  });
  try {
    await work();
    await admin.echo(marker);
    await markerSeen;
  } finally {
    monitor.disconnect();
  }
  return counts;
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, n) => sum + n, 0);

/**
 * How many writes the gateway's Redis connection makes while `work` runs. Webhooks sent one
 * at a time wait for each answer, so each write is a round trip: auto-pipelining puts the
 * commands sent together (the lock attempt and the read under it; the record and the
 * release) in one write.
 */
async function writes(deps: Deps, work: () => Promise<void>): Promise<number> {
  const socket = deps.redis[0]!.stream;
  const write = socket.write;
  let n = 0;
  socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
    n++;
    return write.apply(this, args);
  } as typeof write;
  try {
    await work();
    // The last release is sent as its work ends, on the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    socket.write = write;
  }
  return n;
}

beforeAll(async () => {
  [database, mollie, redisServer] = await Promise.all([createTestDatabase(), startMollieSandbox(), startRedisServer()]);
  admin = new Redis(redisServer.url, { maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  for (const deps of opened) await deps.close();
  admin?.disconnect();
  await redisServer?.kill();
  await mollie?.close();
  await database?.drop();
});

describe('Redis commands per webhook', () => {
  it('a fresh payment costs four; repeats cost none in the process that knows the fetch, and one lock and read in the other', async () => {
    const a = instance();
    const b = instance();
    expect(await waitForRedis(a.deps)).toBe(true);
    expect(await waitForRedis(b.deps)).toBe(true);
    // Each connection's first use of a script sends its text once: not what this counts.
    for (const gateway of [a, b]) await webhook(gateway, mollie.createPayment({ status: 'paid' }).id);

    const fresh = Array.from({ length: 40 }, () => mollie.createPayment({ status: 'paid' }).id);
    let roundTrips = 0;
    const first = await counted(async () => {
      roundTrips = await writes(a.deps, async () => {
        for (const id of fresh) await webhook(a, id);
      });
    });
    expect(total(first), JSON.stringify(first)).toBeLessThanOrEqual(4 * fresh.length);
    // Two round trips each: the lock with the read, then the record with the release (the
    // release is not waited for, so it may share a write with the next webhook's lock).
    expect(roundTrips).toBeLessThanOrEqual(2 * fresh.length);
    for (const id of fresh) expect(mollie.requestCount(id), id).toBe(1);

    // The same ids again, in the process that fetched them: its memory holds them to the window.
    const again = await counted(async () => {
      for (const id of fresh) for (let i = 0; i < 3; i++) await webhook(a, id);
    });
    expect(again).toEqual({});

    // In the other process: the first webhook per id takes the lock and reads the record
    // under it (held to the window, no fetch); memory answers the rest.
    const elsewhere = await counted(async () => {
      for (const id of fresh) for (let i = 0; i < 3; i++) await webhook(b, id);
    });
    expect(total(elsewhere), JSON.stringify(elsewhere)).toBeLessThanOrEqual(3 * fresh.length);
    for (const id of fresh) expect(mollie.requestCount(id), id).toBe(1);
    process.stdout.write(
      `redis commands: ${fresh.length} fresh webhooks ${JSON.stringify(first)} in ${roundTrips} round trips; ${3 * fresh.length} repeats where fetched ${JSON.stringify(again)}; ${3 * fresh.length} repeats in the other process ${JSON.stringify(elsewhere)}\n`,
    );
  }, 60_000);

  it('a burst of webhooks at once for an id the other process fetched: one lock and read, then memory answers', async () => {
    const a = instance();
    const b = instance();
    expect(await waitForRedis(a.deps)).toBe(true);
    expect(await waitForRedis(b.deps)).toBe(true);
    for (const gateway of [a, b]) await webhook(gateway, mollie.createPayment({ status: 'paid' }).id);
    const ids = Array.from({ length: 8 }, () => mollie.createPayment({ status: 'paid' }).id);
    for (const id of ids) await webhook(a, id);

    const burst = await counted(async () => {
      await Promise.all(ids.flatMap((id) => Array.from({ length: 5 }, () => webhook(b, id))));
    });
    process.stdout.write(`redis commands: ${5 * ids.length} webhooks at once for ${ids.length} ids fetched elsewhere ${JSON.stringify(burst)}\n`);
    expect(total(burst), JSON.stringify(burst)).toBeLessThanOrEqual(3 * ids.length);
    for (const id of ids) expect(mollie.requestCount(id), id).toBe(1);
  }, 60_000);
});

describe('the fetch record in memory beside Redis', () => {
  it('memory is read with no command, learns the later record from Redis, and never goes back to an earlier one', async () => {
    const windows = { foundMs: 60_000, notFoundMs: 60_000 };
    const keyPrefix = `memory-${Date.now()}:`;
    const clients = [new Redis(redisServer.url), new Redis(redisServer.url)];
    const [a, b] = clients.map((redis) => createRecentFetches({ redis, keyPrefix, windows }));
    try {
      // Queued until each connection is ready: the records below must reach Redis.
      await Promise.all(clients.map((redis) => redis.ping()));
      const t = Date.now();
      await a!.record('mollie:default:tr_1', { startedAt: t, outcome: 'found' });
      const reads = await counted(async () => {
        expect(b!.peek('mollie:default:tr_1')).toBeNull();
        expect(a!.peek('mollie:default:tr_1')).toEqual({ startedAt: t, outcome: 'found' });
      });
      expect(reads).toEqual({});
      expect(await b!.get('mollie:default:tr_1')).toEqual({ startedAt: t, outcome: 'found' });
      expect(b!.peek('mollie:default:tr_1')).toEqual({ startedAt: t, outcome: 'found' });

      // A later fetch elsewhere: b's memory is older than Redis until b reads Redis again.
      await a!.record('mollie:default:tr_1', { startedAt: t + 2000, outcome: 'found' });
      const trigger = { at: t + 1000, mayWait: true };
      // From the older record the webhook waits (a delay, no call); Redis would answer it.
      expect(decideFromRecentFetch(b!.peek('mollie:default:tr_1'), trigger, t + 1000, windows).kind).toBe('wait');
      expect(decideFromRecentFetch(await b!.get('mollie:default:tr_1'), trigger, t + 1000, windows).kind).toBe('answered');
      expect(b!.peek('mollie:default:tr_1')?.startedAt).toBe(t + 2000);

      // An earlier fetch recorded late replaces neither.
      await b!.record('mollie:default:tr_1', { startedAt: t + 1500, outcome: 'found' });
      expect(b!.peek('mollie:default:tr_1')?.startedAt).toBe(t + 2000);
      expect((await a!.get('mollie:default:tr_1'))?.startedAt).toBe(t + 2000);
    } finally {
      for (const redis of clients) redis.disconnect();
    }
  });
});

describe('lock values', () => {
  it('each lock holds its own 16 random bytes in hex, drawn from a pool, and is released', async () => {
    // The locker gives redlock its values through this method (redlock-locker.ts).
    expect(typeof (Redlock.prototype as unknown as { _random?: unknown })._random).toBe('function');
    const next = pooledLockValues();
    const drawn = Array.from({ length: 1000 }, () => next());
    expect(drawn.filter((value) => !/^[0-9a-f]{32}$/.test(value))).toEqual([]);
    expect(new Set(drawn).size).toBe(drawn.length);

    const redis = new Redis(redisServer.url);
    try {
      await redis.ping();
      const locker = createRedlockLocker([redis], { ttlMs: 5000, waitMs: 1000, keyPrefix: 'values:' });
      // More locks than one pool holds (256).
      const held = await Promise.all(Array.from({ length: 600 }, (_, i) => locker.withLock(`k${i}`, async () => redis.get(`values:k${i}`))));
      expect(held.filter((value) => !/^[0-9a-f]{32}$/.test(value ?? ''))).toEqual([]);
      expect(new Set(held).size).toBe(held.length);
      expect(await redis.keys('values:*')).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('withLock returns without waiting for the release, yet the next attempt on the connection finds the lock free; close() waits for releases under way', async () => {
    const redis = new Redis(redisServer.url);
    try {
      await redis.ping();
      // No wait at all: an attempt that found the lock still held would throw LockBusyError.
      const locker = createRedlockLocker([redis], { ttlMs: 5000, waitMs: 0, keyPrefix: 'release:' });
      for (let i = 0; i < 50; i++) await locker.withLock('same', async () => {});
      expect(await admin.keys('release:*')).toEqual([]);

      // Redis holds back scripts (the release) for a moment, not reads: withLock has returned
      // while its lock is still there, and close() returns only once it is gone.
      await locker.withLock('paused', async () => {
        await admin.call('client', 'pause', '400', 'write');
      });
      const returnedAt = Date.now();
      expect(await admin.exists('release:paused')).toBe(1);
      await locker.close();
      expect(Date.now() - returnedAt).toBeGreaterThanOrEqual(300);
      expect(await admin.exists('release:paused')).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});
