import type { SelectWebhookReceipt } from '../db/schema/webhook-receipts.js';
import type { Deps } from '../deps.js';
import { LockBusyError } from '../lock/locker.js';
import { RecentlyFetchedError } from '../payments/recent-fetches.js';
import { ProviderError, type ProviderName } from '../providers/types.js';
import { deferReceipt, settleReceipts, type ReceiptState } from './receipts.js';

/**
 * What a provider does with its stored receipts. The webhook route calls it right after
 * the receipts are durable; the retry worker calls it for receipts still pending.
 * It returns an outcome per receipt id; anything it throws for a receipt leaves that
 * receipt pending for a later attempt.
 */
export type ReceiptOutcome =
  /** `alreadySettled`: the sync that answered it settled it in its own transaction; nothing left to write. */
  | { state: ReceiptState; note?: string; alreadySettled?: boolean }
  | { state: 'retry'; error: string; retryAfterMs?: number };

export interface ReceiptHandler {
  handle(deps: Deps, receipts: SelectWebhookReceipt[]): Promise<Map<number, ReceiptOutcome>>;
}

export type ReceiptHandlers = Partial<Record<ProviderName, ReceiptHandler>>;

/** Turns an error from syncPayment into a retry outcome: every failure is worth another try later. */
export function retryOutcome(error: unknown): ReceiptOutcome {
  if (error instanceof LockBusyError) return { state: 'retry', error: 'payment busy: another trigger holds its lock' };
  if (error instanceof ProviderError) return { state: 'retry', error: `${error.code}: ${error.message}`, retryAfterMs: error.retryAfterMs };
  if (error instanceof RecentlyFetchedError) return { state: 'retry', error: `waiting for the next fetch: ${error.message}`, retryAfterMs: error.retryAfterMs };
  return { state: 'retry', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
}

/** Writes a handler's outcomes back: settled ones in one statement per state, retries one by one. */
export async function applyOutcomes(deps: Deps, receipts: SelectWebhookReceipt[], outcomes: Map<number, ReceiptOutcome>) {
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

/** Runs the provider's handler over receipts and records the outcomes. Never throws for a handler failure. */
export async function processReceipts(deps: Deps, handlers: ReceiptHandlers, receipts: SelectWebhookReceipt[]) {
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
