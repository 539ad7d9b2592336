import { describe, expect, it } from 'vitest';
import { eventTypesFor, type TrackedState } from '../../src/events/payment-events.js';

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
