/**
 * GoCardless's intake (`gocardlessIntake`, run by intake.ts) and what the gateway does
 * with GoCardless events. Events from a signed webhook batch or from `GET /events`
 * (recovery) take one path: a receipt per event (de-duplicated by event id), then `handle`.
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
import { createSlots, type Slots } from '../primitives/slots.js';
import { verifyGoCardlessSignature } from '../providers/gocardless/signature.js';
import { goCardlessEventSchema, parseGoCardlessBatch, type GoCardlessEvent } from '../providers/gocardless/webhook.js';
import type { Refusal, WebhookIntake } from './intake.js';
import { newestReceipt, processStoredReceipts, retryOutcome, type ProcessDeps, type ReceiptOutcome } from './process-receipts.js';
import { recordReceipts, settleReceipts, type NewReceipt, type RecordedReceipt } from './receipts.js';

/** How a receipt's event reached us: a verified webhook, or a page of `GET /events`. */
export type GoCardlessEventOrigin = 'webhook' | 'fetched';

/**
 * GoCardless payments synced side by side in one gateway instance, across every batch
 * being processed. Each sync holds a database connection only briefly, but the pool
 * (DATABASE_POOL_SIZE, 10 by default) also serves the webhook route, which must keep
 * acknowledging within GoCardless's 10 s however many batches are in flight.
 */
const SYNC_CONCURRENCY = 5;

