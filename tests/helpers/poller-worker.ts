/**
 * A separate OS process running the real poller loop (runPoller) against a shared
 * database and Redis, with an in-process scripted provider. Prints "ready" once
 * connected, optionally "fetch <id>" as each provider fetch starts, and on SIGTERM
 * stops the poller the way the gateway does and prints a JSON summary: how many times
 * this process fetched each payment.
 */
import { parseEnv } from '../../src/config/env.js';
import { buildDeps } from '../../src/deps.js';
import { createLogger } from '../../src/observability/logger.js';
import { runPoller } from '../../src/poller/poller.js';
import type { FetchResult, PaymentProvider } from '../../src/providers/types.js';
import { createScriptedProvider } from '../../src/sandbox/scripted-provider.js';
import { sql } from 'drizzle-orm';

export interface PollerWorkerConfig {
  /** Shows up as the lease owner, so the test can tell processes apart. */
  name: string;
  databaseUrl: string;
  redisUrl?: string;
  lockPrefix: string;
  /** Payments `${idPrefix}${i}` for i < count; even i are paid at the provider, odd i stay open. */
  idPrefix: string;
  count: number;
  latencyMs: number;
  reportFetches?: boolean;
  env?: Record<string, string>;
}

const config = JSON.parse(process.env.POLLER_WORKER_CONFIG!) as PollerWorkerConfig;
const env = parseEnv({
  DATABASE_URL: config.databaseUrl,
  REDIS_URL: config.redisUrl,
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  REDIS_TIMEOUT_MS: '500',
  LOCK_TTL_MS: '1000',
  POLLER_RATE_PER_SECOND: '100000',
  POLLER_RATE_BURST: '100000',
  POLLER_IDLE_MS: '50',
  ...config.env,
});

const scripted = createScriptedProvider({ name: 'mollie', latencyMs: config.latencyMs });
const startedAt = Date.now() - 60_000;
for (let i = 0; i < config.count; i++) {
  scripted.script({ id: `${config.idPrefix}${i}`, startedAt, steps: [{ atMs: 0, providerStatus: i % 2 === 0 ? 'paid' : 'open' }] });
}
const provider: PaymentProvider = {
  name: 'mollie',
  hasAccount: () => true,
  fetchPayment(account, id, options): Promise<FetchResult> {
    if (config.reportFetches) process.stdout.write(`fetch ${id}\n`);
    return scripted.fetchPayment(account, id, options);
  },
};

const deps = buildDeps(env, { providers: { mollie: provider }, logger: createLogger(env.LOG_LEVEL, process.stderr), lockKeyPrefix: config.lockPrefix });
await deps.db.execute(sql`select 1`);
// No offline queue (commands fail fast in an outage), so wait for the connection first.
await Promise.all(deps.redis.map((client) => (client.status === 'ready' ? undefined : new Promise((resolve) => client.once('ready', resolve)))));

const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
process.stdout.write('ready\n');

await runPoller(deps, { signal: controller.signal, owner: `${config.name}:${process.pid}` });

const fetches: Record<string, number> = {};
for (let i = 0; i < config.count; i++) {
  const id = `${config.idPrefix}${i}`;
  const count = scripted.fetchCount(id);
  if (count > 0) fetches[id] = count;
}
await deps.close();
process.stdout.write(`${JSON.stringify({ name: config.name, fetches })}\n`);
process.exit(0);
