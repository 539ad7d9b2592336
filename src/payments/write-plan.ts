import { billingFacts, type FailureHint } from '../events/billing-facts.js';
import { buildPaymentEvents, type OutboxEventRow, type TrackedState } from '../events/payment-events.js';
import { buildRefundEvents, type AdjustmentChangeRow } from '../events/refund-events.js';
import type { PaymentSnapshot } from '../providers/types.js';
import { adjustmentRank, type AdjustmentKind } from './adjustment-rules.js';
import { isFinal } from './status-rules.js';

/**
 * What a snapshot write means, decided without I/O: from the snapshot (and, once the
 * upsert answers, the row as it stood) to the values each statement writes and the
 * result the caller gets. The statements render it (write-statements.ts); the executor
 * runs them (write-executor.ts).
 */

export type SyncSource = 'webhook' | 'poll' | 'sync' | 'sweep' | 'replay' | 'track';

export interface ApplyInput {
  snapshot: PaymentSnapshot;
  /** From payment_fetch_fence, taken before the fetch that produced the snapshot. */
  fence: number;
  source: SyncSource;
  receiptId?: number | null;
  /** When the poller should look at this payment next; ignored once the payment is final. */
  nextPollAt?: Date | null;
  /**
   * Pending webhook receipts this sync answers. They are marked processed in the same
   * transaction as the write (changed or not), so the caller needs no second commit.
   */
  settleReceiptIds?: number[];
  /** Carried into the events' failure fields when the snapshot has no reason of its own. */
  failureHint?: FailureHint | null;
  /** The W3C traceparent of the write's span: stored with its events, so their deliveries join the trace. */
  traceParent?: string | null;
}

export interface ApplyResult {
  changed: boolean;
  paymentRowId: number | null;
  version: number | null;
  previous: TrackedState | null;
  eventTypes: string[];
  /** `settleReceiptIds` were marked processed (if still pending) with this write. */
  settledReceipts: boolean;
}

/** What the guarded upsert returns for a row it wrote. */
export interface UpsertRow {
  id: number;
  version: number;
  inserted: boolean;
  previous: TrackedState | null;
  updated_at: Date;
  [key: string]: unknown;
}

/** The upsert's values, and the receipts the write settles whatever the upsert answers. */
export interface WritePlan {
  input: ApplyInput;
  snapshotJson: string;
  metadataJson: string;
  /** Null once the payment is final: nothing is left to poll for. */
  nextPollAt: Date | null;
  settleIds: number[];
  /** The snapshot's refunds and chargebacks for the adjustments upsert; null when it has none. */
  adjustmentsJson: string | null;
}

/** One refund or chargeback as the adjustments upsert reads it (jsonb_to_recordset). */
interface AdjustmentInputRow {
  kind: AdjustmentKind;
  provider_item_id: string;
  amount_minor: number;
  currency: string;
  status: string;
  provider_status: string;
  status_rank: number;
  provider_created_at: string | null;
}

function adjustmentRows(s: PaymentSnapshot): AdjustmentInputRow[] {
  const items = [
    ...(s.refunds ?? []).map((item) => ({ kind: 'refund' as const, item })),
    ...(s.chargebacks ?? []).map((item) => ({ kind: 'chargeback' as const, item })),
  ];
  return items.map(({ kind, item }) => {
    const rank = adjustmentRank(s.provider, kind, item.providerStatus);
    // The mappings refuse unknown statuses; an unranked one here is a bug, not data.
    if (rank === undefined) throw new Error(`no rank for ${s.provider} ${kind} status ${JSON.stringify(item.providerStatus)} (${item.id})`);
    return {
      kind,
      provider_item_id: item.id,
      amount_minor: item.amount.minor,
      currency: item.amount.currency,
      status: item.status,
      provider_status: item.providerStatus,
      status_rank: rank,
      provider_created_at: item.createdAt?.toISOString() ?? null,
    };
  });
}

/** The transition row, the outbox events and the receipts' settlement of one change. */
export interface TransitionWrite {
  paymentRowId: number;
  version: number;
  source: SyncSource;
  previous: TrackedState | null;
  snapshot: PaymentSnapshot;
  fence: number;
  receiptId: number | null;
  snapshotJson: string;
  events: OutboxEventRow[];
  settleReceiptIds?: number[];
}

