/**
 * The status poller: polls every non-final payment when it is due, through syncPayment
 * (source 'poll'), so a payment whose webhook never came still reaches its final state.
 *
 * One pass (`pollOnce`): lease due payments (leases.ts), poll them with bounded
 * concurrency behind a token bucket per provider account, then in one transaction
 * release the leases with each payment's next time (schedule.ts), escalate payments
 * that outlived their expected life (`payment.stuck`, once), record the accounts'
 * health and announce degradation or recovery (health.ts). `runPoller` repeats passes
 * until its signal aborts; on abort it starts no new poll, lets the ones in flight
 * finish and releases every lease it holds.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Env } from '../config/env.js';
import type { DbOrTx } from '../db/client.js';
import { enqueueEvents, type NewOutboxEvent } from '../events/outbox.js';
import { LockBusyError } from '../lock/locker.js';
import { formatMinorUnits } from '../money.js';
import { syncPayment, type SyncDeps } from '../payments/sync-payment.js';
import { errorMessage } from '../primitives/error-message.js';
import { forEachLimited } from '../primitives/for-each-limited.js';
import { ProviderError, type ProviderName } from '../providers/types.js';
import {
  applyHealthFlips,
  logHealthFlips,
  pauseAccount,
  recordPollOutcomes,
  type AccountOutcome,
  type AppliedFlip,
  type HealthThresholds,
} from './health.js';
import { recordPollerPass } from './fleet.js';
import { leaseDuePolls, releasePolls, type LeasedPoll, type PollRelease, type ReleasedPayment } from './leases.js';
import { sleep } from '../abortable-sleep.js';
import { createTokenBucket, type RateLimiter } from './rate-limiter.js';
import { POLL_SCHEDULE, expectedFinalBy, isStuck, nextPollAt, profileFor, timingFromSnapshot, type PollSchedule } from './schedule.js';

export type PollerDeps = SyncDeps & { env: Env; pollerState: PollerProcessState };

export interface PollOnceOptions {
  /** At most this many payments are leased (default POLLER_BATCH_SIZE). */
  limit?: number;
  concurrency?: number;
  leaseMs?: number;
  /** How long a poll waits for a payment another trigger holds (then it comes back later). */
  lockWaitMs?: number;
  schedule?: PollSchedule;
  limiter?: RateLimiter;
  thresholds?: Partial<HealthThresholds>;
  /** Identifies this process's leases; default the owner in deps.pollerState. */
  owner?: string;
  /** When it aborts, polls not started yet are released instead of run. */
  signal?: AbortSignal;
  random?: () => number;
}

export interface RunPollerOptions extends PollOnceOptions {
  signal: AbortSignal;
  /** Pause when a pass found nothing due (default POLLER_IDLE_MS). */
  idleMs?: number;
}

export interface PollPassSummary {
  leased: number;
  polled: number;
  changed: number;
  failed: number;
  busy: number;
  rateLimited: number;
  skipped: number;
  released: number;
  stuck: number;
  flips: Array<{ provider: string; account: string; flip: 'degrade' | 'recover' }>;
}

type PollOutcome =
  | { kind: 'synced'; outcome: 'changed' | 'unchanged' | 'not_found' }
  | { kind: 'busy' }
  | { kind: 'rate_limited'; until: Date; error: string }
  | { kind: 'failed'; code: string; error: string }
  | { kind: 'skipped'; until?: Date };

const DEFAULT_RATE_LIMIT_PAUSE_MS = 30_000;
const MAX_RATE_LIMIT_PAUSE_MS = 60 * 60_000;
const DEFAULT_LOCK_WAIT_MS = 250;

/**
 * What one process's poller remembers between passes: its lease owner, its rate limiter
 * and its liveness. The composition root creates it (src/job-state.ts), so two gateways
 * in one process (tests) never share it.
 */
export interface PollerProcessState {
  owner: string;
  limiter: RateLimiter | null;
  running: boolean;
  lastPassAt: Date | null;
  lastPassError: string | null;
}

export function createPollerProcessState(): PollerProcessState {
  const pid = typeof process !== 'undefined' ? process.pid : 0;
  return { owner: `poller:${pid}:${randomUUID().slice(0, 8)}`, limiter: null, running: false, lastPassAt: null, lastPassError: null };
}

/** This process's poller, for /readyz: is the loop running, and when did it last finish a pass? */
export function pollerProcessStatus(deps: Pick<PollerDeps, 'pollerState'>): { running: boolean; owner: string; lastPassAt: string | null; lastPassError: string | null } {
  const state = deps.pollerState;
  return { running: state.running, owner: state.owner, lastPassAt: state.lastPassAt?.toISOString() ?? null, lastPassError: state.lastPassError };
}

