/**
 * Pure mapping from Mollie's payment object (as the SDK returns it: `_links` renamed
 * `links`) to the gateway's `PaymentSnapshot`. No I/O; tested with fixtures.
 */
import type { ListEntityChargeback, ListPaymentResponse, ListRefundResponse, PaymentResponse } from 'mollie-api-typescript/models';
import { parseDecimalAmount } from '../../money.js';
import type { ChargebackItem, PaymentSnapshot, PaymentStatus, RefundItem, RefundStatus } from '../types.js';

/** `payments.get` and `payments.list` return structurally identical payment objects. */
export type MolliePayment = PaymentResponse | ListPaymentResponse;

export class MollieMappingError extends Error {
  override readonly name = 'MollieMappingError';
}

// Mollie v2 statuses map 1:1; refunds and chargebacks never change a v2 payment's status.
const STATUS_MAP: Record<string, PaymentStatus> = {
  open: 'open',
  pending: 'pending',
  authorized: 'authorized',
  paid: 'paid',
  canceled: 'canceled',
  expired: 'expired',
  failed: 'failed',
};

export function mapMollieStatus(status: string): PaymentStatus {
  const mapped = Object.hasOwn(STATUS_MAP, status) ? STATUS_MAP[status] : undefined;
  if (!mapped) {
    throw new MollieMappingError(
      `unknown Mollie payment status ${JSON.stringify(status)}: expected one of ${Object.keys(STATUS_MAP).join(', ')}`,
    );
  }
  return mapped;
}

/**
 * The fields of a payment that billing may need. An allow-list rather than a
 * deny-list, so a field Mollie adds later (possibly personal) is dropped until
 * someone decides to keep it. Deliberately absent: `details` (consumer names,
 * IBANs, card holders), `billingAddress`, `shippingAddress`, `_links`.
 */
export const MOLLIE_RAW_FIELDS = [
  'resource',
  'id',
  'mode',
  'status',
  'statusReason',
  'isCancelable',
  'description',
  'amount',
  'amountRefunded',
  'amountRemaining',
  'amountCaptured',
  'amountChargedBack',
  'method',
  'metadata',
  'sequenceType',
  'profileId',
  'customerId',
  'mandateId',
  'subscriptionId',
  'settlementId',
  'orderId',
  'lines',
  'applicationFee',
  'routing',
  'captureMode',
  'captureDelay',
  'captureBefore',
  'locale',
  'countryCode',
  'restrictPaymentMethodsToCountry',
  'redirectUrl',
  'cancelUrl',
  'webhookUrl',
  'createdAt',
  'authorizedAt',
  'paidAt',
  'canceledAt',
  'expiresAt',
  'expiredAt',
  'failedAt',
] as const;

/**
 * From `details`, only why a payment failed (card and SEPA Direct Debit): no names,
 * IBANs or card numbers.
 */
export const MOLLIE_FAILURE_DETAIL_FIELDS = ['failureReason', 'failureMessage', 'bankReasonCode', 'bankReason'] as const;

export function mollieRawWithoutPersonalData(payment: MolliePayment): Record<string, unknown> {
  const source = payment as unknown as Record<string, unknown>;
  const raw: Record<string, unknown> = {};
  for (const field of MOLLIE_RAW_FIELDS) {
    if (source[field] !== undefined) raw[field] = source[field];
  }
  const details = source.details as Record<string, unknown> | null | undefined;
  const failure: Record<string, unknown> = {};
  for (const field of MOLLIE_FAILURE_DETAIL_FIELDS) {
    if (details?.[field] !== undefined && details[field] !== null) failure[field] = details[field];
  }
  if (Object.keys(failure).length > 0) raw.details = failure;
  return raw;
}

function minorInCurrency(
  label: string,
  money: { value: string; currency: string } | undefined,
  currency: string,
): number {
  if (!money) return 0;
  if (money.currency !== currency) {
    throw new MollieMappingError(`Mollie ${label} is in ${money.currency}, but the payment is in ${currency}`);
  }
  return parseDecimalAmount(money.value, currency);
}

