/**
 * Pure mapping from GoCardless's payment resource to the gateway's PaymentSnapshot
 * (docs/providers.md#gocardless-payment-statuses-and-events). No I/O; the client
 * validates the envelope with the schema below and calls this.
 */
import { z } from 'zod';
import { parseMinorUnits } from '../../money.js';
import type { PaymentSnapshot, PaymentStatus, RefundItem, RefundStatus } from '../types.js';

export const GOCARDLESS_PAYMENT_STATUSES = [
  'pending_customer_approval',
  'pending_submission',
  'submitted',
  'confirmed',
  'paid_out',
  'cancelled',
  'customer_approval_denied',
  'failed',
  'charged_back',
] as const;
export type GoCardlessPaymentStatus = (typeof GOCARDLESS_PAYMENT_STATUSES)[number];

export function isGoCardlessPaymentStatus(value: string): value is GoCardlessPaymentStatus {
  return (GOCARDLESS_PAYMENT_STATUSES as readonly string[]).includes(value);
}

export class GoCardlessMappingError extends Error {
  override readonly name = 'GoCardlessMappingError';
}

/**
 * GoCardless statuses are not monotonic (a confirmed payment can still fail late,
 * a failed one can be resubmitted, a chargeback can be cancelled), so this only
 * names the state; the ordering rules live in payments/status-rules.
 */