function limiterFor(deps: PollerDeps): RateLimiter {
  const state = deps.pollerState;
  state.limiter ??= createTokenBucket({ ratePerSecond: deps.env.POLLER_RATE_PER_SECOND, burst: deps.env.POLLER_RATE_BURST });
  return state.limiter;
}

/**
 * One bounded pass: lease at most `limit` due payments, poll them, release them.
 * Safe to call from several processes at once (and from a cron trigger).
 */
export async function pollOnce(deps: PollerDeps, options: PollOnceOptions = {}): Promise<PollPassSummary> {
  const owner = options.owner ?? deps.pollerState.owner;
  const schedule = options.schedule ?? POLL_SCHEDULE;
  const random = options.random ?? Math.random;
  const limiter = options.limiter ?? limiterFor(deps);
  const thresholds: HealthThresholds = {
    degradeAfterFailures: options.thresholds?.degradeAfterFailures ?? deps.env.POLLER_DEGRADED_AFTER_FAILURES,
    degradeAfterMs: options.thresholds?.degradeAfterMs ?? deps.env.POLLER_DEGRADED_AFTER_MS,
  };
  const summary: PollPassSummary = { leased: 0, polled: 0, changed: 0, failed: 0, busy: 0, rateLimited: 0, skipped: 0, released: 0, stuck: 0, flips: [] };
  if (options.signal?.aborted) return summary;

  const providers = (Object.keys(deps.providers) as ProviderName[]).filter((name) => deps.providers[name]);
  const started = performance.now();
  const leased = await leaseDuePolls(deps.db, {
    owner,
    limit: passLimit(deps, options),
    leaseMs: options.leaseMs ?? deps.env.POLLER_LEASE_MS,
    providers,
  });
  summary.leased = leased.length;
  if (leased.length === 0) {
    await stampFleet(deps);
    return summary;
  }

  // Accounts a 429 paused during this pass: their remaining payments wait, unpolled.
  const paused = new Map<string, Date>();
  const outcomes = new Map<number, PollOutcome>();
  const perAccount = new Map<string, AccountOutcome>();
  const lockWaitMs = options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;

  await forEachLimited(leased, options.concurrency ?? deps.env.POLLER_CONCURRENCY, async (row) => {
    const outcome = await pollPayment(deps, row, { limiter, paused, lockWaitMs, signal: options.signal }).catch(
      (error: unknown): PollOutcome => ({ kind: 'failed', code: 'error', error: errorMessage(error) }),
    );
    outcomes.set(row.id, outcome);
    deps.metrics.pollerPolls.inc({ provider: row.provider, outcome: outcome.kind === 'synced' ? outcome.outcome : outcome.kind });
    tally(perAccount, row, outcome);
  });

  const now = new Date();
  const releases = leased.map((row) => releaseFor(schedule, row, outcomes.get(row.id) ?? { kind: 'skipped' }, now, random));
  const touched = [...perAccount.values()];
  // Release, escalation and health commit together: a crash leaves the leases to lapse
  // and the work to be redone, never a half-recorded pass.
  const { released, stuck, flips } = await deps.db.transaction(async (tx) => {
    const released = await releasePolls(tx, owner, releases);
    const stuck = await escalateStuck(tx, schedule, released, now);
    await recordPollOutcomes(tx, touched);
    const flips = await applyHealthFlips(tx, touched, thresholds);
    return { released, stuck, flips };
  });
  logHealthFlips(deps.logger, flips.filter((f) => f.announced));

  for (const outcome of outcomes.values()) {
    if (outcome.kind === 'synced') {
      summary.polled++;
      if (outcome.outcome === 'changed') summary.changed++;
    } else if (outcome.kind === 'failed') summary.failed++;
    else if (outcome.kind === 'busy') summary.busy++;
    else if (outcome.kind === 'rate_limited') summary.rateLimited++;
    else summary.skipped++;
  }
  summary.released = released.length;
  summary.stuck = stuck.length;
  summary.flips = flips.map((f: AppliedFlip) => ({ provider: f.health.provider, account: f.health.account, flip: f.flip }));

  const failures = touched.filter((a) => a.trailingFailures > 0);
  const fields = { job: 'poller', owner, ...summary, flips: summary.flips.length, durationMs: Math.round(performance.now() - started) };
  if (failures.length > 0) {
    deps.logger.warn({ ...fields, failing: failures.map((a) => ({ provider: a.provider, account: a.account, error: a.lastError })) }, 'poller pass had failures');
  } else {
    deps.logger.info(fields, 'poller pass');
  }
  await stampFleet(deps);
  return summary;
}

