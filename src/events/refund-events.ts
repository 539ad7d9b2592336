import type { ProviderName, RefundStatus } from '../providers/types.js';
import { money, newEventId, type OutboxEventRow } from './payment-events.js';

/**
 * The `refund.*` events: one per real change of a refund (first seen, or moved forward),
 * written with the change. The refund's own `version` makes each exactly-once (dedupe key
 * `<provider>:refund:<id>:v<version>`) and lets a consumer drop a stale one. Chargebacks
 * are stored and versioned the same way but are named on the payment's events only.
 */

export type RefundEventType = `refund.${RefundStatus}` | 'refund.updated';

/** A refund or chargeback row the adjustments upsert wrote, with the payment as stored after the write. */
export interface AdjustmentChangeRow {
  kind: 'refund' | 'chargeback';
  provider_item_id: string;
  status: string;
  provider_status: string;
  previous_status: string | null;
  previous_provider_status: string | null;
  amount_minor: number | string;
  currency: string;
  version: number;
  inserted: boolean;
  provider_created_at: Date | string | null;
  updated_at: Date | string;
  payment_id: number | string;
  payment_version: number;
  payment_status: string;
  payment_provider_status: string;
  payment_amount_minor: number | string;
  payment_currency: string;
  payment_refunded_minor: number | string;
  payment_charged_back_minor: number | string;
}

/** `refund.<status>` when the normalised status moved (or the refund is new); `refund.updated` for a provider-status-only step. */
export function refundEventType(change: Pick<AdjustmentChangeRow, 'inserted' | 'status' | 'previous_status'>): RefundEventType {
  if (change.inserted || change.previous_status !== change.status) return `refund.${change.status as RefundStatus}`;
  return 'refund.updated';
}

export interface RefundEventsInput {
  provider: ProviderName;
  account: string;
  providerPaymentId: string;
  source: string;
  changes: AdjustmentChangeRow[];
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

export function buildRefundEvents(input: RefundEventsInput): OutboxEventRow[] {
  return input.changes
    .filter((change) => change.kind === 'refund')
    .map((change) => {
      const id = newEventId();
      const type = refundEventType(change);
      const paymentCurrency = change.payment_currency;
      return {
        event_id: id,
        dedupe_key: `${input.provider}:refund:${change.provider_item_id}:v${change.version}`,
        type,
        provider: input.provider,
        // Filed under the payment (GET /v1/events?paymentId= finds them); no payment version:
        // the refund's own version orders them.
        provider_payment_id: input.providerPaymentId,
        payment_version: null,
        payload: {
          id,
          type,
          timestamp: iso(change.updated_at)!,
          data: {
            provider: input.provider,
            account: input.account,
            refund: {
              id: change.provider_item_id,
              paymentId: input.providerPaymentId,
              gatewayPaymentId: Number(change.payment_id),
              amount: money(Number(change.amount_minor), change.currency),
              status: change.status,
              previousStatus: change.inserted ? null : change.previous_status,
              providerStatus: change.provider_status,
              previousProviderStatus: change.inserted ? null : change.previous_provider_status,
              version: change.version,
              createdAt: iso(change.provider_created_at),
            },
            payment: {
              id: input.providerPaymentId,
              gatewayId: Number(change.payment_id),
              status: change.payment_status,
              providerStatus: change.payment_provider_status,
              version: Number(change.payment_version),
              amount: money(Number(change.payment_amount_minor), paymentCurrency),
              amountRefunded: money(Number(change.payment_refunded_minor), paymentCurrency),
              amountChargedBack: money(Number(change.payment_charged_back_minor), paymentCurrency),
            },
            source: input.source,
          },
        },
      };
    });
}
