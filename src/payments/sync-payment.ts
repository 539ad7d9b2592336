import type { Logger } from 'pino';
import type { FailureHint } from '../events/billing-facts.js';
import type { Db } from '../db/client.js';
import { LockBusyError, LockUnavailableError, paymentLockKey, type LockOptions, type Locker } from '../lock/locker.js';
import { outcomeLabel, type Metrics } from '../observability/metrics.js';
import { SPAN_ATTRIBUTES, currentTraceParent, withSpan } from '../observability/tracing.js';
import { errorMessage } from '../primitives/error-message.js';
import { ProviderError, type PaymentProvider, type ProviderName, type Providers } from '../providers/types.js';
import { settleReceipts } from '../db/queries/receipt-settlement.js';
import { applySnapshot, takeFetchFenceAt, type ApplyResult, type FetchFence, type SyncSource } from './apply-snapshot.js';
import { decideFromRecentFetch, RecentlyFetchedError, type FetchRecord, type RecentFetches } from './recent-fetches.js';

export interface SyncDeps {
  db: Db;
  locker: Locker;
  providers: Providers;
  logger: Logger;
  metrics: Metrics;
  /** When a just-written non-final payment should next be polled. */
  schedulePoll?: (input: { provider: ProviderName; providerStatus: string; method: string | null }) => Date | null;
  /** Remembers recent fetches so webhooks for an id just fetched cost no provider call (recent-fetches.ts). */
  recentFetches?: RecentFetches;
}

export interface SyncInput {
  provider: ProviderName;
  account: string;
  providerPaymentId: string;
  source: SyncSource;
  receiptId?: number | null;
  /** Pending receipts this sync answers: settled in the sync's own transaction (see ApplyInput). */
  settleReceiptIds?: number[];
  /** Overrides the locker's default wait (the return page waits longer than a webhook). */
  lockWaitMs?: number;
  /**
   * Webhooks only: when the newest trigger this sync answers reached the gateway (the
   * database's clock). A fetch that started later answers it without a call, and an id
   * fetched a moment ago makes it wait for the window's end (RecentlyFetchedError) when
   * `mayWait` (an anonymous trigger).
   */
  triggeredAt?: Date;
  mayWait?: boolean;
  /** Why the payment failed, when the trigger knows and the snapshot does not (GoCardless events). */
  failureHint?: FailureHint | null;
  /** The trigger was about a refund (a GoCardless refund event): the fetch lists the payment's refunds. */
  adjustments?: boolean;
}

type FetchOutcome = ({ outcome: 'changed' | 'unchanged' } & ApplyResult) | { outcome: 'not_found' };
export type SyncResult = FetchOutcome & { lock: LockState };

/** 'not_needed': a fetch that started after the trigger had already answered it. */
type LockState = 'held' | 'unavailable' | 'not_needed';

export class UnknownProviderError extends Error {
  override readonly name = 'UnknownProviderError';
  constructor(readonly provider: string) {
    super(`provider ${provider} is not configured`);
  }
}

/**
 * The one verb that writes payments. Webhooks, the poller, the return-page sync, the
 * sweep and replay all end here: lock, fetch the authoritative snapshot, write it
 * through the guarded upsert, release.
 *
 * Throws LockBusyError when another trigger holds the payment longer than the wait
 * (the caller leaves the work due), and ProviderError when the provider failed.
 */