/** A completed pass, for the fleet's watchers (fleet.ts); the pass's own work is already committed. */
async function stampFleet(deps: PollerDeps): Promise<void> {
  await recordPollerPass(deps).catch((error: unknown) =>
    deps.logger.warn({ job: 'poller', err: errorMessage(error) }, 'could not record the completed pass for the fleet'),
  );
}

/** Repeats passes until the signal aborts; then finishes what is in flight and releases the rest. */
export async function runPoller(deps: PollerDeps, options: RunPollerOptions): Promise<void> {
  const state = deps.pollerState;
  const idleMs = options.idleMs ?? deps.env.POLLER_IDLE_MS;
  const limit = passLimit(deps, options);
  state.running = true;
  deps.logger.info({ job: 'poller', owner: options.owner ?? state.owner }, 'poller started');
  try {
    while (!options.signal.aborted) {
      let leased = 0;
      try {
        ({ leased } = await pollOnce(deps, options));
        state.lastPassError = null;
      } catch (error) {
        // A failing pass (database unreachable, ...) is loud and retried; the loop never dies silently.
        state.lastPassError = errorMessage(error);
        deps.logger.error({ job: 'poller', err: state.lastPassError }, 'poller pass failed');
      }
      state.lastPassAt = new Date();
      deps.metrics.pollerLastPass.set(state.lastPassAt.getTime() / 1000);
      // A full batch suggests more is due: go again at once.
      if (leased < limit || state.lastPassError) await sleep(idleMs, options.signal);
    }
  } finally {
    state.running = false;
    deps.metrics.pollerLastPass.set(0);
    deps.logger.info({ job: 'poller' }, 'poller stopped');
  }
}

/**
 * How many payments one pass may lease: the batch size, but never more than the token
 * bucket lets through in half a lease (for a single account, the worst case). A pass
 * that outlived its leases would let another process poll the same payments.
 */
function passLimit(deps: PollerDeps, options: PollOnceOptions): number {
  const leaseMs = options.leaseMs ?? deps.env.POLLER_LEASE_MS;
  const servable = Math.floor(deps.env.POLLER_RATE_BURST + (deps.env.POLLER_RATE_PER_SECOND * leaseMs) / 2000);
  return Math.max(1, Math.min(options.limit ?? deps.env.POLLER_BATCH_SIZE, servable));
}

interface PollContext {
  limiter: RateLimiter;
  paused: Map<string, Date>;
  lockWaitMs: number;
  signal?: AbortSignal;
}

function accountKey(row: { provider: string; account: string }): string {
  return `${row.provider}:${row.account}`;
}

async function pollPayment(deps: PollerDeps, row: LeasedPoll, ctx: PollContext): Promise<PollOutcome> {
  const key = accountKey(row);
  const pausedUntil = ctx.paused.get(key);
  if (pausedUntil) return { kind: 'skipped', until: pausedUntil };
  if (!(await ctx.limiter.take(key, ctx.signal))) return { kind: 'skipped' };
  // Checked again: a 429 may have arrived while this poll waited for its token.
  const pausedMeanwhile = ctx.paused.get(key);
  if (pausedMeanwhile) return { kind: 'skipped', until: pausedMeanwhile };
  try {
    const result = await syncPayment(deps, {
      provider: row.provider,
      account: row.account,
      providerPaymentId: row.providerPaymentId,
      source: 'poll',
      lockWaitMs: ctx.lockWaitMs,
    });
    return { kind: 'synced', outcome: result.outcome };
  } catch (error) {
    // Another trigger is syncing this payment right now; its write reschedules it.
    if (error instanceof LockBusyError) return { kind: 'busy' };
    if (error instanceof ProviderError && error.code === 'rate_limited') {
      const pauseMs = Math.min(MAX_RATE_LIMIT_PAUSE_MS, Math.max(1000, error.retryAfterMs ?? DEFAULT_RATE_LIMIT_PAUSE_MS));
      const until = new Date(Date.now() + pauseMs);
      ctx.paused.set(key, until);
      // Shared at once, so the other processes stop leasing this account too.
      await pauseAccount(deps.db, row.provider, row.account, until).catch((pauseError: unknown) =>
        deps.logger.warn({ job: 'poller', provider: row.provider, account: row.account, err: String(pauseError) }, 'could not record the rate-limit pause'),
      );
      return { kind: 'rate_limited', until, error: error.message };
    }
    const code = error instanceof ProviderError ? error.code : error instanceof Error ? error.name : 'error';
    return { kind: 'failed', code, error: errorMessage(error) };
  }
}

