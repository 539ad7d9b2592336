import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { LockUnavailableError, paymentLockKey, type Locker } from '../lock/locker.js';
import { outcomeLabel, type Metrics } from '../observability/metrics.js';
import { SPAN_ATTRIBUTES, withSpan } from '../observability/tracing.js';
import { ProviderError, type PaymentProvider, type ProviderName, type Providers } from '../providers/types.js';
import { applySnapshot, takeFetchFence, type ApplyResult, type SyncSource } from './apply-snapshot.js';

export interface SyncDeps {
  db: Db;
  locker: Locker;
  providers: Providers;
  logger: Logger;
  metrics: Metrics;
  /** When a just-written non-final payment should next be polled. */
  schedulePoll?: (input: { provider: ProviderName; providerStatus: string; method: string | null }) => Date | null;
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
}

type FetchOutcome = ({ outcome: 'changed' | 'unchanged' } & ApplyResult) | { outcome: 'not_found' };
export type SyncResult = FetchOutcome & { lock: LockState };

type LockState = 'held' | 'unavailable';

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
  try {
    const result = await withSpan('payment.sync', { ...paymentAttributes(input), [SPAN_ATTRIBUTES.source]: input.source }, async (span) => {
      const synced = await withPaymentLock(deps, input, () => fetchAndApply(deps, provider, input));
      span.setAttribute(SPAN_ATTRIBUTES.outcome, synced.outcome);
      return synced;
    });
    outcome = result.outcome;
    return result;
  } catch (error) {
    outcome = outcomeLabel(error instanceof Error ? error.name : 'error');
    throw error;
  } finally {
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
): Promise<FetchOutcome> {
  // The fence is taken before the fetch: a higher fence means a later-started fetch.
  const fence = await takeFetchFence(deps.db);
  let fetched;
  try {
    fetched = await withSpan('provider.fetch_payment', paymentAttributes(input), async (span) => {
      const answer = await provider.fetchPayment(input.account, input.providerPaymentId);
      span.setAttribute(SPAN_ATTRIBUTES.outcome, answer.kind);
      return answer;
    });
    deps.metrics.providerFetches.inc({ provider: input.provider, outcome: fetched.kind });
  } catch (error) {
    const code = error instanceof ProviderError ? error.code : 'error';
    deps.metrics.providerFetches.inc({ provider: input.provider, outcome: outcomeLabel(code) });
    throw error;
  }
  if (fetched.kind === 'not_found') return { outcome: 'not_found' };
  const snapshot = fetched.snapshot;
  const applied = await withSpan('payment.write', { ...paymentAttributes(input), 'payment.status': snapshot.status }, async (span) => {
    const written = await applySnapshot(deps.db, {
      snapshot,
      fence,
      source: input.source,
      receiptId: input.receiptId ?? null,
      settleReceiptIds: input.settleReceiptIds,
      nextPollAt: deps.schedulePoll?.({ provider: input.provider, providerStatus: snapshot.providerStatus, method: snapshot.method }) ?? null,
    });
    span.setAttribute('payment.changed', written.changed);
    return written;
  });
  return { outcome: applied.changed ? 'changed' : 'unchanged', ...applied };
}

/**
 * Takes the payment's lock around `work`. When the lock service is unreachable the work
 * runs anyway, logged and counted: the database alone keeps the invariants, the lock
 * only spares duplicate provider fetches.
 */
async function withPaymentLock(
  deps: SyncDeps,
  input: SyncInput,
  work: () => Promise<FetchOutcome>,
): Promise<SyncResult> {
  const key = paymentLockKey(input.provider, input.providerPaymentId);
  return withSpan('payment.lock', { ...paymentAttributes(input), 'lock.kind': deps.locker.kind }, async (span) => {
    const result = await lockedWork(deps, input, key, work);
    span.setAttribute('lock.outcome', result.lock);
    return result;
  });
}

async function lockedWork(deps: SyncDeps, input: SyncInput, key: string, work: () => Promise<FetchOutcome>): Promise<SyncResult> {
  const waitStarted = performance.now();
  let acquired = false;
  try {
    const value = await deps.locker.withLock(
      key,
      async () => {
        acquired = true;
        deps.metrics.lockWait.observe((performance.now() - waitStarted) / 1000);
        deps.metrics.lockOutcomes.inc({ outcome: 'acquired' });
        return work();
      },
      input.lockWaitMs === undefined ? undefined : { waitMs: input.lockWaitMs },
    );
    return { ...value, lock: 'held' };
  } catch (error) {
    if (!acquired && error instanceof LockUnavailableError) {
      deps.metrics.lockOutcomes.inc({ outcome: 'unavailable' });
      deps.logger.warn(
        { key, err: error.cause instanceof Error ? error.cause.message : String(error.cause) },
        'lock service unreachable; syncing on database guarantees alone',
      );
      return { ...(await work()), lock: 'unavailable' };
    }
    if (!acquired && error instanceof Error && error.name === 'LockBusyError') deps.metrics.lockOutcomes.inc({ outcome: 'busy' });
    throw error;
  }
}
