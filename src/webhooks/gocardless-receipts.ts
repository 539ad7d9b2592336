/**
 * GoCardless events, from a signed webhook batch or from `GET /events` (recovery),
 * take one path: a receipt per event (de-duplicated by event id), then this handler.
 *
 * - Payment events end in syncPayment. Every event for one payment in a batch costs
 *   one fetch: the event only says "look again"; the fetched payment is the truth,
 *   and the fence makes the later-started fetch win whatever order events arrive in.
 * - Events about other resources (mandates, subscriptions, refunds, payouts, billing
 *   requests, ...) are forwarded on the outbound stream as
 *   `gocardless.<resource_type>.<action>`, exactly once per event id (the outbox's
 *   dedupe key), in the transaction that settles their receipt.
 */
import type { SelectWebhookReceipt } from '../db/schema/webhook-receipts.js';
import type { Deps } from '../deps.js';
import type { FailureHint } from '../events/billing-facts.js';
import { enqueueEvents, type NewOutboxEvent } from '../events/outbox.js';
import type { SyncSource } from '../payments/apply-snapshot.js';
import { syncPayment } from '../payments/sync-payment.js';
import { errorMessage } from '../primitives/error-message.js';
import { createSlots, type Slots } from '../primitives/slots.js';
import { goCardlessEventSchema, parseGoCardlessBatch, type GoCardlessEvent } from '../providers/gocardless/webhook.js';
import { processReceipts, retryOutcome, type ReceiptHandler, type ReceiptOutcome } from './receipt-handlers.js';
import { getReceipts, recordReceipts, settleReceipts, type NewReceipt } from './receipts.js';

/** How a receipt's event reached us: a verified webhook, or a page of `GET /events`. */
export type GoCardlessEventOrigin = 'webhook' | 'fetched';

/**
 * GoCardless payments synced side by side in one process, across every batch being
 * processed. Each sync holds a database connection only briefly, but the pool
 * (DATABASE_POOL_SIZE, 10 by default) also serves the webhook route, which must keep
 * acknowledging within GoCardless's 10 s however many batches are in flight.
 */
const SYNC_CONCURRENCY = 5;

/** One set of slots per gateway instance (keyed by its database handle), not per process. */
const syncSlots = new WeakMap<object, Slots>();
function slotsFor(deps: Deps): Slots {
  let slots = syncSlots.get(deps.db);
  if (!slots) {
    slots = createSlots(SYNC_CONCURRENCY);
    syncSlots.set(deps.db, slots);
  }
  return slots;
}

export interface StoreGoCardlessEventsInput {
  account: string;
  /** Validated events, each with the object GoCardless sent, which is stored and forwarded verbatim. */
  events: { event: GoCardlessEvent; raw: Record<string, unknown> }[];
  origin: GoCardlessEventOrigin;
  /** Kept on every receipt for debugging, never for de-duplication (docs/providers.md#gocardless-signature-responses-ordering). */
  webhookId?: string | null;
  headers?: Record<string, string>;
}

export interface StoreGoCardlessEventsResult {
  received: number;
  /** Receipts written by this call, to be processed. */
  newReceiptIds: number[];
  duplicates: number;
}

/** The id of the resource an event is about: `links.mandate` for `mandates`, and so on. */
export function goCardlessResourceId(event: Pick<GoCardlessEvent, 'resource_type' | 'links'>): string | null {
  const key = event.resource_type.endsWith('s') ? event.resource_type.slice(0, -1) : event.resource_type;
  return event.links[key] ?? null;
}

/**
 * Stores one receipt per event in one round trip. A repeated event id (redelivered,
 * retried, or already fetched by recovery) comes back as a duplicate and is not
 * processed again.
 */
export async function storeGoCardlessEvents(deps: Deps, input: StoreGoCardlessEventsInput): Promise<StoreGoCardlessEventsResult> {
  const encoder = new TextEncoder();
  const headers = { ...input.headers, ...(input.webhookId ? { 'gocardless-webhook-id': input.webhookId } : {}) };
  // Sorted by event id: two gateway processes inserting overlapping batches then take
  // the unique index's row locks in the same order, so ON CONFLICT waits never form a
  // cycle (a deadlock would turn a good webhook into a 5xx).
  const events = [...input.events].sort((a, b) => (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0));
  const receipts: NewReceipt[] = events.map(({ event, raw }) => ({
    provider: 'gocardless',
    account: input.account,
    eventId: event.id,
    resourceType: event.resource_type,
    resourceId: goCardlessResourceId(event),
    body: encoder.encode(JSON.stringify(raw)),
    headers,
    signature: input.origin === 'webhook' ? 'valid' : 'fetched',
  }));
  const recorded = await recordReceipts(deps.db, receipts);
  const newReceiptIds = recorded.filter((r) => !r.duplicate).map((r) => r.id);
  const duplicates = recorded.length - newReceiptIds.length;
  if (newReceiptIds.length > 0) deps.metrics.providerEvents.inc({ provider: 'gocardless', origin: input.origin, outcome: 'new' }, newReceiptIds.length);
  if (duplicates > 0) deps.metrics.providerEvents.inc({ provider: 'gocardless', origin: input.origin, outcome: 'duplicate' }, duplicates);
  return { received: recorded.length, newReceiptIds, duplicates };
}

