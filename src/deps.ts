import type { Redis } from 'ioredis';
import { accountSecretsFromEnv } from './accounts/accounts.js';
import { withAccountHealth } from './accounts/call-health.js';
import { createAccountRegistry, type AccountCache, type AccountRegistry } from './accounts/registry.js';
import { createBackgroundWork, type BackgroundWork } from './background-work.js';
import { ConfigError, type Env } from './config/env.js';
import { closeConfiguredSinks } from './events/sinks.js';
import { createDatabase, type Database } from './db/client.js';
import { createInProcessLocker } from './lock/in-process-locker.js';
import type { Locker } from './lock/locker.js';
import { createRedisClients, createRedlockLocker } from './lock/redlock-locker.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { errorMessage } from './primitives/error-message.js';
import { createRateLimitPauses, withRateLimitPauses, type RateLimitPauses } from './providers/rate-limit-pause.js';
import type { AccountCredentialsSource, Providers } from './providers/types.js';
import type { SyncDeps } from './payments/sync-payment.js';
import { createRecentFetches } from './payments/recent-fetches.js';
import { createBankFeed, type BankFeed } from './bank/feed.js';
import { createSchedulePoll } from './poller/schedule.js';
import { createJobState, type JobState } from './job-state.js';
import type { Slots } from './primitives/slots.js';
import { createGoCardlessSyncSlots } from './webhooks/gocardless-receipts.js';

export interface Clock {
  now(): Date;
}

export interface Deps extends SyncDeps, JobState {
  env: Env;
  database: Database;
  redis: Redis[];
  clock: Clock;
  /** Provider accounts paused by a 429, shared by every process. */
  rateLimitPauses: RateLimitPauses;
  /** Work a request started and does not wait for; drained before close. */
  background: BackgroundWork;
  /** GoCardless Bank Account Data, when GOCARDLESS_BANK_SECRET_ID and _KEY are set. */
  bank: BankFeed | null;
  /** GoCardless payment syncs under way in this instance, across every batch (src/webhooks/gocardless-receipts.ts). */
  gocardlessSyncSlots: Slots;
  /** The accounts created at runtime, cached in memory (src/accounts/registry.ts). */
  accounts: AccountRegistry;
  /** Stops everything buildDeps started. */
  close(): Promise<void>;
}

export interface BuildOverrides {
  /**
   * The provider clients, or a factory given the stored accounts' credentials (the
   * registry buildDeps creates): `(accounts) => createProvidersFromEnv(env, accounts)`.
   */
  providers?: Providers | ((accounts: AccountCredentialsSource) => Providers);
  /** Hear account changes with LISTEN (default true); Workers cannot keep the connection and re-read on a short TTL. */
  listenForAccounts?: boolean;
  /** The accounts' cache, when it must outlive these deps (a Worker's isolate). */
  accountCache?: AccountCache;
  logger?: Logger;
  locker?: Locker;
  lockKeyPrefix?: string;
  defaultMetrics?: boolean;
  /** Replaces the bank feed's HTTP transport (tests count calls through it). */
  bankFetch?: typeof fetch;
}

/** The composition root: the one place that creates the db, redis, locker, clients and logger. */
export function buildDeps(env: Env, overrides: BuildOverrides = {}): Deps {
  const logger = overrides.logger ?? createLogger(env.LOG_LEVEL);
  const metrics = createMetrics({ defaultMetrics: overrides.defaultMetrics ?? false });
  if (!env.DATABASE_URL) throw new ConfigError(['DATABASE_URL: required (the Node entry starts an embedded Postgres when it is unset)']);
  const database = createDatabase(env.DATABASE_URL, { max: env.DATABASE_POOL_SIZE, writeBatchMax: env.WRITE_BATCH_MAX });
  const redis = env.REDIS_URL.length > 0 ? createRedisClients(env.REDIS_URL, env.REDIS_TIMEOUT_MS) : [];
  for (const client of redis) {
    // Connection errors are expected during outages; the locker reports what they cost.
    client.on('error', () => {});
  }
  const locker =
    overrides.locker ??
    (redis.length > 0
      ? createRedlockLocker(redis, {
          ttlMs: env.LOCK_TTL_MS,
          waitMs: env.LOCK_WAIT_MS,
          keyPrefix: overrides.lockKeyPrefix,
          logger,
          onLost: () => metrics.lockOutcomes.inc({ outcome: 'lost' }),
        })
      : createInProcessLocker({ waitMs: env.LOCK_WAIT_MS }));
  // Every provider call, whatever the path, first checks whether its account is paused by a 429.
  const rateLimitPauses = createRateLimitPauses(database.db, (error) =>
    logger.warn({ err: errorMessage(error) }, 'rate-limit pause state unreadable'),
  );
  const accounts = createAccountRegistry({
    db: database.db,
    ...(overrides.listenForAccounts === false ? {} : { listenSql: database.sql }),
    secrets: accountSecretsFromEnv(env),
    env,
    locker,
    logger,
    ...(overrides.accountCache ? { cache: overrides.accountCache } : {}),
  });
  const baseProviders = typeof overrides.providers === 'function' ? overrides.providers(accounts) : (overrides.providers ?? {});
  // Inside the 429 pauses: a call refused for a pause never reached the provider and says nothing about the account.
  const providers: Providers = withRateLimitPauses(withAccountHealth(baseProviders, { db: database.db, logger, accounts }), rateLimitPauses);
  const background = createBackgroundWork((error) =>
    logger.error({ err: errorMessage(error) }, 'background work failed'),
  );

  const deps: Deps = {
    env,
    database,
    db: database.db,
    redis,
    locker,
    providers,
    accounts,
    rateLimitPauses,
    logger,
    metrics,
    ...createJobState({ env, redis, logger }),
    clock: { now: () => new Date() },
    recentFetches: createRecentFetches({
      redis: redis[0],
      keyPrefix: overrides.lockKeyPrefix,
      windows: { foundMs: env.WEBHOOK_REFETCH_WINDOW_MS, notFoundMs: env.WEBHOOK_NOT_FOUND_WINDOW_MS },
      onRedisError: (op) => metrics.recentFetchErrors.inc({ op }),
    }),
    // Every write of a non-final payment schedules its next poll (src/poller/schedule.ts).
    schedulePoll: createSchedulePoll(),
    background,
    bank: createBankFeed(env, database.db, { fetch: overrides.bankFetch, logger }),
    gocardlessSyncSlots: createGoCardlessSyncSlots(),
    async close() {
      await background.drain();
      // Broker sinks hold connections (and reconnect timers) open until told otherwise.
      await closeConfiguredSinks(deps);
      await locker.close();
      await accounts.close();
      // quit() waits for a reply that a Redis in the middle of an outage never sends.
      await Promise.all(redis.map((client) => (client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect())));
      await database.close();
    },
  };
  return deps;
}

/**
 * Waits (bounded) for the Redis clients' first connection, so the first requests after
 * start-up take the lock instead of falling back while the socket is still opening.
 * A Redis that stays away is not fatal: the gateway runs on the database's guarantees.
 */
export async function waitForRedis(deps: Pick<Deps, 'redis' | 'logger'>, timeoutMs = 2000): Promise<boolean> {
  const ready = (client: Deps['redis'][number]) =>
    client.status === 'ready'
      ? Promise.resolve(true)
      : new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), timeoutMs);
          client.once('ready', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
  const results = await Promise.all(deps.redis.map(ready));
  const ok = results.every(Boolean);
  if (!ok) deps.logger.warn({ timeoutMs }, 'Redis not reachable at start-up; running on database guarantees until it is');
  return ok;
}
