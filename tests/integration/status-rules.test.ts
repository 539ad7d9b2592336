/**
 * The status rules as the guarded upsert enforces them: each case writes a stored
 * snapshot, then offers a second one with its own fence, and checks whether it replaced
 * the first. (The rules live only in SQL; these are the cases that state them.)
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { applySnapshot } from '../../src/payments/apply-snapshot.js';
import type { PaymentSnapshot, PaymentStatus, ProviderName } from '../../src/providers/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Database;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 2 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

interface Offer {
  status: PaymentStatus;
  fence: number;
  /** Varies the amounts, so a same-status offer is a real change and not a refused no-op. */
  refundedMinor?: number;
}

/** Stores `stored` (a first write always applies), then offers `next`: did it replace the stored row? */
async function replaces(provider: ProviderName, stored: Offer, next: Offer): Promise<boolean> {
  const id = `${provider === 'mollie' ? 'tr_' : 'PM'}${randomBytes(5).toString('hex')}`;
  const snapshot = (offer: Offer): PaymentSnapshot => ({
    provider,
    account: 'default',
    providerPaymentId: id,
    providerStatus: offer.status,
    status: offer.status,
    amount: { minor: 1000, currency: 'EUR' },
    refundedMinor: offer.refundedMinor ?? 0,
    chargedBackMinor: 0,
    mode: 'test',
    method: null,
    metadata: null,
    providerCreatedAt: null,
    raw: { id, status: offer.status },
  });
  const first = await applySnapshot(db.db, { snapshot: snapshot(stored), fence: stored.fence, source: 'poll' });
  expect(first.changed).toBe(true);
  return (await applySnapshot(db.db, { snapshot: snapshot(next), fence: next.fence, source: 'poll' })).changed;
}

describe('status rules, enforced by the guarded upsert', () => {
  it('Mollie moves up the lattice and never down or sideways between final statuses', async () => {
    expect(await replaces('mollie', { status: 'open', fence: 5 }, { status: 'pending', fence: 1 })).toBe(true);
    expect(await replaces('mollie', { status: 'pending', fence: 1 }, { status: 'open', fence: 9 })).toBe(false);
    expect(await replaces('mollie', { status: 'authorized', fence: 1 }, { status: 'paid', fence: 2 })).toBe(true);
    expect(await replaces('mollie', { status: 'paid', fence: 1 }, { status: 'failed', fence: 9 })).toBe(false);
    expect(await replaces('mollie', { status: 'expired', fence: 1 }, { status: 'paid', fence: 9 })).toBe(false);
    // Same status: the fresher fetch may carry new amounts; an older one may not.
    expect(await replaces('mollie', { status: 'paid', fence: 1 }, { status: 'paid', fence: 2, refundedMinor: 100 })).toBe(true);
    expect(await replaces('mollie', { status: 'paid', fence: 2 }, { status: 'paid', fence: 1, refundedMinor: 100 })).toBe(false);
  });

  it('GoCardless follows the fence only', async () => {
    expect(await replaces('gocardless', { status: 'paid', fence: 1 }, { status: 'failed', fence: 2 })).toBe(true);
    expect(await replaces('gocardless', { status: 'failed', fence: 2 }, { status: 'paid', fence: 1 })).toBe(false);
  });
});
