/**
 * Running a provider's `handle` over stored receipts and writing the outcomes back: the
 * second half of the intake (src/webhooks/intake.ts), shared by the webhook routes (inline
 * or deferred) and the receipt retry worker (receipt-worker.ts).
 */
import type { Env } from '../config/env.js';
import type { Db } from '../db/client.js';
import type { SelectWebhookReceipt } from '../db/schema/webhook-receipts.js';
import type { Deps } from '../deps.js';
import { LockBusyError } from '../lock/locker.js';
import type { Logger } from '../observability/logger.js';
import { RecentlyFetchedError } from '../payments/recent-fetches.js';
import type { SyncDeps } from '../payments/sync-payment.js';
import { ProviderError, type ProviderName } from '../providers/types.js';
import { errorMessage } from '../primitives/error-message.js';
import type { AccountDeps } from './accounts.js';
import { deferReceipt, getReceipts, settleReceipts, type NewReceipt, type ReceiptState } from './receipts.js';

/**
 * What a provider's `handle` returns per receipt id; anything it throws for a receipt
 * leaves that receipt pending for a later attempt.
 */
export type ReceiptOutcome =
  /** `alreadySettled`: the sync that answered it settled it in its own transaction; nothing left to write. */
  | { state: ReceiptState; note?: string; alreadySettled?: boolean }
  | { state: 'retry'; error: string; retryAfterMs?: number };

/** What a provider's `handle` may use: a sync's dependencies, the account seam, and the instance's GoCardless sync slots. */
export type HandleDeps = SyncDeps & AccountDeps & Pick<Deps, 'gocardlessSyncSlots'>;

/** What a provider does with its stored receipts (the `handle` of its intake). */
export interface ReceiptHandler {
  handle(deps: HandleDeps, receipts: SelectWebhookReceipt[]): Promise<Map<number, ReceiptOutcome>>;
}

export type ReceiptHandlers = Partial<Record<ProviderName, ReceiptHandler>>;

/** What recording outcomes needs, besides the handlers' own needs. */
export interface OutcomeDeps {
  db: Db;
  logger: Logger;
  env: Pick<Env, 'RECEIPT_RETRY_DELAYS'>;
}

export type ProcessDeps = OutcomeDeps & HandleDeps;

export type ReceiptCounts = Record<'processed' | 'ignored' | 'pending' | 'failed', number>;

