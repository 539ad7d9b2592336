import { describe, expect, it } from 'vitest';
import {
  GOCARDLESS_PAYMENT_STATUSES,
  GoCardlessMappingError,
  mapGoCardlessPayment,
  normaliseGoCardlessStatus,
} from '../../src/providers/gocardless/mapping.js';
import { PAYMENT_STATUSES } from '../../src/providers/types.js';

/** Shaped like gc-node's Payment type (docs/providers.md#gocardless-api-polling-and-recovery). */
function paymentBody(overrides: Record<string, unknown> = {}) {
  return {
    payments: {
      id: 'PM01AB2CD3EF4G',
      created_at: '2024-03-20T09:14:52.123Z',
      charge_date: '2024-03-25',
      amount: 4995,
      amount_refunded: 0,
      currency: 'EUR',
      description: 'Invoice INV-2024-0042',
      reference: null,
      status: 'confirmed',
      scheme: 'sepa_core',
      metadata: { invoice_id: 'INV-2024-0042' },
      retry_if_possible: true,
      faster_ach: false,
      fx: { fx_currency: 'EUR', fx_amount: null, exchange_rate: null, estimated_exchange_rate: null },
      links: { mandate: 'MD000AMA19XGEC', creditor: 'CR000SANDBOX01' },
      ...overrides,
    },
  };
}

const context = { account: 'default' };

describe('normaliseGoCardlessStatus', () => {
  const expected: Record<(typeof GOCARDLESS_PAYMENT_STATUSES)[number], string> = {
    pending_customer_approval: 'pending',
    pending_submission: 'pending',
    submitted: 'pending',
    confirmed: 'paid',
    paid_out: 'paid',
    cancelled: 'canceled',
    customer_approval_denied: 'failed',
    failed: 'failed',
    charged_back: 'charged_back',
  };

  it.each(Object.entries(expected))('%s → %s', (providerStatus, status) => {
    const snapshot = mapGoCardlessPayment(paymentBody({ status: providerStatus }), context);
    expect(snapshot.status).toBe(status);
    expect(snapshot.providerStatus).toBe(providerStatus);
    expect(normaliseGoCardlessStatus(providerStatus as (typeof GOCARDLESS_PAYMENT_STATUSES)[number])).toBe(status);
  });

  it('covers every GoCardless status with a normalised one the port knows', () => {
    expect(Object.keys(expected).sort()).toEqual([...GOCARDLESS_PAYMENT_STATUSES].sort());
    for (const status of GOCARDLESS_PAYMENT_STATUSES) {
      expect(PAYMENT_STATUSES).toContain(normaliseGoCardlessStatus(status));
    }
  });
});