export async function syncPayment(deps: SyncDeps, input: SyncInput): Promise<SyncResult> {
  const provider = deps.providers[input.provider];
  if (!provider) throw new UnknownProviderError(input.provider);
  const started = performance.now();
  const labels = { provider: input.provider, source: input.source };
  let outcome = 'error';
  // Taken (takeTurn) when this webhook is to go to the lock; given back when the sync ends.
  let turn = null as Turn | null;
  try {
    // Answered already, or to wait for the window's end: decided before the lock from
    // this process's memory (no Redis call), so a burst of webhooks for one id does not
    // queue on it...
    const early = await answerFromRecentFetch(deps, input, 'memory', () => (turn = takeTurn(deps, input)));
    if (early) {
      outcome = `${early.outcome}_by_recent_fetch`;
      return { ...early, lock: 'not_needed' };
    }
    // ...and again under it from Redis, the fleet's record: the holder before us, in any
    // process, may have just fetched (recent-fetches.ts says why memory first is sound).
    // That read travels with the lock attempt (LockOptions.alongside): no round trip of its own.
    const readShared = deps.recentFetches && input.triggeredAt ? readRecentFetch(deps.recentFetches, input) : undefined;
    const result = await withSpan('payment.sync', { ...paymentAttributes(input), [SPAN_ATTRIBUTES.source]: input.source }, async (span) => {
      const synced = await withPaymentLock(deps, input, readShared, async (shared) => {
        // The fence is asked for once the lock is held, while the record's read (sent with
        // the lock) comes back. A later holder still gets a higher fence, and the fence's
        // time is at most when the fetch starts (so the record never claims a later start
        // than the real one). When the record answers, the fence is left unused: a gap in
        // the sequence, nothing more.
        const fence = takeFetchFenceAt(deps.db);
        fence.catch(() => {});
        return (await answerFromRecentFetch(deps, input, 'shared', undefined, shared)) ?? fetchAndApply(deps, provider, input, await fence);
      });
      span.setAttribute(SPAN_ATTRIBUTES.outcome, synced.outcome);
      return synced;
    });
    outcome = result.outcome;
    return result;
  } catch (error) {
    outcome = outcomeLabel(error instanceof Error ? error.name : 'error');
    throw error;
  } finally {
    turn?.end();
    deps.metrics.syncs.inc({ ...labels, outcome });
    deps.metrics.syncDuration.observe(labels, (performance.now() - started) / 1000);
  }
}

const paymentAttributes = (input: SyncInput) => ({
  [SPAN_ATTRIBUTES.provider]: input.provider,
  [SPAN_ATTRIBUTES.paymentId]: input.providerPaymentId,
  [SPAN_ATTRIBUTES.account]: input.account,
});

async function fetchAndApply(
  deps: SyncDeps,
  provider: PaymentProvider,
  input: SyncInput,
  { fence, at: startedAt }: FetchFence,
): Promise<FetchOutcome> {
  // The fence is taken before the fetch: a higher fence means a later-started fetch.
  // Its database time is when the fetch started, for the recent-fetch record.
  const key = recentFetchKey(input);
  const work = fetchApplyAndRecord(deps, provider, input, fence, startedAt, key);
  // Webhooks for this id that arrive while it is under way wait for it (or for its window).
  deps.recentFetches?.inFlight.set(key, { startedAt, done: work.catch(() => {}) });
  try {
    return await work;
  } finally {
    const current = deps.recentFetches?.inFlight.get(key);
    if (current?.startedAt === startedAt) deps.recentFetches!.inFlight.delete(key);
  }
}

