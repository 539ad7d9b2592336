/**
 * Is polling working, per provider account? The state lives in poller_health, shared by
 * every gateway process, so one process's failures and another's successes add up to
 * one picture, and a flip to degraded (or back) is announced exactly once: the flip is
 * a guarded state change made under the row's lock, and its event is written in the
 * same transaction with a dedupe key naming the episode.
 */
import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { DbOrTx } from '../db/client.js';
import { enqueueEvents, type NewOutboxEvent } from '../events/outbox.js';
import type { Metrics } from '../observability/metrics.js';
import type { ProviderName } from '../providers/types.js';

export interface HealthThresholds {
  /** This many failed polls in a row (no success between) degrade the account. */
  degradeAfterFailures: number;
  /** Or: at least two failures in a row and no success for this long. */
  degradeAfterMs: number;
}

export interface AccountHealth {
  provider: ProviderName;
  account: string;
  state: 'healthy' | 'degraded';
  consecutiveFailures: number;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  lastError: string | null;
  stateChangedAt: Date;
  pausedUntil: Date | null;
}

export type HealthFlip = 'degrade' | 'recover' | null;

/** The rule, pure. `now` is the database's clock, like the timestamps it compares. */
export function healthTransition(row: AccountHealth, now: Date, thresholds: HealthThresholds): HealthFlip {
  if (row.state === 'healthy') {
    if (row.consecutiveFailures >= thresholds.degradeAfterFailures) return 'degrade';
    // A never-successful account counts from when its health row appeared.
    const lastGood = row.lastSuccessAt ?? row.stateChangedAt;
    if (row.consecutiveFailures >= 2 && now.getTime() - lastGood.getTime() >= thresholds.degradeAfterMs) return 'degrade';
    return null;
  }
  if (row.consecutiveFailures === 0 && row.lastSuccessAt !== null && row.lastSuccessAt > row.stateChangedAt) return 'recover';
  return null;
}

export interface AccountOutcome {
  provider: ProviderName;
  account: string;
  successes: number;
  /** Failures after the last success of the pass (all of them when none succeeded). */
  trailingFailures: number;
  lastError: string | null;
}

/** Records one pass's results per account. Rows are locked in a fixed order so concurrent passes cannot deadlock. */
export async function recordPollOutcomes(db: DbOrTx, outcomes: AccountOutcome[]): Promise<void> {
  const rows = outcomes
    .filter((o) => o.successes > 0 || o.trailingFailures > 0)
    .sort((a, b) => a.provider.localeCompare(b.provider) || a.account.localeCompare(b.account))
    .map((o) => ({ provider: o.provider, account: o.account, succeeded: o.successes > 0, failures: o.trailingFailures, last_error: o.lastError }));
  if (rows.length === 0) return;
  await db.execute(sql`
    insert into poller_health as h (provider, account, last_success_at, last_failure_at, last_error, consecutive_failures)
    select provider, account,
      case when succeeded then now() end,
      case when failures > 0 then now() end,
      last_error, failures
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(provider text, account text, succeeded boolean, failures int, last_error text)
    order by provider, account
    on conflict (provider, account) do update set
      last_success_at = coalesce(excluded.last_success_at, h.last_success_at),
      last_failure_at = coalesce(excluded.last_failure_at, h.last_failure_at),
      last_error = coalesce(excluded.last_error, h.last_error),
      -- A success ends the streak: only failures after it count.
      consecutive_failures = case when excluded.last_success_at is not null
        then excluded.consecutive_failures else h.consecutive_failures + excluded.consecutive_failures end`);
}

/** A provider's 429: every process stops leasing this account's payments until `until`. */
export async function pauseAccount(db: DbOrTx, provider: ProviderName, account: string, until: Date): Promise<void> {
  await db.execute(sql`
    insert into poller_health as h (provider, account, paused_until)
    values (${provider}, ${account}, ${until.toISOString()})
    on conflict (provider, account) do update set paused_until = greatest(h.paused_until, excluded.paused_until)`);
}

interface HealthRow {
  provider: ProviderName;
  account: string;
  state: string;
  consecutive_failures: number;
  last_success_at: Date | string | null;
  last_failure_at: Date | string | null;
  last_error: string | null;
  state_changed_at: Date | string;
  paused_until: Date | string | null;
  db_now: Date | string;
  [key: string]: unknown;
}

