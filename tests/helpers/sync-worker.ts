/**
 * A separate OS process that fires syncPayment calls at scheduled instants against a
 * shared database, Redis and scripted provider timeline, then prints a JSON summary.
 * Used by the concurrency tests to race real processes, not just promises.
 */
import { parseEnv } from '../../src/config/env.js';
import { buildDeps, waitForRedis } from '../../src/deps.js';
import { createRedisClients, createRedlockLocker } from '../../src/lock/redlock-locker.js';
import { createLogger } from '../../src/observability/logger.js';
import { syncPayment } from '../../src/payments/sync-payment.js';
import { createScriptedProvider, type TimelineStep } from '../../src/sandbox/scripted-provider.js';
import type { ProviderName } from '../../src/providers/types.js';
import { readLine } from './processes.js';

export interface WorkerConfig {
  databaseUrl: string;
  redisUrl?: string;
  lockPrefix: string;
  provider: ProviderName;
  paymentId: string;
  /** Epoch ms at which the provider timeline starts; sent on stdin once every worker is READY. */
  timelineStart?: number;
  steps: TimelineStep[];
  /** When each call fires, in ms after the timeline start. */
  callOffsetsMs: number[];
  latencyMs: number;
  lockTtlMs: number;
  autoExtend: boolean;
  lockWaitMs: number;
}

const config = JSON.parse(process.env.SYNC_WORKER_CONFIG!) as WorkerConfig;
const env = parseEnv({
  DATABASE_URL: config.databaseUrl,
  REDIS_URL: config.redisUrl,
  LOG_LEVEL: 'silent',
  REDIS_TIMEOUT_MS: '200',
  DATABASE_POOL_SIZE: '20',
});
const logger = createLogger('silent');
const provider = createScriptedProvider({
  name: config.provider,
  latencyMs: config.latencyMs,
  normalise: config.provider === 'gocardless' ? (status) => (status === 'confirmed' || status === 'paid_out' ? 'paid' : status === 'failed' ? 'failed' : 'pending') : undefined,
});

const redis = config.redisUrl ? createRedisClients([config.redisUrl], 200) : [];
for (const client of redis) client.on('error', () => {});
const locker = redis.length
  ? createRedlockLocker(redis, { ttlMs: config.lockTtlMs, waitMs: config.lockWaitMs, autoExtend: config.autoExtend, keyPrefix: config.lockPrefix })
  : undefined;
const deps = buildDeps(env, { providers: { [config.provider]: provider }, logger, locker });
deps.redis.push(...redis);
// As the gateway does at start-up: take the lock from the first call, not a fallback.
await waitForRedis(deps, 5000);

// Booted: say so, and wait for the shared start time.
process.stdout.write('READY\n');
const timelineStart = Number(await readLine());
provider.script({ id: config.paymentId, startedAt: timelineStart, steps: config.steps });

const outcomes: Record<string, number> = {};
const observed = new Set<string>();
const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);

await Promise.all(
  config.callOffsetsMs.map(async (offset) => {
    const at = timelineStart + offset;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
    const seen = provider.statusAt(config.paymentId, Date.now());
    try {
      const result = await syncPayment(deps, {
        provider: config.provider,
        account: 'default',
        providerPaymentId: config.paymentId,
        source: 'poll',
        lockWaitMs: config.lockWaitMs,
      });
      count(`sync:${result.outcome}`);
      count(`lock:${result.lock}`);
      if (seen) observed.add(seen);
    } catch (error) {
      count(`error:${(error as Error).name}`);
    }
  }),
);

const metrics = await deps.metrics.lockOutcomes.get();
const lockOutcomes = Object.fromEntries(metrics.values.map((value) => [value.labels.outcome, value.value]));
process.stdout.write(`${JSON.stringify({ outcomes, observed: [...observed], lockOutcomes })}\n`);
await deps.close();
process.exit(0);
