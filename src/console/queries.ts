import { and, asc, desc, eq, gt, gte, inArray, isNotNull, like, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { eventDeliveries, eventSinks } from '../db/schema/event-deliveries.js';
import { outbox } from '../db/schema/outbox.js';
import { paymentTransitions } from '../db/schema/payment-transitions.js';
import { payments, type SelectPayment } from '../db/schema/payments.js';
import { pollerHealth } from '../db/schema/poller-health.js';
import { webhookReceipts } from '../db/schema/webhook-receipts.js';
import { listDeadLetters, listSinkStates, outboxLagSeconds, redriveDeadLetter, type SinkState } from '../events/deliveries.js';

/**
 * What the operator console reads, as plain functions of (db, params). Every function
 * selects named columns: raw webhook bodies and headers, provider snapshots, event
 * payloads and payment metadata can carry personal data, and the console never shows them.
 */

// ---------------------------------------------------------------------------------------
// Payments

export interface PaymentFilter {
  provider?: string;
  status?: string;
  /** A provider payment id, or the start of one. */
  id?: string;
  account?: string;
  method?: string;
  currency?: string;
  /** Amount bounds in minor units, inclusive. */
  minMinor?: number;
  maxMinor?: number;
  /** When the gateway first saw the payment: from inclusive, to exclusive. */
  from?: Date;
  to?: Date;
  /** A metadata key the payment's metadata has, or has with this value (`key=value`, as text). */
  metaKey?: string;
  metaValue?: string;
}

export interface PaymentSearch extends PaymentFilter {
  /** Exclusive upper bound on the row id: pages run newest first and stay stable under inserts. */
  beforeId?: number;
  /** Exclusive lower bound: the page after it, towards the newest (still listed newest first). */
  afterId?: number;
  limit: number;
}

export type PaymentListRow = Pick<
  SelectPayment,
  'id' | 'provider' | 'providerPaymentId' | 'account' | 'status' | 'providerStatus' | 'amountMinor' | 'currency' | 'version' | 'updatedAt' | 'nextPollAt'
>;

const escapeLike = (value: string) => value.replace(/[\\%_]/g, (char) => `\\${char}`);

/** The filter as conditions; metadata is only ever tested, never read out. */
function paymentConditions(params: PaymentFilter): SQL[] {
  const filters: SQL[] = [];
  if (params.provider) filters.push(eq(payments.provider, params.provider));
  if (params.status) filters.push(eq(payments.status, params.status));
  if (params.id) filters.push(or(eq(payments.providerPaymentId, params.id), like(payments.providerPaymentId, `${escapeLike(params.id)}%`))!);
  if (params.account) filters.push(eq(payments.account, params.account));
  if (params.method) filters.push(eq(payments.method, params.method));
  if (params.currency) filters.push(eq(payments.currency, params.currency));
  if (params.minMinor !== undefined) filters.push(gte(payments.amountMinor, params.minMinor));
  if (params.maxMinor !== undefined) filters.push(lte(payments.amountMinor, params.maxMinor));
  if (params.from) filters.push(gte(payments.createdAt, params.from));
  if (params.to) filters.push(lt(payments.createdAt, params.to));
  if (params.metaKey !== undefined) {
    filters.push(
      params.metaValue === undefined
        ? sql`jsonb_typeof(${payments.metadata}) = 'object' and ${payments.metadata} ? ${params.metaKey}`
        : sql`jsonb_typeof(${payments.metadata}) = 'object' and ${payments.metadata} ->> ${params.metaKey} = ${params.metaValue}`,
    );
  }
  return filters;
}

/** How many payments match, for the result count. */
export async function countPayments(db: DbOrTx, params: PaymentFilter): Promise<number> {
  const filters = paymentConditions(params);
  const rows = await db.select({ n: sql<number>`count(*)::int` }).from(payments).where(filters.length > 0 ? and(...filters) : undefined);
  return Number(rows[0]?.n ?? 0);
}

/** Newest first by row id; `afterId` pages towards the newest (fetched oldest first, returned newest first). */
export async function searchPayments(db: DbOrTx, params: PaymentSearch): Promise<PaymentListRow[]> {
  const filters = paymentConditions(params);
  if (params.beforeId !== undefined) filters.push(lt(payments.id, params.beforeId));
  const forward = params.beforeId === undefined && params.afterId !== undefined;
  if (forward) filters.push(gt(payments.id, params.afterId!));
  const rows = await db
    .select({
      id: payments.id,
      provider: payments.provider,
      providerPaymentId: payments.providerPaymentId,
      account: payments.account,
      status: payments.status,
      providerStatus: payments.providerStatus,
      amountMinor: payments.amountMinor,
      currency: payments.currency,
      version: payments.version,
      updatedAt: payments.updatedAt,
      nextPollAt: payments.nextPollAt,
    })
    .from(payments)
    .where(filters.length > 0 ? and(...filters) : undefined)
    .orderBy(forward ? asc(payments.id) : desc(payments.id))
    .limit(params.limit);
  return forward ? rows.reverse() : rows;
}

export type PaymentDetail = Omit<SelectPayment, 'metadata' | 'snapshot' | 'previous'>;

export async function getPaymentDetail(db: DbOrTx, provider: string, providerPaymentId: string): Promise<PaymentDetail | undefined> {
  const rows = await db
    .select({
      id: payments.id,
      provider: payments.provider,
      providerPaymentId: payments.providerPaymentId,
      account: payments.account,
      status: payments.status,
      providerStatus: payments.providerStatus,
      amountMinor: payments.amountMinor,
      currency: payments.currency,
      refundedMinor: payments.refundedMinor,
      chargedBackMinor: payments.chargedBackMinor,
      mode: payments.mode,
      method: payments.method,
      version: payments.version,
      fence: payments.fence,
      providerCreatedAt: payments.providerCreatedAt,
      createdAt: payments.createdAt,
      updatedAt: payments.updatedAt,
      lastSyncedAt: payments.lastSyncedAt,
      nextPollAt: payments.nextPollAt,
      pollAttempts: payments.pollAttempts,
      pollLeaseOwner: payments.pollLeaseOwner,
      pollLeaseUntil: payments.pollLeaseUntil,
      lastPolledAt: payments.lastPolledAt,
      stuckNotifiedAt: payments.stuckNotifiedAt,
    })
    .from(payments)
    .where(and(eq(payments.provider, provider), eq(payments.providerPaymentId, providerPaymentId)))
    .limit(1);
  return rows[0];
}

// ---------------------------------------------------------------------------------------
// A payment's history

export interface ReceiptRecord {
  id: number;
  provider: string;
  account: string;
  eventId: string | null;
  resourceType: string | null;
  resourceId: string | null;
  signature: string;
  state: string;
  attempts: number;
  lastError: string | null;
  receivedAt: Date;
  processedAt: Date | null;
}

export interface TransitionRecord {
  id: number;
  version: number;
  source: string;
  previousStatus: string | null;
  newStatus: string;
  previousProviderStatus: string | null;
  newProviderStatus: string;
  fence: number;
  receiptId: number | null;
  createdAt: Date;
}

export interface EventRecord {
  id: number;
  eventId: string;
  type: string;
  paymentVersion: number | null;
  /** The trigger that caused the change (data.source), when the event carries one. */
  source: string | null;
  createdAt: Date;
  relayedAt: Date | null;
}

export interface DeliveryRecord {
  id: number;
  outboxId: number;
  eventId: string;
  eventType: string;
  sinkId: string;
  sinkKind: string;
  sinkTarget: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  lastAttemptAt: Date | null;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  deadLetteredAt: Date | null;
}

export interface PaymentHistory {
  receipts: ReceiptRecord[];
  transitions: TransitionRecord[];
  events: EventRecord[];
  deliveries: DeliveryRecord[];
}

/** Bound on each kind of record, so a payment with a pathological history still renders. */
export const HISTORY_LIMIT = 500;

/**
 * Everything that happened to one payment. Receipts are those about the payment
 * (resource_id) plus those a transition names as its cause, which covers receipts about a
 * refund or chargeback that were resolved to this payment.
 */
export async function getPaymentHistory(db: DbOrTx, payment: Pick<PaymentDetail, 'id' | 'provider' | 'providerPaymentId'>): Promise<PaymentHistory> {
  const causedReceipts = db
    .select({ id: paymentTransitions.receiptId })
    .from(paymentTransitions)
    .where(and(eq(paymentTransitions.paymentId, payment.id), isNotNull(paymentTransitions.receiptId)));
  const [receipts, transitions, events, deliveries] = await Promise.all([
    db
      .select({
        id: webhookReceipts.id,
        provider: webhookReceipts.provider,
        account: webhookReceipts.account,
        eventId: webhookReceipts.eventId,
        resourceType: webhookReceipts.resourceType,
        resourceId: webhookReceipts.resourceId,
        signature: webhookReceipts.signature,
        state: webhookReceipts.state,
        attempts: webhookReceipts.attempts,
        lastError: webhookReceipts.lastError,
        receivedAt: webhookReceipts.receivedAt,
        processedAt: webhookReceipts.processedAt,
      })
      .from(webhookReceipts)
      .where(
        or(
          and(eq(webhookReceipts.provider, payment.provider), eq(webhookReceipts.resourceId, payment.providerPaymentId)),
          inArray(webhookReceipts.id, causedReceipts),
        ),
      )
      .orderBy(asc(webhookReceipts.id))
      .limit(HISTORY_LIMIT),
    db
      .select({
        id: paymentTransitions.id,
        version: paymentTransitions.version,
        source: paymentTransitions.source,
        previousStatus: paymentTransitions.previousStatus,
        newStatus: paymentTransitions.newStatus,
        previousProviderStatus: paymentTransitions.previousProviderStatus,
        newProviderStatus: paymentTransitions.newProviderStatus,
        fence: paymentTransitions.fence,
        receiptId: paymentTransitions.receiptId,
        createdAt: paymentTransitions.createdAt,
      })
      .from(paymentTransitions)
      .where(eq(paymentTransitions.paymentId, payment.id))
      .orderBy(asc(paymentTransitions.version))
      .limit(HISTORY_LIMIT),
    db
      .select({
        id: outbox.id,
        eventId: outbox.eventId,
        type: outbox.type,
        paymentVersion: outbox.paymentVersion,
        // Only the trigger's name leaves the payload; the rest can hold metadata.
        source: sql<string | null>`${outbox.payload} -> 'data' ->> 'source'`,
        createdAt: outbox.createdAt,
        relayedAt: outbox.relayedAt,
      })
      .from(outbox)
      .where(and(eq(outbox.provider, payment.provider), eq(outbox.providerPaymentId, payment.providerPaymentId)))
      .orderBy(asc(outbox.id))
      .limit(HISTORY_LIMIT),
    db
      .select({
        id: eventDeliveries.id,
        outboxId: eventDeliveries.outboxId,
        eventId: eventDeliveries.eventId,
        eventType: eventDeliveries.eventType,
        sinkId: eventDeliveries.sinkId,
        sinkKind: eventSinks.kind,
        sinkTarget: eventSinks.target,
        state: eventDeliveries.state,
        attempts: eventDeliveries.attempts,
        lastStatus: eventDeliveries.lastStatus,
        lastError: eventDeliveries.lastError,
        createdAt: eventDeliveries.createdAt,
        lastAttemptAt: eventDeliveries.lastAttemptAt,
        nextAttemptAt: eventDeliveries.nextAttemptAt,
        deliveredAt: eventDeliveries.deliveredAt,
        deadLetteredAt: eventDeliveries.deadLetteredAt,
      })
      .from(eventDeliveries)
      .innerJoin(eventSinks, eq(eventSinks.id, eventDeliveries.sinkId))
      .where(and(eq(eventDeliveries.provider, payment.provider), eq(eventDeliveries.providerPaymentId, payment.providerPaymentId)))
      .orderBy(asc(eventDeliveries.id))
      .limit(HISTORY_LIMIT),
  ]);
  return { receipts, transitions, events, deliveries };
}

// ---------------------------------------------------------------------------------------
// Pollers

export interface PollerAccountHealth {
  provider: string;
  account: string;
  /** null when the poller has never written a health row for this account. */
  state: string | null;
  consecutiveFailures: number;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  lastError: string | null;
  stateChangedAt: Date | null;
  pausedUntil: Date | null;
  /** Payments with a poll scheduled, and those whose poll time has passed. */
  scheduled: number;
  due: number;
  oldestDueAt: Date | null;
}

export async function listPollerHealth(db: DbOrTx): Promise<PollerAccountHealth[]> {
  const [health, schedule] = await Promise.all([
    db.select().from(pollerHealth).orderBy(asc(pollerHealth.provider), asc(pollerHealth.account)),
    // Served by payments_next_poll_idx: only payments that still have a poll scheduled.
    db.execute<{ provider: string; account: string; scheduled: number; due: number; oldest_due_at: string | Date | null }>(sql`
      select provider, account, count(*)::int as scheduled,
             (count(*) filter (where next_poll_at <= now()))::int as due,
             min(next_poll_at) filter (where next_poll_at <= now()) as oldest_due_at
      from payments where next_poll_at is not null
      group by provider, account`),
  ]);
  const byKey = new Map<string, PollerAccountHealth>();
  for (const row of health) {
    byKey.set(`${row.provider}\n${row.account}`, {
      provider: row.provider,
      account: row.account,
      state: row.state,
      consecutiveFailures: row.consecutiveFailures,
      lastSuccessAt: row.lastSuccessAt,
      lastFailureAt: row.lastFailureAt,
      lastError: row.lastError,
      stateChangedAt: row.stateChangedAt,
      pausedUntil: row.pausedUntil,
      scheduled: 0,
      due: 0,
      oldestDueAt: null,
    });
  }
  for (const row of schedule) {
    const key = `${row.provider}\n${row.account}`;
    const entry =
      byKey.get(key) ??
      ({
        provider: row.provider,
        account: row.account,
        state: null,
        consecutiveFailures: 0,
        lastSuccessAt: null,
        lastFailureAt: null,
        lastError: null,
        stateChangedAt: null,
        pausedUntil: null,
        scheduled: 0,
        due: 0,
        oldestDueAt: null,
      } satisfies PollerAccountHealth);
    entry.scheduled = Number(row.scheduled);
    entry.due = Number(row.due);
    entry.oldestDueAt = row.oldest_due_at === null ? null : new Date(row.oldest_due_at);
    byKey.set(key, entry);
  }
  return [...byKey.values()].sort((a, b) => a.provider.localeCompare(b.provider) || a.account.localeCompare(b.account));
}

// ---------------------------------------------------------------------------------------
// Outbox, sinks, dead letters

export interface OutboxSummary {
  /** Age of the oldest event not yet handed to the sinks; 0 when none waits. */
  lagSeconds: number;
  unrelayed: number;
  sinks: SinkState[];
  deadLetters: number;
}

export async function getOutboxSummary(db: DbOrTx): Promise<OutboxSummary> {
  const [lagSeconds, counts, sinks] = await Promise.all([
    outboxLagSeconds(db),
    db.execute<{ unrelayed: number; dead: number }>(sql`
      select (select count(*) from outbox where relayed_at is null)::int as unrelayed,
             (select count(*) from event_deliveries where state = 'dead')::int as dead`),
    listSinkStates(db),
  ]);
  return { lagSeconds, unrelayed: Number(counts[0]?.unrelayed ?? 0), deadLetters: Number(counts[0]?.dead ?? 0), sinks };
}

export interface DeadLetterRow {
  id: number;
  eventId: string;
  type: string;
  sinkId: string;
  sinkTarget: string;
  sinkDisabled: boolean;
  provider: string | null;
  paymentId: string | null;
  version: number | null;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: Date | null;
  deadLetteredAt: Date;
}

/** Dead letters oldest first, paged by delivery id; the relay's own query, minus the payload. */
export async function listConsoleDeadLetters(db: DbOrTx, params: { afterId?: number; limit: number }): Promise<DeadLetterRow[]> {
  const rows = await listDeadLetters(db, params);
  return rows.map((row) => ({
    id: row.id,
    eventId: row.eventId,
    type: row.type,
    sinkId: row.sink.id,
    sinkTarget: row.sink.target,
    sinkDisabled: row.sink.disabled,
    provider: row.provider,
    paymentId: row.paymentId,
    version: row.version,
    attempts: row.attempts,
    lastStatus: row.lastStatus,
    lastError: row.lastError,
    lastAttemptAt: row.lastAttemptAt ? new Date(row.lastAttemptAt) : null,
    deadLetteredAt: new Date(row.deadLetteredAt),
  }));
}

/** The operator's re-drive: the relay's own verb, so the console cannot drift from it. */
export async function redriveFromConsole(db: DbOrTx, deliveryId: number): Promise<boolean> {
  return redriveDeadLetter(db, deliveryId);
}

// ---------------------------------------------------------------------------------------
// Webhook volume

export const RECEIPT_STATES = ['processed', 'ignored', 'pending', 'failed'] as const;
export type ReceiptState = (typeof RECEIPT_STATES)[number];

export interface VolumeBucket {
  minute: Date;
  counts: Record<ReceiptState, number>;
  /** States outside RECEIPT_STATES, should a new one appear. */
  other: number;
}

export interface WebhookVolume {
  /** The database's current minute: the last bucket. */
  until: Date;
  /** Each bucket's length. */
  bucketMinutes: number;
  buckets: VolumeBucket[];
}

/**
 * Webhook receipts per bucket (`bucketMinutes`, 1 by default) and state over the last
 * `minutes` minutes (the current bucket included), every bucket present even when empty.
 * Buckets start at whole multiples of their length since the epoch (date_bin), so a
 * 1-minute bucket is the minute. Uses the database's clock, the same one that stamped
 * received_at.
 */
export async function getWebhookVolume(db: DbOrTx, params: { minutes: number; bucketMinutes?: number; provider?: string }): Promise<WebhookVolume> {
  const bucket = Math.max(1, Math.floor(params.bucketMinutes ?? 1));
  const count = Math.max(1, Math.ceil(params.minutes / bucket));
  const rows = await db.execute<{ minute: string | Date; state: string | null; n: number }>(sql`
    with step as (select make_interval(mins => ${bucket}) as width), span as (
      select date_bin(step.width, now(), timestamptz 'epoch') - step.width * ${count - 1} as start, date_bin(step.width, now(), timestamptz 'epoch') as until, step.width
      from step
    ), counted as (
      select date_bin(span.width, r.received_at, timestamptz 'epoch') as minute, r.state, count(*)::int as n
      from webhook_receipts r, span
      where r.received_at >= span.start
        ${params.provider ? sql`and r.provider = ${params.provider}` : sql``}
      group by 1, 2
    )
    select m.minute, c.state, coalesce(c.n, 0)::int as n
    from span, generate_series(span.start, span.until, span.width) as m(minute)
    left join counted c on c.minute = m.minute
    order by m.minute`);
  const buckets = new Map<number, VolumeBucket>();
  for (const row of rows) {
    const minute = new Date(row.minute);
    let bucket = buckets.get(minute.getTime());
    if (!bucket) {
      bucket = { minute, counts: { processed: 0, ignored: 0, pending: 0, failed: 0 }, other: 0 };
      buckets.set(minute.getTime(), bucket);
    }
    if (row.state === null) continue;
    const n = Number(row.n);
    if ((RECEIPT_STATES as readonly string[]).includes(row.state)) bucket.counts[row.state as ReceiptState] += n;
    else bucket.other += n;
  }
  const list = [...buckets.values()];
  return { until: list.at(-1)?.minute ?? new Date(), bucketMinutes: bucket, buckets: list };
}
