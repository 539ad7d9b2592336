import { billingFacts, type FailureHint } from '../events/billing-facts.js';
import { buildPaymentEvents, type OutboxEventRow, type TrackedState } from '../events/payment-events.js';
import type { PaymentSnapshot } from '../providers/types.js';
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
  return {
    input,
    snapshotJson: JSON.stringify(s.raw),
    metadataJson: JSON.stringify(s.metadata ?? null),
    nextPollAt: final ? null : (input.nextPollAt ?? null),
    settleIds: input.settleReceiptIds ?? [],
  };
}

/** Statuses a failure reason belongs to; a hint never explains a payment that did not fail. */
const failed = (status: string) => status === 'failed' || status === 'charged_back';

/** The upsert wrote `row`: the transition and events that record the change. */
export function planChange(plan: WritePlan, row: UpsertRow): TransitionWrite {
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
    changedAt: new Date(row.updated_at),
  });
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

export function unchangedResult(plan: WritePlan): ApplyResult {
  return { changed: false, paymentRowId: null, version: null, previous: null, eventTypes: [], settledReceipts: plan.settleIds.length > 0 };
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