/** Turns an error from syncPayment into a retry outcome: every failure is worth another try later. */
export function retryOutcome(error: unknown): ReceiptOutcome {
  if (error instanceof LockBusyError) return { state: 'retry', error: 'payment busy: another trigger holds its lock' };
  if (error instanceof ProviderError) return { state: 'retry', error: `${error.code}: ${error.message}`, retryAfterMs: error.retryAfterMs };
  if (error instanceof RecentlyFetchedError) return { state: 'retry', error: `waiting for the next fetch: ${error.message}`, retryAfterMs: error.retryAfterMs };
  return { state: 'retry', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
}

/** Writes a handler's outcomes back: settled ones in one statement per state, retries one by one. */
export async function applyOutcomes(deps: OutcomeDeps, receipts: SelectWebhookReceipt[], outcomes: Map<number, ReceiptOutcome>): Promise<ReceiptCounts> {
  // Settled receipts are written in one statement per (state, note).
  const settled = new Map<string, { state: ReceiptState; note?: string; ids: number[] }>();
  const counts = { processed: 0, ignored: 0, pending: 0, failed: 0 };
  for (const receipt of receipts) {
    const outcome = outcomes.get(receipt.id) ?? { state: 'retry', error: 'handler returned no outcome' };
    if (outcome.state === 'retry') {
      const state = await deferReceipt(deps.db, receipt, outcome.error, outcome.retryAfterMs, deps.env.RECEIPT_RETRY_DELAYS);
      counts[state]++;
      deps.logger.warn({ receiptId: receipt.id, provider: receipt.provider, attempts: receipt.attempts, state, error: outcome.error }, 'receipt deferred');
    } else if (outcome.alreadySettled) {
      counts[outcome.state]++;
    } else {
      const key = `${outcome.state}\u0000${outcome.note ?? ''}`;
      const group = settled.get(key) ?? { state: outcome.state, note: outcome.note, ids: [] };
      group.ids.push(receipt.id);
      settled.set(key, group);
      counts[outcome.state]++;
    }
  }
  for (const { state, note, ids } of settled.values()) await settleReceipts(deps.db, ids, state, note);
  return counts;
}

/** Runs each receipt's provider `handle` and records the outcomes. Never throws for a handler failure. */
export async function processReceipts(deps: ProcessDeps, handlers: ReceiptHandlers, receipts: SelectWebhookReceipt[]): Promise<ReceiptCounts> {
  const byProvider = new Map<string, SelectWebhookReceipt[]>();
  for (const receipt of receipts) byProvider.set(receipt.provider, [...(byProvider.get(receipt.provider) ?? []), receipt]);
  const totals = { processed: 0, ignored: 0, pending: 0, failed: 0 };
  for (const [provider, group] of byProvider) {
    const handler = handlers[provider as ProviderName];
    let outcomes: Map<number, ReceiptOutcome>;
    if (!handler) {
      outcomes = new Map(group.map((r) => [r.id, { state: 'retry', error: `provider ${provider} is not configured` } as const]));
    } else {
      try {
        outcomes = await handler.handle(deps, group);
      } catch (error) {
        const outcome = retryOutcome(error);
        outcomes = new Map(group.map((r) => [r.id, outcome]));
      }
    }
    const counts = await applyOutcomes(deps, group, outcomes);
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += counts[key];
  }
  return totals;
}

/** When the newest of these receipts arrived: a fetch must start after it to answer them all. */
export function newestReceipt(receipts: Pick<SelectWebhookReceipt, 'receivedAt'>[]): Date {
  return new Date(Math.max(...receipts.map((receipt) => receipt.receivedAt.getTime())));
}

/** The just-recorded receipt as a handler sees it, without reading it back. */
export function pendingReceipt(id: number, receipt: NewReceipt, receivedAt: Date): SelectWebhookReceipt {
  return {
    id,
    provider: receipt.provider,
    account: receipt.account,
    eventId: receipt.eventId ?? null,
    resourceType: receipt.resourceType ?? null,
    resourceId: receipt.resourceId ?? null,
    body: receipt.body,
    headers: receipt.headers,
    signature: receipt.signature,
    state: 'pending',
    attempts: 0,
    nextAttemptAt: null,
    lastError: null,
    receivedAt,
    processedAt: null,
  };
}

export type InlineResult =
  | { settled: true; counts: ReceiptCounts }
  | { settled: false; reason: 'deadline' | 'error'; error?: string };

/**
 * Processes just-stored receipts while the webhook request waits, for at most
 * `deadlineMs`. Past the deadline the work carries on in the background (drained on
 * shutdown) and the caller answers anyway: the receipts are durable, and whatever the
 * work does not settle the receipt worker retries.
 */
export async function processReceiptsInline(
  deps: ProcessDeps & Pick<Deps, 'background'>,
  handlers: ReceiptHandlers,
  receipts: SelectWebhookReceipt[],
  deadlineMs: number,
): Promise<InlineResult> {
  const work = processReceipts(deps, handlers, receipts);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), deadlineMs)));
  try {
    const counts = await Promise.race([work, deadline]);
    if (counts) return { settled: true, counts };
    deps.background.defer(work);
    return { settled: false, reason: 'deadline' };
  } catch (error) {
    // Recording an outcome failed (database trouble): the receipt stays pending for the worker.
    return { settled: false, reason: 'error', error: errorMessage(error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Processes receipts stored a moment ago by id (a webhook's deferred half, recovery's
 * second step). Never throws: whatever fails stays pending for the receipt worker.
 */
export async function processStoredReceipts(deps: ProcessDeps, provider: ProviderName, handler: ReceiptHandler, receiptIds: number[]): Promise<void> {
  if (receiptIds.length === 0) return;
  const started = performance.now();
  try {
    const receipts = await getReceipts(deps.db, receiptIds);
    // Only what is still pending: the worker may have settled some meanwhile.
    const pending = receipts.filter((receipt) => receipt.state === 'pending');
    const totals = await processReceipts(deps, { [provider]: handler }, pending);
    deps.logger.info({ job: `${provider}-receipts`, receipts: pending.length, ...totals, ms: Math.round(performance.now() - started) }, `${provider} events processed`);
  } catch (error) {
    // The receipts are durable and still pending; the worker picks them up after their grace.
    deps.logger.error(
      { job: `${provider}-receipts`, receipts: receiptIds.length, err: errorMessage(error) },
      `processing ${provider} events failed; left to the receipt worker`,
    );
  }
}
