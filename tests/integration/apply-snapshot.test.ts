import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { applySnapshot, takeFetchFence } from '../../src/payments/apply-snapshot.js';
import type { PaymentSnapshot, PaymentStatus, ProviderName } from '../../src/providers/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 4 });
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await db?.close();
  await database?.drop();
});

function snapshot(provider: ProviderName, id: string, providerStatus: string, status: PaymentStatus, extra: Partial<PaymentSnapshot> = {}): PaymentSnapshot {
  return {
    provider,
    account: 'default',
    providerPaymentId: id,
    providerStatus,
    status,
    amount: { minor: 4995, currency: 'EUR' },
    refundedMinor: 0,
    chargedBackMinor: 0,
    mode: 'test',
    method: 'ideal',
    metadata: { invoice: 'INV-1' },
    providerCreatedAt: new Date('2026-11-01T10:00:00Z'),
    raw: { id, status: providerStatus },
    ...extra,
  };
}

const newId = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

async function state(id: string) {
  const [row] = await sql<{ status: string; provider_status: string; version: number; refunded_minor: number }[]>`
    select status, provider_status, version, refunded_minor::int as refunded_minor from payments where provider_payment_id = ${id}`;
  const events = await sql<{ type: string }[]>`select type from outbox where provider_payment_id = ${id} order by id`;
  const transitions = await sql<{ new_status: string }[]>`
    select t.new_status from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id = ${id} order by t.version`;
  return { row, events: events.map((e) => e.type), transitions: transitions.map((t) => t.new_status) };
}

describe('applySnapshot: the guarded upsert', () => {
  it('inserts a new payment with version 1, one transition and one event', async () => {
    const id = newId('tr_');
    const result = await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'open', 'open'), fence: await takeFetchFence(db.db), source: 'webhook' });
    expect(result).toMatchObject({ changed: true, version: 1, previous: null, eventTypes: ['payment.open'] });
    expect(await state(id)).toMatchObject({ row: { status: 'open', version: 1 }, events: ['payment.open'], transitions: ['open'] });
  });

  it('a stale Mollie snapshot after a fresh one changes nothing and emits nothing', async () => {
    const id = newId('tr_');
    const staleFence = await takeFetchFence(db.db);
    const freshFence = await takeFetchFence(db.db);
    await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid'), fence: freshFence, source: 'webhook' });
    // The poll whose fetch started first (and saw "pending") lands last.
    const stale = await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'pending', 'pending'), fence: staleFence, source: 'poll' });
    expect(stale.changed).toBe(false);
    // Even a newer fetch cannot move a final Mollie status backwards or sideways.
    const sideways = await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'failed', 'failed'), fence: await takeFetchFence(db.db), source: 'poll' });
    expect(sideways.changed).toBe(false);
    expect(await state(id)).toMatchObject({ row: { status: 'paid', version: 1 }, events: ['payment.paid'], transitions: ['paid'] });
  });

  it('the same observation twice is one change and one event', async () => {
    const id = newId('tr_');
    const first = await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' });
    const second = await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid'), fence: await takeFetchFence(db.db), source: 'sync' });
    expect([first.changed, second.changed]).toEqual([true, false]);
    expect((await state(id)).events).toEqual(['payment.paid']);
  });

  it('a Mollie refund and its reversal change amounts, not status, each with its own event', async () => {
    const id = newId('tr_');
    await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' });
    const staleFence = await takeFetchFence(db.db);
    await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid', { refundedMinor: 1000 }), fence: await takeFetchFence(db.db), source: 'webhook' });
    // A fetch that started before the refund landed must not undo it.
    const stale = await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid'), fence: staleFence, source: 'poll' });
    expect(stale.changed).toBe(false);
    await applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid', { refundedMinor: 0 }), fence: await takeFetchFence(db.db), source: 'webhook' });
    const final = await state(id);
    expect(final.row).toMatchObject({ status: 'paid', version: 3, refunded_minor: 0 });
    expect(final.events).toEqual(['payment.paid', 'payment.refunded', 'payment.refund_reversed']);
  });

  it('GoCardless: the later-started fetch wins, so a late failure after paid_out applies and an older snapshot does not', async () => {
    const id = newId('PM');
    const f1 = await takeFetchFence(db.db);
    const f2 = await takeFetchFence(db.db);
    const f3 = await takeFetchFence(db.db);
    await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'paid_out', 'paid'), fence: f2, source: 'webhook' });
    // Out of order: an older "confirmed" observation arrives after paid_out.
    expect((await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'confirmed', 'paid'), fence: f1, source: 'poll' })).changed).toBe(false);
    // The refused observation disagreed with the stored row, so the payment was made due for
    // another fetch: fences order when fetches started, not when the provider answered them.
    const [due] = await sql<{ due: boolean }[]>`select next_poll_at <= now() as due from payments where provider_payment_id = ${id}`;
    expect(due!.due).toBe(true);
    // A late failure is newer and applies even though "failed" is not "above" paid_out.
    expect((await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'failed', 'failed'), fence: f3, source: 'webhook' })).changed).toBe(true);
    const final = await state(id);
    expect(final.row).toMatchObject({ status: 'failed', provider_status: 'failed', version: 2 });
    expect(final.events).toEqual(['payment.paid', 'payment.failed']);
  });

  it('a refused identical GoCardless snapshot does not make the payment due', async () => {
    const id = newId('PM');
    await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'confirmed', 'paid'), fence: await takeFetchFence(db.db), source: 'webhook', nextPollAt: new Date(Date.now() + 3_600_000) });
    expect((await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'confirmed', 'paid'), fence: 1, source: 'poll' })).changed).toBe(false);
    const [row] = await sql<{ due: boolean }[]>`select next_poll_at <= now() as due from payments where provider_payment_id = ${id}`;
    expect(row!.due).toBe(false);
  });

  it('GoCardless confirmed → paid_out is a change of provider status only: payment.updated', async () => {
    const id = newId('PM');
    await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'confirmed', 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' });
    await applySnapshot(db.db, { snapshot: snapshot('gocardless', id, 'paid_out', 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' });
    expect((await state(id)).events).toEqual(['payment.paid', 'payment.updated']);
  });

  it('20 concurrent writers of the same snapshot produce one row and one event', async () => {
    const id = newId('tr_');
    const results = await Promise.all(
      Array.from({ length: 20 }, async () =>
        applySnapshot(db.db, { snapshot: snapshot('mollie', id, 'paid', 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' }),
      ),
    );
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    const rows = await sql<{ count: number }[]>`select count(*)::int as count from payments where provider_payment_id = ${id}`;
    expect(rows[0]?.count).toBe(1);
    expect((await state(id)).events).toEqual(['payment.paid']);
  });
});