export function planWrite(input: ApplyInput): WritePlan {
  const s = input.snapshot;
  const final = isFinal(s.provider, s.providerStatus);
  const adjustments = adjustmentRows(s);
  return {
    input,
    snapshotJson: JSON.stringify(s.raw),
    metadataJson: JSON.stringify(s.metadata ?? null),
    nextPollAt: final ? null : (input.nextPollAt ?? null),
    settleIds: input.settleReceiptIds ?? [],
    adjustmentsJson: adjustments.length > 0 ? JSON.stringify(adjustments) : null,
  };
}

/** The `refund.*` events of the refunds a write changed (whether or not the payment changed). */
export function planAdjustmentEvents(plan: WritePlan, changes: AdjustmentChangeRow[]): OutboxEventRow[] {
  const s = plan.input.snapshot;
  return withTraceParent(plan, buildRefundEvents({ provider: s.provider, account: s.account, providerPaymentId: s.providerPaymentId, source: plan.input.source, changes }));
}

function withTraceParent(plan: WritePlan, events: OutboxEventRow[]): OutboxEventRow[] {
  const traceParent = plan.input.traceParent ?? null;
  if (traceParent) for (const event of events) event.trace_parent = traceParent;
  return events;
}

/** Statuses a failure reason belongs to; a hint never explains a payment that did not fail. */
const failed = (status: string) => status === 'failed' || status === 'charged_back';

/**
 * The upsert wrote `row`: the transition and events that record the change. `adjusted`:
 * the refunds and chargebacks the same write changed; their `refund.*` events travel
 * with the payment's, and the payment's events name them.
 */
export function planChange(plan: WritePlan, row: UpsertRow, adjusted: AdjustmentChangeRow[] = []): TransitionWrite {
  const { input, snapshotJson, settleIds } = plan;
  const s = input.snapshot;
  const previous = row.inserted ? null : row.previous;
  const next: TrackedState = {
    status: s.status,
    providerStatus: s.providerStatus,
    amountMinor: s.amount.minor,
    currency: s.amount.currency,
    refundedMinor: s.refundedMinor,
    chargedBackMinor: s.chargedBackMinor,
  };
  const events = buildPaymentEvents({
    provider: s.provider,
    account: s.account,
    providerPaymentId: s.providerPaymentId,
    version: row.version,
    source: input.source,
    previous,
    next,
    mode: s.mode,
    metadata: s.metadata,
    billing: billingFacts(s.provider, s.raw, failed(s.status) ? (input.failureHint ?? null) : null),
    adjustments: {
      refunds: s.refunds ?? [],
      chargebacks: s.chargebacks ?? [],
      changedRefundIds: adjusted.filter((change) => change.kind === 'refund').map((change) => change.provider_item_id),
      changedChargebackIds: adjusted.filter((change) => change.kind === 'chargeback').map((change) => change.provider_item_id),
    },
    changedAt: new Date(row.updated_at),
  });
  withTraceParent(plan, events);
  events.push(...planAdjustmentEvents(plan, adjusted));
  return {
    paymentRowId: row.id,
    version: row.version,
    source: input.source,
    previous,
    snapshot: s,
    fence: input.fence,
    receiptId: input.receiptId ?? null,
    snapshotJson,
    events,
    settleReceiptIds: settleIds,
  };
}

/** The payment did not change; `events` are the refunds' own, if any moved. */
export function unchangedResult(plan: WritePlan, events: OutboxEventRow[] = []): ApplyResult {
  return { changed: false, paymentRowId: null, version: null, previous: null, eventTypes: events.map((event) => event.type), settledReceipts: plan.settleIds.length > 0 };
}

export function changedResult(plan: WritePlan, change: TransitionWrite): ApplyResult {
  return {
    changed: true,
    paymentRowId: Number(change.paymentRowId),
    version: change.version,
    previous: change.previous,
    eventTypes: change.events.map((event) => event.type),
    settledReceipts: plan.settleIds.length > 0,
  };
}
