import { PaymentResponse$inboundSchema, type PaymentResponse } from 'mollie-api-typescript/models';
import { describe, expect, it } from 'vitest';
import { MoneyError } from '../../src/money.js';
import { MollieMappingError, mapMolliePayment, mapMollieStatus } from '../../src/providers/mollie/mapping.js';

// A payment as Mollie puts it on the wire (docs/providers.md#example-mollie-classic-webhook), with personal details added.
const WIRE_PAYMENT = {
  resource: 'payment',
  id: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
  mode: 'live',
  status: 'paid',
  amount: { currency: 'EUR', value: '49.95' },
  amountRefunded: { currency: 'EUR', value: '10.00' },
  amountRemaining: { currency: 'EUR', value: '39.95' },
  amountChargedBack: { currency: 'EUR', value: '5.01' },
  description: 'Invoice INV-2024-0042',
  method: 'ideal',
  metadata: { invoiceId: 'INV-2024-0042', tenant: 'acme' },
  sequenceType: 'recurring',
  profileId: 'pfl_QkEhN94Ba',
  customerId: 'cst_8wmqcHMN4U',
  mandateId: 'mdt_h3gAaD5zP',
  subscriptionId: 'sub_rVKGtNd6s3',
  settlementId: 'stl_jDk30akdN',
  redirectUrl: 'https://shop.example.com/return/INV-2024-0042',
  webhookUrl: 'https://gateway.example.com/webhooks/mollie',
  createdAt: '2024-03-20T09:13:37+00:00',
  paidAt: '2024-03-20T09:14:52+00:00',
  details: {
    consumerName: 'Hr E G H Küppers en/of MW M.J. Küppers-Veeneman',
    consumerAccount: 'NL53INGB0618365937',
    consumerBic: 'INGBNL2A',
  },
  billingAddress: { givenName: 'Piet', familyName: 'Mondriaan', email: 'piet@example.org', streetAndNumber: 'Keizersgracht 126' },
  _links: {
    self: { href: 'https://api.mollie.com/v2/payments/tr_5B8cwPMGnU6qLbRvo7qEZo', type: 'application/hal+json' },
    dashboard: { href: 'https://my.mollie.com/dashboard/org_12345678/payments/tr_5B8cwPMGnU6qLbRvo7qEZo', type: 'text/html' },
  },
};

/** The payment as `payments.get` resolves it: parsed by the SDK's own schema. */
function sdkPayment(overrides: Record<string, unknown> = {}): PaymentResponse {
  return PaymentResponse$inboundSchema.parse({ ...WIRE_PAYMENT, ...overrides });
}

