import { randomUUID } from 'node:crypto';
import { formatMinorUnits } from '../money.js';
import type { ChargebackItem, PaymentStatus, ProviderName, RefundItem } from '../providers/types.js';
import type { BillingFacts } from './billing-facts.js';

/** The tracked fields of a payment: a change in any of them is a real change. */
export interface TrackedState {
  status: PaymentStatus;
  providerStatus: string;
  amountMinor: number;
  currency: string;
  refundedMinor: number;
  chargedBackMinor: number;
}

export type PaymentEventType =
  | `payment.${PaymentStatus}`
  | 'payment.refunded'
  | 'payment.refund_reversed'
  | 'payment.chargeback_reversed'
  | 'payment.updated';

/**
 * What one real change means downstream. A change can carry several meanings at
 * once (a payment first seen as paid and partly refunded); each gets one event, and
 * the (payment, version, type) triple makes each exactly-once.
 */
export function eventTypesFor(previous: TrackedState | null, next: TrackedState): PaymentEventType[] {
  const types: PaymentEventType[] = [];
  if (previous?.status !== next.status) types.push(`payment.${next.status}`);
  const refunded = next.refundedMinor - (previous?.refundedMinor ?? 0);
  if (refunded > 0) types.push('payment.refunded');
  if (refunded < 0) types.push('payment.refund_reversed');
  const chargedBack = next.chargedBackMinor - (previous?.chargedBackMinor ?? 0);
  if (chargedBack > 0 && !types.includes('payment.charged_back')) types.push('payment.charged_back');
  if (chargedBack < 0) types.push('payment.chargeback_reversed');
  // Anything else that changed (confirmed → paid_out, a corrected amount) is still worth a word.
  if (types.length === 0) types.push('payment.updated');
  return types;
}

export interface OutboxEventRow {
  event_id: string;
  dedupe_key: string;
  type: string;
  provider: string | null;
  provider_payment_id: string | null;
  payment_version: number | null;
  payload: OutboundEvent;
  /** The W3C traceparent of the write that made the event: its deliveries' spans join that trace. */
  trace_parent?: string | null;
}

export interface OutboundEvent {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

export function newEventId(): string {
  return `evt_${randomUUID().replaceAll('-', '')}`;
}

export function money(minor: number, currency: string) {
  return { value: formatMinorUnits(minor, currency), currency, minor };
}

export interface PaymentEventInput {
  provider: ProviderName;
  account: string;
  providerPaymentId: string;
  version: number;
  source: string;
  previous: TrackedState | null;
  next: TrackedState;
  mode: string | null;
  metadata: unknown;
  /** Description, method, failure and links (see billing-facts.ts). */
  billing: BillingFacts;
  /** The refunds and chargebacks the fetch saw, and which of them this write changed. */
  adjustments?: PaymentAdjustmentsFacts;
  changedAt: Date;
}

export interface PaymentAdjustmentsFacts {
  refunds: RefundItem[];
  chargebacks: ChargebackItem[];
  changedRefundIds: string[];
  changedChargebackIds: string[];
}

/** A refund or chargeback as a payment event names it. */
function adjustmentJson(item: RefundItem | ChargebackItem) {
  return {
    id: item.id,
    amount: money(item.amount.minor, item.amount.currency),
    status: item.status,
    providerStatus: item.providerStatus,
    createdAt: item.createdAt?.toISOString() ?? null,
  };
}

/** The payment event's refund and chargeback fields (added with refund items; empty when the fetch saw none). */
export function adjustmentsData(facts: PaymentAdjustmentsFacts) {
  return {
    refunds: facts.refunds.map(adjustmentJson),
    chargebacks: facts.chargebacks.map((item) => ({ ...adjustmentJson(item), reversed: item.reversed })),
    changedRefundIds: facts.changedRefundIds,
    changedChargebackIds: facts.changedChargebackIds,
  };
}

export function buildPaymentEvents(input: PaymentEventInput): OutboxEventRow[] {
  const { next, previous } = input;
  return eventTypesFor(previous, next).map((type) => {
    const id = newEventId();
    return {
      event_id: id,
      dedupe_key: `${input.provider}:${input.providerPaymentId}:v${input.version}:${type}`,
      type,
      provider: input.provider,
      provider_payment_id: input.providerPaymentId,
      payment_version: input.version,
      payload: {
        id,
        type,
        timestamp: input.changedAt.toISOString(),
        data: {
          provider: input.provider,
          account: input.account,
          paymentId: input.providerPaymentId,
          status: next.status,
          previousStatus: previous?.status ?? null,
          providerStatus: next.providerStatus,
          previousProviderStatus: previous?.providerStatus ?? null,
          version: input.version,
          amount: money(next.amountMinor, next.currency),
          amountRefunded: money(next.refundedMinor, next.currency),
          amountChargedBack: money(next.chargedBackMinor, next.currency),
          mode: input.mode,
          metadata: input.metadata ?? null,
          source: input.source,
          description: input.billing.description,
          method: input.billing.method,
          sequenceType: input.billing.sequenceType,
          failureReason: input.billing.failureReason,
          failureCode: input.billing.failureCode,
          failureMessage: input.billing.failureMessage,
          links: input.billing.links,
          ...(input.adjustments ? adjustmentsData(input.adjustments) : {}),
        },
      },
    };
  });
}
