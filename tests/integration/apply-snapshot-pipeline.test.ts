/**
 * applySnapshot's pipelined transaction on the pool (BEGIN sent with the upsert, COMMIT
 * with the last statement), the receipts it settles in that transaction, and its
 * cleanup: a failure leaves nothing written and hands back a clean connection.
 * The pool has one connection, so every step runs on the connection the last one used.
 */
import { randomBytes } from 'node:crypto';
import { sql as drizzleSql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { applySnapshot, takeFetchFence } from '../../src/payments/apply-snapshot.js';
import { recordReceipts } from '../../src/webhooks/receipts.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testSnapshot } from '../helpers/snapshots.js';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 1 });
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await db?.close();
  await database?.drop();
});

const newId = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

const snapshot = testSnapshot;

async function pendingReceipts(resourceId: string, count: number): Promise<number[]> {
  const recorded = await recordReceipts(
    db.db,
    Array.from({ length: count }, () => ({
      provider: 'mollie' as const,
      account: 'default',
      resourceType: 'payment',
      resourceId,
      body: new TextEncoder().encode(`id=${resourceId}`),
      headers: {},
      signature: 'absent' as const,
    })),
  );
  return recorded.map((r) => r.id);
}

async function receiptStates(ids: number[]): Promise<string[]> {
  const rows = await sql<{ state: string }[]>`select state from webhook_receipts where id = any(${ids}::bigint[]) order by id`;
  return rows.map((row) => row.state);
}

async function history(id: string) {
  const [row] = await sql<{ status: string; version: number }[]>`select status, version from payments where provider_payment_id = ${id}`;
  const events = await sql<{ type: string }[]>`select type from outbox where provider_payment_id = ${id} order by id`;
  return { row, events: events.map((e) => e.type) };
}

describe('applySnapshot on the pool', () => {
  it('settles the receipts a change answers in the same transaction', async () => {
    const id = newId('tr_');
    const receipts = await pendingReceipts(id, 2);
    const result = await applySnapshot(db.db, { snapshot: snapshot(id, 'paid'), fence: await takeFetchFence(db.db), source: 'webhook', receiptId: receipts[0], settleReceiptIds: receipts });
    expect(result).toMatchObject({ changed: true, version: 1, settledReceipts: true });
    expect(await receiptStates(receipts)).toEqual(['processed', 'processed']);
    expect(await history(id)).toEqual({ row: { status: 'paid', version: 1 }, events: ['payment.paid'] });
  });

  it('settles them when nothing changed too, and the no-op leaves synchronous_commit as it was', async () => {
    const id = newId('tr_');
    await applySnapshot(db.db, { snapshot: snapshot(id, 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' });
    const receipts = await pendingReceipts(id, 1);
    const result = await applySnapshot(db.db, { snapshot: snapshot(id, 'paid'), fence: await takeFetchFence(db.db), source: 'webhook', settleReceiptIds: receipts });
    expect(result).toMatchObject({ changed: false, settledReceipts: true });
    expect(await receiptStates(receipts)).toEqual(['processed']);
    // The no-op's asynchronous commit was local to its transaction: the pooled connection is back to the default.
    const [setting] = await db.db.execute<{ synchronous_commit: string }>(drizzleSql`show synchronous_commit`);
    expect(setting!.synchronous_commit).toBe('on');
    expect((await history(id)).events).toEqual(['payment.paid']);
  });

  it('a failing statement rolls the whole change back and hands back a clean connection', async () => {
    const id = newId('tr_');
    await applySnapshot(db.db, { snapshot: snapshot(id, 'open'), fence: await takeFetchFence(db.db), source: 'webhook' });
    // Occupy version 2's transition, so the next change's transition insert fails after its upsert.
    await sql`
      insert into payment_transitions (payment_id, version, source, new_status, new_provider_status, fence, snapshot)
      select id, 2, 'poll', 'pending', 'pending', 0, '{}' from payments where provider_payment_id = ${id}`;
    const receipts = await pendingReceipts(id, 1);
    await expect(
      applySnapshot(db.db, { snapshot: snapshot(id, 'paid'), fence: await takeFetchFence(db.db), source: 'webhook', settleReceiptIds: receipts }),
    ).rejects.toThrow(/payment_transitions_payment_version_uq|duplicate key/);
    // Nothing of the change stayed: the row, its events and the receipt are as before.
    expect(await history(id)).toEqual({ row: { status: 'open', version: 1 }, events: ['payment.open'] });
    expect(await receiptStates(receipts)).toEqual(['pending']);
    // The one pooled connection is not left inside the aborted transaction.
    const other = newId('tr_');
    expect((await applySnapshot(db.db, { snapshot: snapshot(other, 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' })).changed).toBe(true);
    expect(await history(other)).toEqual({ row: { status: 'paid', version: 1 }, events: ['payment.paid'] });
  });

  it('a failing upsert (nothing queued behind it) is rolled back before the connection goes back', async () => {
    const id = newId('tr_');
    const bad = { ...snapshot(id, 'paid'), amount: { minor: 0.5, currency: 'EUR' } };
    await expect(applySnapshot(db.db, { snapshot: bad, fence: await takeFetchFence(db.db), source: 'webhook' })).rejects.toThrow(/bigint|invalid input/);
    expect((await history(id)).row).toBeUndefined();
    expect((await applySnapshot(db.db, { snapshot: snapshot(id, 'paid'), fence: await takeFetchFence(db.db), source: 'webhook' })).changed).toBe(true);
  });

  it("inside a caller's transaction, the write commits or rolls back with it", async () => {
    const id = newId('PM');
    await expect(
      db.db.transaction(async (tx) => {
        const result = await applySnapshot(tx, { snapshot: snapshot(id, 'paid', 'gocardless'), fence: await takeFetchFence(tx), source: 'sync' });
        expect(result.changed).toBe(true);
        throw new Error('caller gives up');
      }),
    ).rejects.toThrow('caller gives up');
    expect((await history(id)).row).toBeUndefined();
    await db.db.transaction(async (tx) => {
      await applySnapshot(tx, { snapshot: snapshot(id, 'paid', 'gocardless'), fence: await takeFetchFence(tx), source: 'sync' });
    });
    expect(await history(id)).toEqual({ row: { status: 'paid', version: 1 }, events: ['payment.paid'] });
  });
});