function toHealth(row: HealthRow): AccountHealth {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    provider: row.provider,
    account: row.account,
    state: row.state === 'degraded' ? 'degraded' : 'healthy',
    consecutiveFailures: row.consecutive_failures,
    lastSuccessAt: date(row.last_success_at),
    lastFailureAt: date(row.last_failure_at),
    lastError: row.last_error,
    stateChangedAt: new Date(row.state_changed_at),
    pausedUntil: date(row.paused_until),
  };
}

export interface AppliedFlip {
  flip: Exclude<HealthFlip, null>;
  health: AccountHealth;
  /** For degrade: when the episode began; for recover: when the episode that ended began. */
  episodeStart: Date;
  /** False when another process already announced it (the dedupe key matched). */
  announced: boolean;
}

/**
 * Flips the accounts' states where the rule says so and enqueues the event for each
 * flip, inside `tx`. Call it in the transaction that recorded the outcomes: that
 * transaction holds the rows' locks, so no other process evaluates them at the same time.
 */
export async function applyHealthFlips(
  tx: DbOrTx,
  accounts: Array<{ provider: ProviderName; account: string }>,
  thresholds: HealthThresholds,
): Promise<AppliedFlip[]> {
  if (accounts.length === 0) return [];
  const keys = JSON.stringify(accounts.map((a) => ({ provider: a.provider, account: a.account })));
  const rows = await tx.execute<HealthRow>(sql`
    select h.*, now() as db_now
    from poller_health h
    join jsonb_to_recordset(${keys}::jsonb) as k(provider text, account text) using (provider, account)
    order by h.provider, h.account
    for update of h`);
  const flips: AppliedFlip[] = [];
  for (const row of rows) {
    const health = toHealth(row);
    const now = new Date(row.db_now);
    const flip = healthTransition(health, now, thresholds);
    if (!flip) continue;
    const nextState = flip === 'degrade' ? 'degraded' : 'healthy';
    // Guarded by the state it read, under the row lock taken above.
    await tx.execute(sql`
      update poller_health set state = ${nextState}, state_changed_at = ${now.toISOString()}
      where provider = ${health.provider} and account = ${health.account} and state = ${health.state}`);
    const episodeStart = flip === 'degrade' ? now : health.stateChangedAt;
    const event = flipEvent(flip, health, now, thresholds);
    const added = await enqueueEvents(tx, [event]);
    flips.push({ flip, health: { ...health, state: nextState, stateChangedAt: now }, episodeStart, announced: added.length > 0 });
  }
  return flips;
}

function flipEvent(flip: Exclude<HealthFlip, null>, health: AccountHealth, now: Date, thresholds: HealthThresholds): NewOutboxEvent {
  const base = {
    // Tells these apart from the fleet-wide gateway.poller.stalled / recovered (fleet.ts).
    scope: 'account',
    provider: health.provider,
    account: health.account,
    consecutiveFailures: health.consecutiveFailures,
    lastSuccessAt: health.lastSuccessAt?.toISOString() ?? null,
    lastFailureAt: health.lastFailureAt?.toISOString() ?? null,
  };
  if (flip === 'degrade') {
    return {
      type: 'gateway.poller.degraded',
      dedupeKey: `poller:degraded:${health.provider}:${health.account}:${now.getTime()}`,
      provider: health.provider,
      timestamp: now,
      data: {
        ...base,
        since: now.toISOString(),
        lastError: health.lastError,
        reason: health.consecutiveFailures >= thresholds.degradeAfterFailures ? 'consecutive_failures' : 'no_recent_success',
      },
    };
  }
  return {
    type: 'gateway.poller.recovered',
    // One recovery per degraded episode, named by when the episode began.
    dedupeKey: `poller:recovered:${health.provider}:${health.account}:${health.stateChangedAt.getTime()}`,
    provider: health.provider,
    timestamp: now,
    data: { ...base, degradedSince: health.stateChangedAt.toISOString(), recoveredAt: now.toISOString() },
  };
}

/** The loud part: an operator reading logs sees a degradation at error level. */
export function logHealthFlips(logger: Logger, flips: AppliedFlip[]): void {
  for (const { flip, health, episodeStart } of flips) {
    const fields = {
      job: 'poller',
      provider: health.provider,
      account: health.account,
      consecutiveFailures: health.consecutiveFailures,
      lastSuccessAt: health.lastSuccessAt?.toISOString() ?? null,
      lastError: health.lastError,
    };
    if (flip === 'degrade') {
      logger.error(fields, `poller DEGRADED for ${health.provider}/${health.account}: polls keep failing; payments are not being refreshed`);
    } else {
      logger.warn({ ...fields, degradedSince: episodeStart.toISOString() }, `poller recovered for ${health.provider}/${health.account}`);
    }
  }
}