/** The instance's GoCardless sync slots; created once, by buildDeps. */
export function createGoCardlessSyncSlots(): Slots {
  return createSlots(SYNC_CONCURRENCY);
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
 * One receipt per event, sorted by event id: two gateway processes inserting
 * overlapping batches then take the unique index's row locks in the same order, so
 * ON CONFLICT waits never form a cycle (a deadlock would turn a good webhook into a 5xx).
 */
function goCardlessReceipts(input: StoreGoCardlessEventsInput): NewReceipt[] {
  const encoder = new TextEncoder();
  const headers = { ...input.headers, ...(input.webhookId ? { 'gocardless-webhook-id': input.webhookId } : {}) };
  const events = [...input.events].sort((a, b) => (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0));
  return events.map(({ event, raw }) => ({
    provider: 'gocardless',
    account: input.account,
    eventId: event.id,
    resourceType: event.resource_type,
    resourceId: goCardlessResourceId(event),
    body: encoder.encode(JSON.stringify(raw)),
    headers,
    signature: input.origin === 'webhook' ? 'valid' : 'fetched',
  }));
}

function countGoCardlessEvents(deps: Pick<Deps, 'metrics'>, origin: GoCardlessEventOrigin, recorded: RecordedReceipt[]): StoreGoCardlessEventsResult {
  const newReceiptIds = recorded.filter((r) => !r.duplicate).map((r) => r.id);
  const duplicates = recorded.length - newReceiptIds.length;
  if (newReceiptIds.length > 0) deps.metrics.providerEvents.inc({ provider: 'gocardless', origin, outcome: 'new' }, newReceiptIds.length);
  if (duplicates > 0) deps.metrics.providerEvents.inc({ provider: 'gocardless', origin, outcome: 'duplicate' }, duplicates);
  return { received: recorded.length, newReceiptIds, duplicates };
}

/**
 * Stores one receipt per event in one round trip (recovery's first step). A repeated
 * event id (redelivered, retried, or already fetched by recovery) comes back as a
 * duplicate and is not processed again.
 */
export async function storeGoCardlessEvents(deps: Pick<Deps, 'db' | 'metrics'>, input: StoreGoCardlessEventsInput): Promise<StoreGoCardlessEventsResult> {
  const recorded = await recordReceipts(deps.db, goCardlessReceipts(input));
  return countGoCardlessEvents(deps, input.origin, recorded);
}

/** Processes receipts just stored by recovery. Never throws: whatever fails stays pending for the receipt worker. */
export async function processGoCardlessReceipts(deps: ProcessDeps, receiptIds: number[]): Promise<void> {
  await processStoredReceipts(deps, 'gocardless', gocardlessIntake, receiptIds);
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
    // Event ids are unique per GoCardless account only: a stored account's key names it
    // (the env account's keeps the shape it always had).
    dedupeKey: receipt.account === 'default' ? `gocardless:event:${event.id}` : `gocardless:event:${receipt.account}:${event.id}`,
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

/** A verified, parsed batch: each event with the object GoCardless sent, to store and forward as sent. */
interface GoCardlessDelivery {
  events: { event: GoCardlessEvent; raw: Record<string, unknown> }[];
  webhookId: string | null;
}

/** Every GoCardless refusal is a warning that names the account and why (GoCardless retries, so an operator must hear of it). */
const refusal = (account: string, code: Refusal['code'], outcome: Refusal['outcome'], message: string): Refusal => ({
  code,
  outcome,
  message,
  level: 'warn',
  fields: { account: account.slice(0, 64), reason: message.slice(0, 500) },
});

/**
 * A signed batch: every event stored as a receipt before the 204, processed in the
 * background (deps.background: kept by Node for shutdown, handed to waitUntil on
 * Workers). A 500-event batch is acknowledged in milliseconds, far inside GoCardless's
 * 10 s; whatever the background pass cannot finish stays pending for the receipt worker.
 *
 * Order of checks: signature first, so an unauthenticated caller learns nothing (not
 * even which accounts exist); then the account (404: GoCardless retries, giving an
 * operator time to configure it, and the events API recovery can fill in after); then
 * the body (400: signed by GoCardless but not understood; refused whole, never half-stored).
 */
export const gocardlessIntake: WebhookIntake<GoCardlessDelivery> = {
  provider: 'gocardless',
  accountCheck: 'after_signature',
  notConfigured: (account) =>
    refusal(account, 'provider_not_configured', 'provider_not_configured', 'GoCardless is not configured on this gateway (set GOCARDLESS_ACCESS_TOKEN)'),
  unknownAccount: (account) => refusal(account, 'unknown_account', 'unknown_account', `no GoCardless account named ${JSON.stringify(account)} is configured`),
  // For debugging; the signature is not kept (it covers the batch, not one event).
  keptHeaders: ['content-type', 'origin', 'user-agent'],

  verify(request, secrets) {
    const signature = verifyGoCardlessSignature(request.rawBody, request.header('webhook-signature'), secrets);
    if (signature === 'valid') return { ok: true, signature };
    if (signature === 'absent') return { ok: false, refusal: refusal(request.account, 'signature_missing', 'signature_missing', 'missing Webhook-Signature header') };
    if (secrets.length === 0) request.logger.error({ provider: 'gocardless' }, 'GOCARDLESS_WEBHOOK_SECRETS is empty: every GoCardless webhook is refused');
    return { ok: false, refusal: refusal(request.account, 'signature_invalid', 'signature_invalid', 'Webhook-Signature does not match the body under any configured secret') };
  },

  parse(request) {
    // All or nothing: a batch with one bad event is refused whole.
    const parsed = parseGoCardlessBatch(request.rawBody);
    if (!parsed.ok) return { kind: 'refuse', refusal: refusal(request.account, 'malformed_webhook', 'malformed', parsed.message) };
    // The validated batch, read again untouched (no schema defaults), to store and forward as sent.
    const raw = JSON.parse(new TextDecoder().decode(request.rawBody)) as { events: Record<string, unknown>[] };
    return {
      kind: 'accept',
      // parseGoCardlessBatch keeps the body's order, so the two arrays line up.
      delivery: { events: parsed.events.map((event, index) => ({ event, raw: raw.events[index]! })), webhookId: parsed.webhookId ?? null },
    };
  },

  toReceipts: (batch, request) => goCardlessReceipts({ account: request.account, events: batch.events, origin: 'webhook', webhookId: batch.webhookId, headers: request.headers }),
  countRecorded: (deps, recorded) => void countGoCardlessEvents(deps, 'webhook', recorded),
  describe: (batch, recorded) => {
    const duplicates = recorded.filter((row) => row.duplicate).length;
    return { webhookId: batch.webhookId, events: recorded.length, new: recorded.length - duplicates, duplicates };
  },
  processing: { mode: 'deferred' },
  acknowledgement: 'no_content',

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
          triggeredAt: newestReceipt(group.items.map((item) => item.receipt)),
          failureHint: failureHintOf(group.items),
          adjustments: group.items.some((item) => item.event.resource_type === 'refunds'),
        });
        if (result.outcome === 'not_found') for (const item of group.items) notFound.add(item.receipt.id);
        else if (result.settledReceipts) for (const id of settleReceiptIds) settledBySync.add(id);
      } catch (error) {
        const outcome = retryOutcome(error);
        for (const item of group.items) syncFailures.set(item.receipt.id, outcome);
      }
    };
    await Promise.all([...byPayment.values()].map((group) => deps.gocardlessSyncSlots.run(() => syncGroup(group))));

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
