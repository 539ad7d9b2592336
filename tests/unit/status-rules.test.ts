import { describe, expect, it } from 'vitest';
import { eventTypesFor, type TrackedState } from '../../src/events/payment-events.js';
import { mayReplace } from '../../src/payments/status-rules.js';

describe('status rules', () => {
  it('Mollie moves up the lattice and never down or sideways between final statuses', () => {
    const at = (status: 'open' | 'pending' | 'authorized' | 'paid' | 'failed' | 'expired', fence: number) => ({ status, fence });
    expect(mayReplace('mollie', at('open', 5), at('pending', 1))).toBe(true);
    expect(mayReplace('mollie', at('pending', 1), at('open', 9))).toBe(false);
    expect(mayReplace('mollie', at('authorized', 1), at('paid', 2))).toBe(true);
    expect(mayReplace('mollie', at('paid', 1), at('failed', 9))).toBe(false);
    expect(mayReplace('mollie', at('expired', 1), at('paid', 9))).toBe(false);
    // Same status: the fresher fetch may carry new amounts.
    expect(mayReplace('mollie', at('paid', 1), at('paid', 2))).toBe(true);
    expect(mayReplace('mollie', at('paid', 2), at('paid', 1))).toBe(false);
  });

  it('GoCardless follows the fence only', () => {
    expect(mayReplace('gocardless', { status: 'paid', fence: 1 }, { status: 'failed', fence: 2 })).toBe(true);
    expect(mayReplace('gocardless', { status: 'failed', fence: 2 }, { status: 'paid', fence: 1 })).toBe(false);
  });
});

describe('event types for a change', () => {
  const base: TrackedState = { status: 'paid', providerStatus: 'paid', amountMinor: 1000, currency: 'EUR', refundedMinor: 0, chargedBackMinor: 0 };
  it.each<[string, TrackedState | null, Partial<TrackedState>, string[]]>([
    ['first sight', null, {}, ['payment.paid']],
    ['status change', { ...base, status: 'pending', providerStatus: 'pending' }, {}, ['payment.paid']],
    ['refund', base, { refundedMinor: 500 }, ['payment.refunded']],
    ['refund failed', { ...base, refundedMinor: 500 }, { refundedMinor: 0 }, ['payment.refund_reversed']],
    ['chargeback', base, { chargedBackMinor: 1000 }, ['payment.charged_back']],
    ['chargeback reversed', { ...base, chargedBackMinor: 1000 }, {}, ['payment.chargeback_reversed']],
    ['provider status only', { ...base, providerStatus: 'confirmed' }, { providerStatus: 'paid_out' }, ['payment.updated']],
    ['first seen paid and refunded', null, { refundedMinor: 100 }, ['payment.paid', 'payment.refunded']],
    ['GoCardless charged_back status with amount', { ...base }, { status: 'charged_back', providerStatus: 'charged_back', chargedBackMinor: 1000 }, ['payment.charged_back']],
  ])('%s', (_, previous, next, expected) => {
    expect(eventTypesFor(previous, { ...base, ...next })).toEqual(expected);
  });
});