export type AcceptGoCardlessBatchResult =
  | ({ ok: true; webhookId: string | null } & StoreGoCardlessEventsResult)
  | { ok: false; message: string };

/**
 * The durable half of a webhook whose signature was verified over `body`: parse the
 * batch (all or nothing) and store its events. Processing is the caller's next step,
 * after the acknowledgement.
 */
export async function acceptGoCardlessBatch(
  deps: Deps,
  input: { account: string; body: Uint8Array; headers: Record<string, string> },
): Promise<AcceptGoCardlessBatchResult> {
  const parsed = parseGoCardlessBatch(input.body);
  if (!parsed.ok) return parsed;
  // The validated batch, read again untouched (no schema defaults), to store and forward as sent.
  const raw = JSON.parse(new TextDecoder().decode(input.body)) as { events: Record<string, unknown>[] };
  const stored = await storeGoCardlessEvents(deps, {
    account: input.account,
    // parseGoCardlessBatch keeps the body's order, so the two arrays line up.
    events: parsed.events.map((event, index) => ({ event, raw: raw.events[index]! })),
    origin: 'webhook',
    webhookId: parsed.webhookId ?? null,
    headers: input.headers,
  });
  return { ok: true, webhookId: parsed.webhookId ?? null, ...stored };
}

/**
 * Processes receipts just stored (the webhook's background half, recovery's second
 * step). Never throws: whatever fails stays pending for the receipt worker.
 */
export async function processGoCardlessReceipts(deps: Deps, receiptIds: number[]): Promise<void> {
  if (receiptIds.length === 0) return;
  const started = performance.now();
  try {
    const receipts = await getReceipts(deps.db, receiptIds);
    // Only what is still pending: the worker may have settled some meanwhile.
    const pending = receipts.filter((receipt) => receipt.state === 'pending');
    const totals = await processReceipts(deps, { gocardless: gocardlessReceiptHandler }, pending);
    deps.logger.info({ job: 'gocardless-receipts', receipts: pending.length, ...totals, ms: Math.round(performance.now() - started) }, 'gocardless events processed');
  } catch (error) {
    // The receipts are durable and still pending; the worker picks them up after their grace.
    deps.logger.error(
      { job: 'gocardless-receipts', receipts: receiptIds.length, err: errorMessage(error) },
      'processing gocardless events failed; left to the receipt worker',
    );
  }
}

interface ParsedReceipt {
  receipt: SelectWebhookReceipt;
  raw: Record<string, unknown>;
  event: GoCardlessEvent;
}

function parseReceipt(receipt: SelectWebhookReceipt): ParsedReceipt | string {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(receipt.body));
  } catch {
    return 'stored body is not JSON';
  }
  const parsed = goCardlessEventSchema.safeParse(raw);
  if (!parsed.success) return `stored body is not a GoCardless event: ${parsed.error.issues[0]?.message ?? 'invalid'}`;
  return { receipt, raw: raw as Record<string, unknown>, event: parsed.data };
}

/** Payment actions whose `details.cause` says why the money did not arrive or went back. */
const FAILURE_ACTIONS: ReadonlySet<string> = new Set(['failed', 'late_failure_settled', 'charged_back', 'chargeback_settled']);

/** The newest failure among a payment's events: the snapshot does not say why, the event does. */
function failureHintOf(items: ParsedReceipt[]): FailureHint | null {
  const failures = items
    .map((item) => item.event)
    .filter((event) => event.resource_type === 'payments' && FAILURE_ACTIONS.has(event.action) && event.details.cause)
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
  const latest = failures.at(-1);
  return latest ? { code: latest.details.cause!, message: latest.details.description ?? null } : null;
}