describe('mapMolliePayment', () => {
  it('maps a paid payment with refunds and chargebacks to exact minor units', () => {
    const snapshot = mapMolliePayment(sdkPayment(), 'acme');
    expect(snapshot).toMatchObject({
      provider: 'mollie',
      account: 'acme',
      providerPaymentId: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
      providerStatus: 'paid',
      status: 'paid',
      amount: { minor: 4995, currency: 'EUR' },
      refundedMinor: 1000,
      chargedBackMinor: 501,
      mode: 'live',
      method: 'ideal',
      metadata: { invoiceId: 'INV-2024-0042', tenant: 'acme' },
    });
    expect(snapshot.providerCreatedAt?.toISOString()).toBe('2024-03-20T09:13:37.000Z');
  });

  it('drops personal data and links from raw but keeps what billing needs', () => {
    const { raw } = mapMolliePayment(sdkPayment(), 'default');
    expect(raw).not.toHaveProperty('details');
    expect(raw).not.toHaveProperty('billingAddress');
    expect(raw).not.toHaveProperty('links');
    expect(raw).not.toHaveProperty('_links');
    const text = JSON.stringify(raw);
    for (const personal of ['Küppers', 'NL53INGB0618365937', 'INGBNL2A', 'Mondriaan', 'piet@example.org']) {
      expect(text).not.toContain(personal);
    }
    expect(raw).toMatchObject({
      id: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
      status: 'paid',
      method: 'ideal',
      mode: 'live',
      description: 'Invoice INV-2024-0042',
      metadata: { invoiceId: 'INV-2024-0042', tenant: 'acme' },
      sequenceType: 'recurring',
      customerId: 'cst_8wmqcHMN4U',
      mandateId: 'mdt_h3gAaD5zP',
      subscriptionId: 'sub_rVKGtNd6s3',
      settlementId: 'stl_jDk30akdN',
      createdAt: '2024-03-20T09:13:37+00:00',
      paidAt: '2024-03-20T09:14:52+00:00',
      amountRefunded: { currency: 'EUR', value: '10.00' },
      webhookUrl: 'https://gateway.example.com/webhooks/mollie',
      redirectUrl: 'https://shop.example.com/return/INV-2024-0042',
    });
  });

  it('reports 0 refunded and charged back when Mollie omits the amounts', () => {
    const payment = sdkPayment({ status: 'open', amountRefunded: undefined, amountRemaining: undefined, amountChargedBack: undefined, paidAt: undefined });
    const snapshot = mapMolliePayment(payment, 'default');
    expect(snapshot.refundedMinor).toBe(0);
    expect(snapshot.chargedBackMinor).toBe(0);
    expect(snapshot.status).toBe('open');
  });

  it('uses the currency exponent: JPY has no decimals, KWD has three', () => {
    const yen = sdkPayment({ amount: { currency: 'JPY', value: '1000' }, amountRefunded: { currency: 'JPY', value: '250' }, amountChargedBack: undefined });
    expect(mapMolliePayment(yen, 'default')).toMatchObject({ amount: { minor: 1000, currency: 'JPY' }, refundedMinor: 250 });
    const dinar = sdkPayment({ amount: { currency: 'KWD', value: '1.500' }, amountRefunded: undefined, amountChargedBack: undefined });
    expect(mapMolliePayment(dinar, 'default').amount).toEqual({ minor: 1500, currency: 'KWD' });
  });

  it('rejects an amount with the wrong number of decimals instead of guessing', () => {
    expect(() => mapMolliePayment(sdkPayment({ amount: { currency: 'EUR', value: '49.9' } }), 'default')).toThrow(MoneyError);
  });

  it('rejects a refunded amount in another currency than the payment', () => {
    const payment = sdkPayment({ amountRefunded: { currency: 'USD', value: '1.00' } });
    expect(() => mapMolliePayment(payment, 'default')).toThrow(/amountRefunded is in USD, but the payment is in EUR/);
  });

  it('maps an unrecognised mode to null and a missing method and metadata to null', () => {
    const payment = sdkPayment({ mode: 'sandbox', method: null, metadata: null });
    const snapshot = mapMolliePayment(payment, 'default');
    expect(snapshot.mode).toBeNull();
    expect(snapshot.method).toBeNull();
    expect(snapshot.metadata).toBeNull();
  });

  it('throws on an unknown status rather than guessing one', () => {
    const payment = sdkPayment({ status: 'refunded' });
    expect(payment.status).toBe('refunded'); // the SDK's enum is open: it lets it through
    expect(() => mapMolliePayment(payment, 'default')).toThrow(MollieMappingError);
    expect(() => mapMolliePayment(payment, 'default')).toThrow(/unknown Mollie payment status "refunded"/);
  });
});

describe('mapMollieStatus', () => {
  it.each(['open', 'pending', 'authorized', 'paid', 'canceled', 'expired', 'failed'] as const)('maps %s to itself', (status) => {
    expect(mapMollieStatus(status)).toBe(status);
  });

  it.each(['cancelled', 'PAID', 'charged_back', '', 'toString', '__proto__'])('rejects %j', (status) => {
    expect(() => mapMollieStatus(status)).toThrow(MollieMappingError);
  });
});
