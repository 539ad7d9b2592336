import type { PaymentSnapshot, PaymentStatus } from '../../src/providers/types.js';

/** A provider snapshot as the write path receives it: EUR 12.50 by iDEAL, test mode, status as given. */
export function testSnapshot(id: string, status: PaymentStatus, provider: 'mollie' | 'gocardless' = 'mollie'): PaymentSnapshot {
  return {
    provider,
    account: 'default',
    providerPaymentId: id,
    providerStatus: status,
    status,
    amount: { minor: 1250, currency: 'EUR' },
    refundedMinor: 0,
    chargedBackMinor: 0,
    mode: 'test',
    method: 'ideal',
    metadata: null,
    providerCreatedAt: new Date('2026-11-01T10:00:00Z'),
    raw: { id, status },
  };
}
