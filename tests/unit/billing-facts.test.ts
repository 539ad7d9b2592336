import { PaymentResponse$inboundSchema } from 'mollie-api-typescript/models';
import { describe, expect, it } from 'vitest';
import { billingFacts } from '../../src/events/billing-facts.js';
import { buildPaymentEvents } from '../../src/events/payment-events.js';
import { mapGoCardlessPayment } from '../../src/providers/gocardless/mapping.js';
import { mapMolliePayment } from '../../src/providers/mollie/mapping.js';
import { eventContractProblems } from '../helpers/event-contract.js';

// A failed Mollie card payment of a subscription, as the wire has it, with personal details.
const FAILED_CARD = {
  resource: 'payment',
  id: 'tr_failedCard1',
  mode: 'test',
  status: 'failed',
  amount: { currency: 'EUR', value: '19.00' },
  description: 'Subscription March',
  method: 'creditcard',
  metadata: { invoiceId: 'INV-7' },
  sequenceType: 'recurring',
  profileId: 'pfl_QkEhN94Ba',
  customerId: 'cst_8wmqcHMN4U',
  mandateId: 'mdt_h3gAaD5zP',
  subscriptionId: 'sub_rVKGtNd6s3',
  createdAt: '2024-03-20T09:13:37+00:00',
  failedAt: '2024-03-20T09:14:52+00:00',
  details: {
    cardHolder: 'Piet Mondriaan',
    cardNumber: '6787',
    failureReason: 'insufficient_funds',
    failureMessage: 'The card has insufficient funds',
  },
  _links: {
    self: { href: 'https://api.mollie.com/v2/payments/tr_failedCard1', type: 'application/hal+json' },
    dashboard: { href: 'https://my.mollie.com/dashboard/payments/tr_failedCard1', type: 'text/html' },
  },
};

describe('billing facts', () => {
  it('Mollie: failure reason and code, description, sequence type and links; no card holder kept', () => {
    const snapshot = mapMolliePayment(PaymentResponse$inboundSchema.parse(FAILED_CARD), 'default');
    expect(snapshot.raw.details).toEqual({ failureReason: 'insufficient_funds', failureMessage: 'The card has insufficient funds' });
    expect(JSON.stringify(snapshot.raw)).not.toContain('Mondriaan');
    expect(billingFacts('mollie', snapshot.raw)).toEqual({
      description: 'Subscription March',
      method: 'creditcard',
      sequenceType: 'recurring',
      failureReason: 'insufficient_funds',
      failureCode: 'insufficient_funds',
      failureMessage: 'The card has insufficient funds',
      links: { customer: 'cst_8wmqcHMN4U', mandate: 'mdt_h3gAaD5zP', subscription: 'sub_rVKGtNd6s3', order: null, settlement: null, payout: null, creditor: null },
    });
  });

  it('Mollie SEPA Direct Debit: the bank reason code is normalised', () => {
    const facts = billingFacts('mollie', { method: 'directdebit', details: { bankReasonCode: 'AC04', bankReason: 'Account closed' } });
    expect(facts).toMatchObject({ failureReason: 'account_closed', failureCode: 'AC04', failureMessage: 'Account closed' });
    expect(billingFacts('mollie', { details: { bankReasonCode: 'ZZ99' } }).failureReason).toBe('other');
  });

  it("GoCardless: links from the payment, the failure from the event's cause", () => {
    const snapshot = mapGoCardlessPayment(
      { payments: { id: 'PM01', amount: 1500, currency: 'GBP', status: 'failed', scheme: 'bacs', description: 'Gym', links: { mandate: 'MD01', creditor: 'CR01', subscription: 'SB01' } } },
      { account: 'default' },
    );
    expect(billingFacts('gocardless', snapshot.raw, { code: 'bank_account_closed', message: 'The account was closed' })).toEqual({
      description: 'Gym',
      method: 'bacs',
      sequenceType: 'recurring',
      failureReason: 'account_closed',
      failureCode: 'bank_account_closed',
      failureMessage: 'The account was closed',
      links: { customer: null, mandate: 'MD01', subscription: 'SB01', order: null, settlement: null, payout: null, creditor: 'CR01' },
    });
    expect(billingFacts('gocardless', snapshot.raw).failureReason).toBeNull();
  });

  it('a payment.failed event carries them, and matches its published schema', () => {
    const snapshot = mapMolliePayment(PaymentResponse$inboundSchema.parse(FAILED_CARD), 'default');
    const [event] = buildPaymentEvents({
      provider: 'mollie',
      account: 'default',
      providerPaymentId: snapshot.providerPaymentId,
      version: 2,
      source: 'webhook',
      previous: { status: 'open', providerStatus: 'open', amountMinor: 1900, currency: 'EUR', refundedMinor: 0, chargedBackMinor: 0 },
      next: { status: 'failed', providerStatus: 'failed', amountMinor: 1900, currency: 'EUR', refundedMinor: 0, chargedBackMinor: 0 },
      mode: 'test',
      metadata: snapshot.metadata,
      billing: billingFacts('mollie', snapshot.raw),
      changedAt: new Date('2024-03-20T09:14:52Z'),
    });
    expect(event!.payload.data).toMatchObject({ failureReason: 'insufficient_funds', sequenceType: 'recurring', links: { subscription: 'sub_rVKGtNd6s3' } });
    expect(eventContractProblems(event!.payload)).toEqual([]);
    expect(eventContractProblems({ ...event!.payload, data: { ...event!.payload.data, failureReason: 'broke' } })).not.toEqual([]);
    expect(eventContractProblems({ ...event!.payload, data: { ...event!.payload.data, surprise: 1 } })).not.toEqual([]);
  });
});