function parseTimestamp(label: string, value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new MollieMappingError(`Mollie ${label} ${JSON.stringify(value)} is not a valid timestamp`);
  }
  return date;
}

/** The refund and chargeback fields the mapping reads (`refunds.list` / `chargebacks.list` items). */
export type MollieRefund = Pick<ListRefundResponse, 'id' | 'amount' | 'status' | 'createdAt'>;
export type MollieChargeback = Pick<ListEntityChargeback, 'id' | 'amount' | 'createdAt' | 'reversedAt'>;

/** The payment's refunds and chargebacks, when the client listed them. */
export interface MollieAdjustments {
  refunds?: MollieRefund[];
  chargebacks?: MollieChargeback[];
}

// Mollie's refund statuses are the normalised ones (types.ts REFUND_STATUSES).
const REFUND_STATUS_MAP: Record<string, RefundStatus> = {
  queued: 'queued',
  pending: 'pending',
  processing: 'processing',
  refunded: 'refunded',
  failed: 'failed',
  canceled: 'canceled',
};

export function mapMollieRefund(refund: MollieRefund): RefundItem {
  const status = Object.hasOwn(REFUND_STATUS_MAP, refund.status) ? REFUND_STATUS_MAP[refund.status] : undefined;
  if (!status) {
    throw new MollieMappingError(
      `refund ${refund.id} has unknown Mollie refund status ${JSON.stringify(refund.status)}: expected one of ${Object.keys(REFUND_STATUS_MAP).join(', ')}`,
    );
  }
  const currency = refund.amount.currency;
  return {
    id: refund.id,
    amount: { minor: parseDecimalAmount(refund.amount.value, currency), currency },
    status,
    providerStatus: refund.status,
    createdAt: parseTimestamp(`refund ${refund.id} createdAt`, refund.createdAt),
  };
}

/** A chargeback has no status at Mollie: received, or reversed once `reversedAt` is set. */
export function mapMollieChargeback(chargeback: MollieChargeback): ChargebackItem {
  const currency = chargeback.amount.currency;
  const reversed = chargeback.reversedAt !== null && chargeback.reversedAt !== undefined;
  const status = reversed ? 'reversed' : 'received';
  return {
    id: chargeback.id,
    amount: { minor: parseDecimalAmount(chargeback.amount.value, currency), currency },
    status,
    providerStatus: status,
    createdAt: parseTimestamp(`chargeback ${chargeback.id} createdAt`, chargeback.createdAt),
    reversed,
  };
}

/**
 * Throws MollieMappingError (unknown status, currency mismatch) or MoneyError (malformed amount).
 * `adjustments`: the payment's refunds and chargebacks when the client listed them; without
 * them the snapshot carries none (nothing stored is touched).
 */
export function mapMolliePayment(payment: MolliePayment, account: string, adjustments: MollieAdjustments = {}): PaymentSnapshot {
  const currency = payment.amount.currency;
  const providerMode: string = payment.mode;
  const mode = providerMode === 'live' || providerMode === 'test' ? providerMode : null;
  return {
    provider: 'mollie',
    account,
    providerPaymentId: payment.id,
    providerStatus: payment.status,
    status: mapMollieStatus(payment.status),
    amount: { minor: parseDecimalAmount(payment.amount.value, currency), currency },
    refundedMinor: minorInCurrency('amountRefunded', payment.amountRefunded, currency),
    chargedBackMinor: minorInCurrency('amountChargedBack', payment.amountChargedBack, currency),
    mode,
    method: payment.method ?? null,
    metadata: payment.metadata ?? null,
    providerCreatedAt: parseTimestamp('createdAt', payment.createdAt),
    // Only when listed: absent means not looked at (see PaymentSnapshot.refunds).
    ...(adjustments.refunds ? { refunds: adjustments.refunds.map(mapMollieRefund) } : {}),
    ...(adjustments.chargebacks ? { chargebacks: adjustments.chargebacks.map(mapMollieChargeback) } : {}),
    raw: mollieRawWithoutPersonalData(payment),
  };
}