async function fetchApplyAndRecord(
  deps: SyncDeps,
  provider: PaymentProvider,
  input: SyncInput,
  fence: number,
  startedAt: number,
  key: string,
): Promise<FetchOutcome> {
  let fetched;
  try {
    fetched = await withSpan('provider.fetch_payment', paymentAttributes(input), async (span) => {
      const answer = await provider.fetchPayment(input.account, input.providerPaymentId, input.adjustments ? { adjustments: true } : undefined);
      span.setAttribute(SPAN_ATTRIBUTES.outcome, answer.kind);
      return answer;
    });
    deps.metrics.providerFetches.inc({ provider: input.provider, outcome: fetched.kind });
  } catch (error) {
    const code = error instanceof ProviderError ? error.code : 'error';
    deps.metrics.providerFetches.inc({ provider: input.provider, outcome: outcomeLabel(code) });
    throw error;
  }
  // Recorded for webhooks' fetches only: the poller and the sweep fetch thousands of
  // payments nobody is sending webhooks for, and would only fill the record.
  const recent = input.triggeredAt ? deps.recentFetches : undefined;
  if (fetched.kind === 'not_found') {
    void recent?.record(key, { startedAt, outcome: 'not_found' });
    return { outcome: 'not_found' };
  }
  const snapshot = fetched.snapshot;
  const applied = await withSpan('payment.write', { ...paymentAttributes(input), 'payment.status': snapshot.status }, async (span) => {
    const written = await applySnapshot(deps.db, {
      snapshot,
      fence,
      source: input.source,
      receiptId: input.receiptId ?? null,
      failureHint: input.failureHint ?? null,
      settleReceiptIds: input.settleReceiptIds,
      nextPollAt: deps.schedulePoll?.({ provider: input.provider, providerStatus: snapshot.providerStatus, method: snapshot.method }) ?? null,
      traceParent: currentTraceParent(),
    });
    span.setAttribute('payment.changed', written.changed);
    return written;
  });
  // Only once the snapshot is written: a record promises the row is at least this fresh.
  // Sent, not awaited: the release follows it in the same write to the same node, so the
  // next holder, in any process, reads it under the lock, and the pair costs one round trip.
  // Where it could land after the release (several Redis nodes: the release reaches the
  // others on their own connections; a node that forgot the script gets it again after a
  // failed attempt), the next holder misses it and fetches once more: a provider call,
  // never a wrong row (the record only ever saves calls). It never rejects.
  void recent?.record(key, { startedAt, outcome: 'found' });
  return { outcome: applied.changed ? 'changed' : 'unchanged', ...applied };
}

/** A read of the fleet's record for this webhook's id, to send with each lock attempt. */
function readRecentFetch(recent: RecentFetches, input: SyncInput): () => Promise<FetchRecord | null> {
  const key = recentFetchKey(input);
  return () => recent.get(key);
}

function recentFetchKey(input: Pick<SyncInput, 'provider' | 'account' | 'providerPaymentId'>): string {
  return `${input.provider}:${input.account}:${input.providerPaymentId}`;
}

type InFlightFetch = RecentFetches['inFlight'] extends Map<string, infer Entry> ? Entry : never;
type Turn = { end(): void };

/**
 * A webhook's sync about to take the lock, when nothing for its id is under way in this
 * process: registered as under way, so the webhooks for the id that come meanwhile wait
 * for it (and then for what it fetched or read under the lock, which memory now holds)
 * instead of queueing on the lock, each with its own lock attempts and read. When it
 * starts is unknown until it fetches: as if infinitely late, so every webhook waits for
 * it; fetchAndApply puts the fetch's own entry in its place. A webhook waits for one turn
 * at most: one that finds memory still says fetch after it goes to the lock, with or
 * without a turn of its own (never behind a chain of turns that each gave up on the lock).
 */
function takeTurn(deps: SyncDeps, input: SyncInput): Turn | null {
  const recent = deps.recentFetches;
  if (!recent || !input.triggeredAt) return null;
  const key = recentFetchKey(input);
  if (recent.inFlight.has(key)) return null;
  let ended!: () => void;
  const entry: InFlightFetch = { startedAt: Number.POSITIVE_INFINITY, done: new Promise<void>((resolve) => (ended = resolve)) };
  recent.inFlight.set(key, entry);
  return {
    end() {
      if (recent.inFlight.get(key) === entry) recent.inFlight.delete(key);
      ended();
    },
  };
}

/**
 * For a webhook: the answer a recent fetch already gives (settling the receipts it
 * answers), or RecentlyFetchedError to wait for the window's end, or null to fetch now.
 * `from`: 'memory' before the lock (this process's record only), 'shared' under it (Redis).
 * `beforeFetch` runs in the same step as the decision to fetch, with no wait between: the
 * webhook's turn is taken there, so webhooks read together cannot all miss each other's.
 * `shared`: the Redis read already sent with the lock attempt, when there was one.
 */