export interface PollerAccountStatus {
  provider: string;
  account: string;
  state: 'healthy' | 'degraded';
  lastSuccessAt: string | null;
  consecutiveFailures: number;
  lastError: string | null;
  pausedUntil: string | null;
  /** Due payments not polled yet, and how long the oldest has waited. */
  due: number;
  lagSeconds: number;
}

interface LagRow {
  provider: string;
  account: string;
  due: number;
  lag_seconds: number;
  [key: string]: unknown;
}

/**
 * The shared health as /readyz and /metrics show it, read from the database on each
 * request: the lag keeps growing on the dashboards even when no poller runs anywhere
 * to report it (the failure this exists for).
 */
export async function readPollerHealth(db: DbOrTx, metrics?: Metrics): Promise<PollerAccountStatus[]> {
  const [health, lag] = await Promise.all([
    db.execute<HealthRow>(sql`select h.*, now() as db_now from poller_health h order by provider, account`),
    // Uses the partial index on next_poll_at; leased payments are not due (see leases.ts).
    db.execute<LagRow>(sql`
      select provider, account, count(*)::int as due,
        extract(epoch from now() - min(next_poll_at))::float8 as lag_seconds
      from payments where next_poll_at <= now()
      group by provider, account`),
  ]);
  const byKey = new Map<string, PollerAccountStatus>();
  for (const row of health) {
    const h = toHealth(row);
    byKey.set(`${h.provider}\u0000${h.account}`, {
      provider: h.provider,
      account: h.account,
      state: h.state,
      lastSuccessAt: h.lastSuccessAt?.toISOString() ?? null,
      consecutiveFailures: h.consecutiveFailures,
      lastError: h.lastError,
      pausedUntil: h.pausedUntil && h.pausedUntil > new Date(row.db_now) ? h.pausedUntil.toISOString() : null,
      due: 0,
      lagSeconds: 0,
    });
  }
  for (const row of lag) {
    const key = `${row.provider}\u0000${row.account}`;
    const entry = byKey.get(key) ?? {
      provider: row.provider,
      account: row.account,
      state: 'healthy' as const,
      lastSuccessAt: null,
      consecutiveFailures: 0,
      lastError: null,
      pausedUntil: null,
      due: 0,
      lagSeconds: 0,
    };
    entry.due = Number(row.due);
    entry.lagSeconds = Math.max(0, Math.round(Number(row.lag_seconds) * 1000) / 1000);
    byKey.set(key, entry);
  }
  const accounts = [...byKey.values()];
  if (metrics) setPollerGauges(metrics, accounts);
  return accounts;
}

function setPollerGauges(metrics: Metrics, accounts: PollerAccountStatus[]): void {
  // Reset first: an account that vanished must not keep its last value forever.
  metrics.pollerLastSuccess.reset();
  metrics.pollerConsecutiveFailures.reset();
  metrics.pollerLag.reset();
  metrics.pollerDegraded.reset();
  // Stored accounts (thousands of merchants) share one series per provider, `account="stored"`,
  // holding the worst of them: the oldest last success, the most failures in a row, the
  // largest lag, degraded when any is. The env's `default` keeps its own series.
  const folded = new Map<string, { provider: string; account: string; lastSuccess: number; failures: number; lag: number; degraded: number }>();
  for (const a of accounts) {
    const account = a.account === 'default' ? 'default' : 'stored';
    const key = `${a.provider}\u0000${account}`;
    const lastSuccess = a.lastSuccessAt ? Date.parse(a.lastSuccessAt) / 1000 : 0;
    const degraded = a.state === 'degraded' ? 1 : 0;
    const entry = folded.get(key);
    if (!entry) {
      folded.set(key, { provider: a.provider, account, lastSuccess, failures: a.consecutiveFailures, lag: a.lagSeconds, degraded });
      continue;
    }
    entry.lastSuccess = Math.min(entry.lastSuccess, lastSuccess);
    entry.failures = Math.max(entry.failures, a.consecutiveFailures);
    entry.lag = Math.max(entry.lag, a.lagSeconds);
    entry.degraded = Math.max(entry.degraded, degraded);
  }
  for (const entry of folded.values()) {
    const labels = { provider: entry.provider, account: entry.account };
    metrics.pollerLastSuccess.set(labels, entry.lastSuccess);
    metrics.pollerConsecutiveFailures.set(labels, entry.failures);
    metrics.pollerLag.set(labels, entry.lag);
    metrics.pollerDegraded.set(labels, entry.degraded);
  }
}