describe('mapGoCardlessPayment', () => {
  it('maps a confirmed payment completely', () => {
    const snapshot = mapGoCardlessPayment(paymentBody(), { account: 'shop-eu' });
    expect(snapshot).toEqual({
      provider: 'gocardless',
      account: 'shop-eu',
      providerPaymentId: 'PM01AB2CD3EF4G',
      providerStatus: 'confirmed',
      status: 'paid',
      amount: { minor: 4995, currency: 'EUR' },
      refundedMinor: 0,
      chargedBackMinor: 0,
      mode: null,
      method: 'sepa_core',
      metadata: { invoice_id: 'INV-2024-0042' },
      providerCreatedAt: new Date('2024-03-20T09:14:52.123Z'),
      raw: paymentBody().payments,
    });
  });

  it('takes mode from the context', () => {
    expect(mapGoCardlessPayment(paymentBody(), { account: 'a', mode: 'test' }).mode).toBe('test');
    expect(mapGoCardlessPayment(paymentBody(), { account: 'a', mode: 'live' }).mode).toBe('live');
  });

  it('reports refunds from amount_refunded, in minor units', () => {
    const snapshot = mapGoCardlessPayment(paymentBody({ amount: 10_000, amount_refunded: 2_501, status: 'paid_out' }), context);
    expect(snapshot.refundedMinor).toBe(2_501);
    expect(snapshot.amount.minor).toBe(10_000);
    expect(snapshot.chargedBackMinor).toBe(0);
  });

  it('treats a missing or null amount_refunded as 0', () => {
    const { payments } = paymentBody();
    const { amount_refunded: _drop, ...withoutRefunded } = payments;
    expect(mapGoCardlessPayment({ payments: withoutRefunded }, context).refundedMinor).toBe(0);
    expect(mapGoCardlessPayment(paymentBody({ amount_refunded: null }), context).refundedMinor).toBe(0);
  });

  it('charges back the whole amount when charged_back, and nothing otherwise', () => {
    expect(mapGoCardlessPayment(paymentBody({ status: 'charged_back', amount: 1234 }), context).chargedBackMinor).toBe(1234);
    for (const status of GOCARDLESS_PAYMENT_STATUSES.filter((s) => s !== 'charged_back')) {
      expect(mapGoCardlessPayment(paymentBody({ status, amount: 1234 }), context).chargedBackMinor).toBe(0);
    }
  });

  it('keeps zero-decimal and three-decimal currencies exact', () => {
    expect(mapGoCardlessPayment(paymentBody({ amount: 1000, currency: 'JPY' }), context).amount).toEqual({ minor: 1000, currency: 'JPY' });
    expect(mapGoCardlessPayment(paymentBody({ amount: 1500, currency: 'KWD' }), context).amount).toEqual({ minor: 1500, currency: 'KWD' });
  });

  it('accepts integer strings, as gc-node 8.x typed amounts', () => {
    const snapshot = mapGoCardlessPayment(paymentBody({ amount: '4995', amount_refunded: '100' }), context);
    expect(snapshot.amount.minor).toBe(4995);
    expect(snapshot.refundedMinor).toBe(100);
  });

  it('rejects fractional, negative, unsafe or non-numeric amounts instead of rounding', () => {
    for (const amount of [49.95, '49.95', -100, '-100', 2 ** 53, '99999999999999999999', 'ten', null, true]) {
      expect(() => mapGoCardlessPayment(paymentBody({ amount }), context), String(amount)).toThrow(GoCardlessMappingError);
    }
    expect(() => mapGoCardlessPayment(paymentBody({ amount_refunded: 1.5 }), context)).toThrow(/amount_refunded/);
  });

  it('rejects an invalid currency', () => {
    expect(() => mapGoCardlessPayment(paymentBody({ currency: 'eur' }), context)).toThrow(/currency/);
  });

  it('throws a clear error for an unknown status, naming the payment and the known statuses', () => {
    const attempt = () => mapGoCardlessPayment(paymentBody({ status: 'partially_paid' }), context);
    expect(attempt).toThrow(GoCardlessMappingError);
    expect(attempt).toThrow(/PM01AB2CD3EF4G.*"partially_paid".*pending_submission/);
  });

  it('uses the scheme as the method and tolerates its absence', () => {
    expect(mapGoCardlessPayment(paymentBody({ scheme: 'bacs' }), context).method).toBe('bacs');
    expect(mapGoCardlessPayment(paymentBody({ scheme: null }), context).method).toBeNull();
  });

  it('defaults metadata to {} and keeps unknown fields in raw', () => {
    const snapshot = mapGoCardlessPayment(paymentBody({ metadata: null, brand_new_field: { x: 1 } }), context);
    expect(snapshot.metadata).toEqual({});
    expect(snapshot.raw.brand_new_field).toEqual({ x: 1 });
    expect(snapshot.raw.links).toEqual({ mandate: 'MD000AMA19XGEC', creditor: 'CR000SANDBOX01' });
  });

  it('gives providerCreatedAt null when created_at is missing or unreadable', () => {
    expect(mapGoCardlessPayment(paymentBody({ created_at: undefined }), context).providerCreatedAt).toBeNull();
    expect(mapGoCardlessPayment(paymentBody({ created_at: 'yesterday-ish' }), context).providerCreatedAt).toBeNull();
  });

  it('rejects a body without the payments envelope', () => {
    expect(() => mapGoCardlessPayment(paymentBody().payments, context)).toThrow(/malformed GoCardless payment body.*payments/);
    expect(() => mapGoCardlessPayment({ payments: { id: 'PM1' } }, context)).toThrow(GoCardlessMappingError);
    expect(() => mapGoCardlessPayment(null, context)).toThrow(GoCardlessMappingError);
  });

  it('is pure: the same input maps to equal snapshots and the input is not modified', () => {
    const body = paymentBody();
    const before = structuredClone(body);
    const first = mapGoCardlessPayment(body, context);
    const second = mapGoCardlessPayment(body, context);
    expect(first).toEqual(second);
    expect(body).toEqual(before);
    expect(first.raw).not.toBe(body.payments);
  });
});