/** Per account, in completion order: a success resets the streak of failures. */
function tally(perAccount: Map<string, AccountOutcome>, row: LeasedPoll, outcome: PollOutcome): void {
  const key = accountKey(row);
  let entry = perAccount.get(key);
  if (!entry) {
    entry = { provider: row.provider, account: row.account, successes: 0, trailingFailures: 0, lastError: null };
    perAccount.set(key, entry);
  }
  switch (outcome.kind) {
    case 'synced':
      entry.successes++;
      entry.trailingFailures = 0;
      break;
    case 'failed':
    case 'rate_limited':
      // A 429 counts: an account the provider keeps refusing is not being polled.
      entry.trailingFailures++;
      entry.lastError = outcome.kind === 'failed' ? `${outcome.code}: ${outcome.error}` : `rate_limited: ${outcome.error}`;
      break;
    case 'busy':
    case 'skipped':
      break;
    default: {
      const unreachable: never = outcome;
      throw new Error(`unknown poll outcome ${JSON.stringify(unreachable)}`);
    }
  }
}

/** What the release writes for one leased payment, from how its poll went. */
function releaseFor(schedule: PollSchedule, row: LeasedPoll, outcome: PollOutcome, now: Date, random: () => number): PollRelease {
  const pace = { provider: row.provider, providerStatus: row.providerStatus, method: row.method };
  switch (outcome.kind) {
    case 'synced': {
      // Found nothing new (had it found a change, the write rescheduled the payment and the release keeps that).
      const attempts = row.changedSinceLastPoll ? 1 : row.pollAttempts + 1;
      const timing = timingFromSnapshot(row.provider, row.providerStatus, row.createdAt, row.snapshotHints);
      return { id: row.id, nextPollAt: nextPollAt(schedule, { ...pace, attempts, now, timing }, random()), attempts, polled: true };
    }
    case 'failed': {
      const attempts = row.pollAttempts + 1;
      return { id: row.id, nextPollAt: nextPollAt(schedule, { ...pace, attempts, now, failed: true }, random()), attempts, polled: false };
    }
    case 'busy':
      return { id: row.id, nextPollAt: new Date(now.getTime() + schedule.busyRetryMs), attempts: row.pollAttempts, polled: false };
    case 'rate_limited':
      return { id: row.id, nextPollAt: outcome.until, attempts: row.pollAttempts, polled: false };
    case 'skipped':
      // Not polled (shutdown, or its account got paused): due again as it was.
      return { id: row.id, nextPollAt: outcome.until ?? row.dueAt, attempts: row.pollAttempts, polled: false };
    default: {
      const unreachable: never = outcome;
      throw new Error(`unknown poll outcome ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * `payment.stuck`, once per payment: polled just now, still not final, and past its
 * expected end plus grace. stuck_notified_at (guarded) and the dedupe key both make it once.
 */
async function escalateStuck(tx: DbOrTx, schedule: PollSchedule, released: ReleasedPayment[], now: Date): Promise<ReleasedPayment[]> {
  const candidates = released.filter((p) => {
    if (!p.polled || p.stuckNotifiedAt !== null) return false;
    const timing = timingFromSnapshot(p.provider, p.providerStatus, p.createdAt, p.snapshotHints);
    return isStuck(schedule, p, timing, now);
  });
  if (candidates.length === 0) return [];
  const marked = await tx.execute<{ id: number }>(sql`
    update payments set stuck_notified_at = now()
    where id = any(${`{${candidates.map((p) => p.id).join(',')}}`}::bigint[]) and stuck_notified_at is null
    returning id`);
  const markedIds = new Set(marked.map((row) => Number(row.id)));
  const stuck = candidates.filter((p) => markedIds.has(p.id));
  const events: NewOutboxEvent[] = stuck.map((p) => {
    const timing = timingFromSnapshot(p.provider, p.providerStatus, p.createdAt, p.snapshotHints);
    return {
      type: 'payment.stuck',
      dedupeKey: `payment:stuck:${p.provider}:${p.providerPaymentId}`,
      provider: p.provider,
      providerPaymentId: p.providerPaymentId,
      timestamp: now,
      data: {
        provider: p.provider,
        account: p.account,
        paymentId: p.providerPaymentId,
        status: p.status,
        providerStatus: p.providerStatus,
        method: p.method,
        version: p.version,
        amount: { value: formatMinorUnits(p.amountMinor, p.currency), currency: p.currency, minor: p.amountMinor },
        createdAt: p.createdAt.toISOString(),
        expectedFinalBy: expectedFinalBy(schedule, p, timing).toISOString(),
        profile: profileFor(schedule, p).label,
      },
    };
  });
  await enqueueEvents(tx, events);
  return stuck;
}