export function normaliseGoCardlessStatus(status: GoCardlessPaymentStatus): PaymentStatus {
  switch (status) {
    case 'pending_customer_approval':
    case 'pending_submission':
    case 'submitted':
      return 'pending';
    case 'confirmed':
    case 'paid_out':
      return 'paid';
    case 'cancelled':
      return 'canceled';
    case 'customer_approval_denied':
    case 'failed':
      return 'failed';
    case 'charged_back':
      return 'charged_back';
    default: {
      const unreachable: never = status;
      throw new GoCardlessMappingError(`unhandled GoCardless payment status ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * gc-node 8.x typed amounts as strings and 10.x as numbers, so a string of digits is
 * accepted too (docs/providers.md#gocardless-api-polling-and-recovery). Either way the
 * value must be an exact integer: "10.5" or 10.5 is rejected, never rounded.
 */
const minorUnits = z.union([z.number(), z.string().regex(/^\d+$/, 'expected an integer amount in minor units')]);

export const goCardlessPaymentSchema = z.looseObject({
  id: z.string().min(1),
  created_at: z.string().nullish(),
  charge_date: z.string().nullish(),
  amount: minorUnits,
  amount_refunded: minorUnits.nullish(),
  currency: z.string().min(1),
  status: z.string().min(1),
  scheme: z.string().nullish(),
  description: z.string().nullish(),
  reference: z.string().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  links: z.looseObject({ mandate: z.string().optional() }).optional(),
});
export type GoCardlessPayment = z.infer<typeof goCardlessPaymentSchema>;

/** `GET /payments/:id` answers `{"payments": {...}}`. */
export const goCardlessPaymentEnvelopeSchema = z.looseObject({ payments: goCardlessPaymentSchema });

export interface GoCardlessMappingContext {
  account: string;
  /** Live or sandbox, when the caller knows which API it talked to. */
  mode?: 'live' | 'test' | null;
}

function toMinor(value: number | string, currency: string, field: string, paymentId: string): number {
  const numeric = typeof value === 'string' ? Number(value) : value;
  let minor: number;
  try {
    minor = parseMinorUnits(numeric, currency);
  } catch (error) {
    throw new GoCardlessMappingError(`GoCardless payment ${paymentId} has an invalid ${field}: ${(error as Error).message}`, { cause: error });
  }
  if (minor < 0) throw new GoCardlessMappingError(`GoCardless payment ${paymentId} has a negative ${field} (${minor})`);
  return minor;
}

function parseTimestamp(value: string | null | undefined): Date | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Maps the inner payment object (already validated by goCardlessPaymentSchema). */
export function mapGoCardlessPaymentResource(payment: GoCardlessPayment, context: GoCardlessMappingContext, refunds?: GoCardlessRefund[]): PaymentSnapshot {
  if (!isGoCardlessPaymentStatus(payment.status)) {
    throw new GoCardlessMappingError(
      `GoCardless payment ${payment.id} has unknown status ${JSON.stringify(payment.status)}; ` +
        `expected one of ${GOCARDLESS_PAYMENT_STATUSES.join(', ')}`,
    );
  }
  const currency = payment.currency;
  const amount = toMinor(payment.amount, currency, 'amount', payment.id);
  const refundedMinor =
    payment.amount_refunded === null || payment.amount_refunded === undefined
      ? 0
      : toMinor(payment.amount_refunded, currency, 'amount_refunded', payment.id);

  return {
    provider: 'gocardless',
    account: context.account,
    providerPaymentId: payment.id,
    providerStatus: payment.status,
    status: normaliseGoCardlessStatus(payment.status),
    amount: { minor: amount, currency },
    refundedMinor,
    // GoCardless reports no charged-back amount; a Direct Debit chargeback returns the whole collection.
    chargedBackMinor: payment.status === 'charged_back' ? amount : 0,
    mode: context.mode ?? null,
    method: payment.scheme ?? null,
    metadata: payment.metadata ?? {},
    providerCreatedAt: parseTimestamp(payment.created_at),
    // Only when listed: absent means not looked at (see PaymentSnapshot.refunds). GoCardless
    // has no chargeback resource: a chargeback is the payment's own status.
    ...(refunds ? { refunds: refunds.map(mapGoCardlessRefund) } : {}),
    // A GoCardless payment carries ids, amounts and the merchant's own description and
    // reference, no payer data (names and bank details live on customers and mandates).
    raw: { ...payment },
  };
}

/**
 * Maps a `GET /payments/:id` body (`{"payments": {...}}`). Throws
 * GoCardlessMappingError with the zod issues when the shape is wrong, and for an
 * unknown status (a new GoCardless status must be handled deliberately, not guessed).
 */
export function mapGoCardlessPayment(body: unknown, context: GoCardlessMappingContext): PaymentSnapshot {
  const parsed = goCardlessPaymentEnvelopeSchema.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw new GoCardlessMappingError(`malformed GoCardless payment body: ${issues}`);
  }
  return mapGoCardlessPaymentResource(parsed.data.payments, context);
}

/**
 * GoCardless refund statuses onto the normalised ones (docs/providers.md, GoCardless
 * refund statuses): created and pending_submission are `pending` (still cancelable),
 * submitted is `processing`, paid (in a payout) is `refunded`, bounced and funds_returned
 * are `failed` (the money came back). The provider status is kept verbatim beside it.
 */
export const GOCARDLESS_REFUND_STATUSES = ['created', 'pending_submission', 'submitted', 'paid', 'cancelled', 'bounced', 'funds_returned'] as const;
export type GoCardlessRefundStatus = (typeof GOCARDLESS_REFUND_STATUSES)[number];

export function normaliseGoCardlessRefundStatus(status: GoCardlessRefundStatus): RefundStatus {
  switch (status) {
    case 'created':
    case 'pending_submission':
      return 'pending';
    case 'submitted':
      return 'processing';
    case 'paid':
      return 'refunded';
    case 'cancelled':
      return 'canceled';
    case 'bounced':
    case 'funds_returned':
      return 'failed';
    default: {
      const unreachable: never = status;
      throw new GoCardlessMappingError(`unhandled GoCardless refund status ${JSON.stringify(unreachable)}`);
    }
  }
}

export const goCardlessRefundSchema = z.looseObject({
  id: z.string().min(1),
  created_at: z.string().nullish(),
  amount: minorUnits,
  currency: z.string().min(1),
  status: z.string().min(1),
  links: z.looseObject({ payment: z.string().optional() }).optional(),
});
export type GoCardlessRefund = z.infer<typeof goCardlessRefundSchema>;

/** `GET /refunds?payment=` answers `{"refunds": [...], "meta": {"cursors": ...}}`. */
export const goCardlessRefundsPageSchema = z.looseObject({
  refunds: z.array(goCardlessRefundSchema),
  meta: z.looseObject({ cursors: z.looseObject({ after: z.string().nullish() }) }).optional(),
});

export function mapGoCardlessRefund(refund: GoCardlessRefund): RefundItem {
  const status = refund.status;
  if (!(GOCARDLESS_REFUND_STATUSES as readonly string[]).includes(status)) {
    throw new GoCardlessMappingError(
      `GoCardless refund ${refund.id} has unknown status ${JSON.stringify(status)}; expected one of ${GOCARDLESS_REFUND_STATUSES.join(', ')}`,
    );
  }
  return {
    id: refund.id,
    amount: { minor: toMinor(refund.amount, refund.currency, 'amount', refund.id), currency: refund.currency },
    status: normaliseGoCardlessRefundStatus(status as GoCardlessRefundStatus),
    providerStatus: status,
    createdAt: parseTimestamp(refund.created_at),
  };
}

/** Whether a fetch of this payment should list its refunds: it has refunded amounts, or the trigger was about a refund. */
export function goCardlessNeedsRefunds(payment: GoCardlessPayment, hinted: boolean): boolean {
  if (hinted) return true;
  const refunded = payment.amount_refunded;
  return refunded !== null && refunded !== undefined && Number(refunded) > 0;
}