async function answerFromRecentFetch(
  deps: SyncDeps,
  input: SyncInput,
  from: 'memory' | 'shared',
  beforeFetch?: () => void,
  shared?: Promise<FetchRecord | null> | null,
): Promise<FetchOutcome | null> {
  const recent = deps.recentFetches;
  if (!recent || !input.triggeredAt) return null;
  const key = recentFetchKey(input);
  const triggeredAt = input.triggeredAt.getTime();
  const mayWait = input.mayWait === true;
  // Under the lock, a turn (takeTurn) is a webhook waiting for the lock we hold, or our own: not waited for.
  const running = recent.inFlight.get(key);
  let waited = false;
  if (running && (from === 'memory' || running.startedAt !== Number.POSITIVE_INFINITY)) {
    // Under way in this process: wait for it when it started after us, else for its window.
    if (running.startedAt >= triggeredAt) {
      await running.done;
      waited = true;
    } else if (mayWait && recent.windows.foundMs > 0) throw new RecentlyFetchedError(key, Math.max(1, running.startedAt + recent.windows.foundMs - Date.now()));
  }
  // A read sent before that wait could miss what the awaited fetch recorded: read again then.
  const record = from === 'memory' ? recent.peek(key) : await ((!waited && shared) || recent.get(key));
  const decision = decideFromRecentFetch(record, { at: triggeredAt, mayWait }, Date.now(), recent.windows);
  switch (decision.kind) {
    case 'fetch':
      beforeFetch?.();
      return null;
    case 'wait':
      throw new RecentlyFetchedError(key, decision.retryAfterMs);
    case 'answered':
      if (decision.record.outcome === 'not_found') return { outcome: 'not_found' };
      // The row already holds a snapshot fetched after these triggers; they are answered.
      if (input.settleReceiptIds?.length) await settleReceipts(deps.db, input.settleReceiptIds, 'processed', 'answered by a fetch that started after it');
      return { outcome: 'unchanged', changed: false, paymentRowId: null, version: null, previous: null, eventTypes: [], settledReceipts: true };
    default: {
      const unreachable: never = decision;
      throw new Error(`unknown decision ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * Takes the payment's lock around `work`. When the lock service is unreachable the work
 * runs anyway, logged and counted: the database alone keeps the invariants, the lock
 * only spares duplicate provider fetches.
 */
async function withPaymentLock(
  deps: SyncDeps,
  input: SyncInput,
  readAlongside: (() => Promise<FetchRecord | null>) | undefined,
  work: (shared: Promise<FetchRecord | null> | null) => Promise<FetchOutcome>,
): Promise<SyncResult> {
  const key = paymentLockKey(input.provider, input.providerPaymentId);
  return withSpan('payment.lock', { ...paymentAttributes(input), 'lock.kind': deps.locker.kind }, async (span) => {
    const result = await lockedWork(deps, input, key, readAlongside, work);
    span.setAttribute('lock.outcome', result.lock);
    return result;
  });
}

async function lockedWork(
  deps: SyncDeps,
  input: SyncInput,
  key: string,
  readAlongside: (() => Promise<FetchRecord | null>) | undefined,
  work: (shared: Promise<FetchRecord | null> | null) => Promise<FetchOutcome>,
): Promise<SyncResult> {
  const waitStarted = performance.now();
  let acquired = false;
  // The read sent with the latest lock attempt: the one that took the lock, once it is held.
  let shared: Promise<FetchRecord | null> | null = null;
  const options: LockOptions = { waitMs: input.lockWaitMs, alongside: readAlongside && (() => void (shared = readAlongside())) };
  try {
    const value = await deps.locker.withLock(
      key,
      async () => {
        acquired = true;
        deps.metrics.lockWait.observe((performance.now() - waitStarted) / 1000);
        deps.metrics.lockOutcomes.inc({ outcome: 'acquired' });
        return work(shared);
      },
      options,
    );
    return { ...value, lock: 'held' };
  } catch (error) {
    if (!acquired && error instanceof LockUnavailableError) {
      deps.metrics.lockOutcomes.inc({ outcome: 'unavailable' });
      deps.logger.warn(
        { key, err: errorMessage(error.cause) },
        'lock service unreachable; syncing on database guarantees alone',
      );
      return { ...(await work(null)), lock: 'unavailable' };
    }
    if (!acquired && error instanceof LockBusyError) deps.metrics.lockOutcomes.inc({ outcome: 'busy' });
    throw error;
  }
}