function forwardedEvent(item: ParsedReceipt): NewOutboxEvent {
  const { event, raw, receipt } = item;
  const created = new Date(event.created_at);
  return {
    type: `gocardless.${event.resource_type}.${event.action}`,
    // One outbound event per GoCardless event, however often it was received or processed.
    dedupeKey: `gocardless:event:${event.id}`,
    provider: 'gocardless',
    data: {
      provider: 'gocardless',
      account: receipt.account,
      eventId: event.id,
      resourceType: event.resource_type,
      action: event.action,
      resourceId: goCardlessResourceId(event),
      event: raw,
    },
    ...(Number.isNaN(created.getTime()) ? {} : { timestamp: created }),
  };
}

export const gocardlessReceiptHandler: ReceiptHandler = {
  async handle(deps, receipts) {
    const outcomes = new Map<number, ReceiptOutcome>();
    const parsed: ParsedReceipt[] = [];
    for (const receipt of receipts) {
      const item = parseReceipt(receipt);
      if (typeof item === 'string') {
        // Retrying cannot repair stored bytes; keep the receipt, visibly, for an operator.
        deps.logger.error({ receiptId: receipt.id, eventId: receipt.eventId, problem: item }, 'unreadable gocardless receipt');
        outcomes.set(receipt.id, { state: 'ignored', note: item });
      } else {
        parsed.push(item);
      }
    }

    // One sync per payment, however many of its events arrived. Refund events carry
    // links.payment too: the payment's amount_refunded moved, so it is synced as well.
    const byPayment = new Map<string, { account: string; paymentId: string; items: ParsedReceipt[] }>();
    for (const item of parsed) {
      const paymentId = item.event.links.payment;
      if (!paymentId) continue;
      const key = `${item.receipt.account}\u0000${paymentId}`;
      const group = byPayment.get(key) ?? { account: item.receipt.account, paymentId, items: [] };
      group.items.push(item);
      byPayment.set(key, group);
    }

    const syncFailures = new Map<number, ReceiptOutcome>();
    const notFound = new Set<number>();
    /** Payment-event receipts the sync's own transaction settled. */
    const settledBySync = new Set<number>();
    const syncGroup = async (group: { account: string; paymentId: string; items: ParsedReceipt[] }) => {
      // A recovered event's sync is a reconciliation, not a delivery; the events say which.
      const source: SyncSource = group.items.every((item) => item.receipt.signature === 'fetched') ? 'sweep' : 'webhook';
      // Only payment events settle with the sync. Other events on the payment (refunds)
      // are forwarded, and their receipts settle in the forwarding transaction below.
      const settleReceiptIds = group.items.filter((item) => item.event.resource_type === 'payments').map((item) => item.receipt.id);
      try {
        const result = await syncPayment(deps, {
          provider: 'gocardless',
          account: group.account,
          providerPaymentId: group.paymentId,
          source,
          receiptId: group.items[0]!.receipt.id,
          settleReceiptIds,
          // Webhooks and recovered events alike: a fetch that started after the newest of them answers them.
          triggeredAt: new Date(Math.max(...group.items.map((item) => item.receipt.receivedAt.getTime()))),
          failureHint: failureHintOf(group.items),
        });
        if (result.outcome === 'not_found') for (const item of group.items) notFound.add(item.receipt.id);
        else if (result.settledReceipts) for (const id of settleReceiptIds) settledBySync.add(id);
      } catch (error) {
        const outcome = retryOutcome(error);
        for (const item of group.items) syncFailures.set(item.receipt.id, outcome);
      }
    };
    const slots = slotsFor(deps);
    await Promise.all([...byPayment.values()].map((group) => slots.run(() => syncGroup(group))));

    const forward: ParsedReceipt[] = [];
    for (const item of parsed) {
      const id = item.receipt.id;
      const failure = syncFailures.get(id);
      if (failure) {
        outcomes.set(id, failure);
      } else if (item.event.resource_type !== 'payments') {
        forward.push(item);
      } else if (notFound.has(id)) {
        outcomes.set(id, { state: 'ignored', note: `GoCardless does not know payment ${item.event.links.payment}` });
      } else if (!item.event.links.payment) {
        outcomes.set(id, { state: 'ignored', note: 'payment event without links.payment' });
      } else {
        outcomes.set(id, { state: 'processed', alreadySettled: settledBySync.has(id) });
      }
    }

    if (forward.length > 0) {
      // The forwarded events and their receipts' settlement commit together: a crash
      // between them cannot forward twice or settle without forwarding. (A repeat after
      // a lost lease is still one event: the dedupe key refuses the second insert.)
      await deps.db.transaction(async (tx) => {
        await enqueueEvents(tx, forward.map(forwardedEvent));
        await settleReceipts(tx, forward.map((item) => item.receipt.id), 'processed');
      });
      for (const item of forward) outcomes.set(item.receipt.id, { state: 'processed' });
    }
    return outcomes;
  },
};
