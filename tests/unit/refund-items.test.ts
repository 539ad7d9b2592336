import { ListEntityChargeback$inboundSchema, ListRefundResponse$inboundSchema } from 'mollie-api-typescript/models';
import { describe, expect, it } from 'vitest';
import { refundEventType } from '../../src/events/refund-events.js';
import { adjustmentRank, mayReplaceAdjustment } from '../../src/payments/adjustment-rules.js';
import {
  GOCARDLESS_REFUND_STATUSES,
  GoCardlessMappingError,
  goCardlessNeedsRefunds,
  goCardlessPaymentSchema,
  mapGoCardlessRefund,
  normaliseGoCardlessRefundStatus,
} from '../../src/providers/gocardless/mapping.js';
import { MollieMappingError, mapMollieChargeback, mapMollieRefund } from '../../src/providers/mollie/mapping.js';
import { REFUND_STATUSES } from '../../src/providers/types.js';

// A refund and a chargeback as Mollie lists them (GET /v2/payments/:id/refunds, /chargebacks).
const WIRE_REFUND = {
  resource: 'refund',
  id: 're_4qqhO89gsT',
  mode: 'live',
  description: 'Order #33',
  amount: { currency: 'EUR', value: '5.95' },
  metadata: null,
  paymentId: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
  status: 'pending',
  createdAt: '2024-03-21T10:00:00+00:00',
  _links: {
    self: { href: 'https://api.mollie.com/v2/payments/tr_5B8cwPMGnU6qLbRvo7qEZo/refunds/re_4qqhO89gsT', type: 'application/hal+json' },
    payment: { href: 'https://api.mollie.com/v2/payments/tr_5B8cwPMGnU6qLbRvo7qEZo', type: 'application/hal+json' },
  },
};
const WIRE_CHARGEBACK = {
  resource: 'chargeback',
  id: 'chb_n9z0tp',
  amount: { currency: 'EUR', value: '49.95' },
  reason: { code: 'AC01', description: 'Account identifier incorrect' },
  paymentId: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
  createdAt: '2024-04-01T12:00:00+00:00',
  reversedAt: null,
  _links: {
    self: { href: 'https://api.mollie.com/v2/payments/tr_5B8cwPMGnU6qLbRvo7qEZo/chargebacks/chb_n9z0tp', type: 'application/hal+json' },
    payment: { href: 'https://api.mollie.com/v2/payments/tr_5B8cwPMGnU6qLbRvo7qEZo', type: 'application/hal+json' },
  },
};

describe('Mollie refund and chargeback items', () => {
  it('maps a refund as the SDK lists it', () => {
    expect(mapMollieRefund(ListRefundResponse$inboundSchema.parse(WIRE_REFUND))).toEqual({
      id: 're_4qqhO89gsT',
      amount: { minor: 595, currency: 'EUR' },
      status: 'pending',
      providerStatus: 'pending',
      createdAt: new Date('2024-03-21T10:00:00Z'),
    });
  });

  it('refuses a refund status it does not know', () => {
    expect(() => mapMollieRefund(ListRefundResponse$inboundSchema.parse({ ...WIRE_REFUND, status: 'reversed' }))).toThrow(MollieMappingError);
  });

  it('a chargeback is received until Mollie sets reversedAt', () => {
    const chargeback = ListEntityChargeback$inboundSchema.parse(WIRE_CHARGEBACK);
    expect(mapMollieChargeback(chargeback)).toMatchObject({ id: 'chb_n9z0tp', amount: { minor: 4995, currency: 'EUR' }, status: 'received', reversed: false });
    expect(mapMollieChargeback({ ...chargeback, reversedAt: '2024-04-10T12:00:00+00:00' })).toMatchObject({ status: 'reversed', providerStatus: 'reversed', reversed: true });
  });
});

describe('GoCardless refund items', () => {
  const refund = { id: 'RF123', created_at: '2024-03-21T10:00:00.000Z', amount: 1000, currency: 'GBP', status: 'paid', links: { payment: 'PM123', mandate: 'MD1' } };

  it('maps a refund resource, keeping the provider status beside the normalised one', () => {
    expect(mapGoCardlessRefund(refund)).toEqual({ id: 'RF123', amount: { minor: 1000, currency: 'GBP' }, status: 'refunded', providerStatus: 'paid', createdAt: new Date('2024-03-21T10:00:00Z') });
    expect(() => mapGoCardlessRefund({ ...refund, status: 'teleported' })).toThrow(GoCardlessMappingError);
  });

  it('normalises every GoCardless refund status to one the port knows', () => {
    for (const status of GOCARDLESS_REFUND_STATUSES) expect(REFUND_STATUSES).toContain(normaliseGoCardlessRefundStatus(status));
    expect(normaliseGoCardlessRefundStatus('bounced')).toBe('failed');
    expect(normaliseGoCardlessRefundStatus('created')).toBe('pending');
  });

  it('lists refunds only for a payment with refunded amounts, or when a refund event asked', () => {
    const payment = goCardlessPaymentSchema.parse({ id: 'PM1', amount: 1000, currency: 'GBP', status: 'confirmed' });
    expect(goCardlessNeedsRefunds(payment, false)).toBe(false);
    expect(goCardlessNeedsRefunds({ ...payment, amount_refunded: 0 }, false)).toBe(false);
    expect(goCardlessNeedsRefunds({ ...payment, amount_refunded: 200 }, false)).toBe(true);
    expect(goCardlessNeedsRefunds({ ...payment, amount_refunded: '200' }, false)).toBe(true);
    expect(goCardlessNeedsRefunds(payment, true)).toBe(true);
  });
});

describe('adjustment rules', () => {
  it('ranks every status each mapping produces', () => {
    for (const status of REFUND_STATUSES) expect(adjustmentRank('mollie', 'refund', status)).toBeDefined();
    for (const status of GOCARDLESS_REFUND_STATUSES) expect(adjustmentRank('gocardless', 'refund', status)).toBeDefined();
    for (const provider of ['mollie', 'gocardless'] as const) {
      expect(adjustmentRank(provider, 'chargeback', 'received')).toBeLessThan(adjustmentRank(provider, 'chargeback', 'reversed')!);
    }
    expect(adjustmentRank('mollie', 'refund', 'nonsense')).toBeUndefined();
  });

  const state = (providerStatus: string, fence: number, amountMinor = 500) => ({ rank: adjustmentRank('mollie', 'refund', providerStatus)!, providerStatus, fence, amountMinor, currency: 'EUR' });

  it('moves forward only, whatever the fences', () => {
    expect(mayReplaceAdjustment(state('pending', 5), state('processing', 4))).toBe(true);
    expect(mayReplaceAdjustment(state('processing', 4), state('pending', 5))).toBe(false);
    expect(mayReplaceAdjustment(state('refunded', 4), state('canceled', 5))).toBe(false);
    // A refund can fail after it was refunded; never the other way round.
    expect(mayReplaceAdjustment(state('refunded', 4), state('failed', 3))).toBe(true);
    expect(mayReplaceAdjustment(state('failed', 4), state('refunded', 5))).toBe(false);
    expect(mayReplaceAdjustment(state('pending', 4), state('pending', 5))).toBe(false);
  });

  it('at the same status, only a later fetch that corrects the amount', () => {
    expect(mayReplaceAdjustment(state('pending', 4, 500), state('pending', 5, 400))).toBe(true);
    expect(mayReplaceAdjustment(state('pending', 5, 500), state('pending', 4, 400))).toBe(false);
  });

  it('names the event after the new status, or refund.updated when only the provider status moved', () => {
    expect(refundEventType({ inserted: true, status: 'refunded', previous_status: null })).toBe('refund.refunded');
    expect(refundEventType({ inserted: false, status: 'processing', previous_status: 'pending' })).toBe('refund.processing');
    expect(refundEventType({ inserted: false, status: 'pending', previous_status: 'pending' })).toBe('refund.updated');
  });
});
