import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toImportRows } from '../../src/providers/gocardless-bank/mapping.js';
import type { BankTransaction } from '../../src/providers/gocardless-bank/schemas.js';
import { bookPending, reissuePending, vanishPending } from '../../src/sandbox/gocardless-bank/transactions.js';
import { api, createLinkedConnection, outboxEvents, runBankWorker, startBankHarness, type BankHarness } from '../helpers/bank.js';

/**
 * Exactly once under overlap: two OS processes sync one connection three times each,
 * with overlapping windows, while the bank adds booked transactions, re-issues its
 * pending ones under new ids, books some (under new ids, with the remittance rewritten)
 * and drops others. Afterwards every booked transaction is one row, every pending one
 * is pending, settled into its booked row or removed, and every change is one event.
 */

let h: BankHarness;
const today = new Date().toISOString().slice(0, 10);
let n = 0;
const amount = () => `-${++n}.${String(n % 100).padStart(2, '0')}`;

function booked(ids: 'both' | 'transactionId' | 'none'): BankTransaction {
  const i = ++n;
  return {
    ...(ids === 'both' ? { internalTransactionId: `int-${i}`, transactionId: `tx-${i}` } : ids === 'transactionId' ? { transactionId: `tx-${i}` } : {}),
    bookingDate: today,
    valueDate: today,
    transactionAmount: { amount: `${i}.00`, currency: 'EUR' },
    debtorName: `Customer ${i}`,
    remittanceInformationUnstructured: `Invoice ${i}`,
  };
}

function pending(withId: boolean): BankTransaction {
  return {
    ...(withId ? { transactionId: `pd-${n + 1}` } : {}),
    valueDate: today,
    transactionAmount: { amount: amount(), currency: 'EUR' },
    creditorName: `Shop ${n}`,
    remittanceInformationUnstructured: `Card ${n}`,
  };
}

beforeAll(async () => {
  h = await startBankHarness({ sandbox: { dailyLimit: 1000 }, env: { BANK_PENDING_GRACE_MS: '0', BANK_DAILY_CALLS: '1000' } });
});

afterAll(async () => {
  await h?.close();
});

describe('bank sync across processes', () => {
  it('imports every booked transaction once and resolves every pending one, with one event per change', async () => {
    const { id } = await createLinkedConnection(h, 'overlap-ref');
    const requisition = [...h.sandbox.state.requisitions.values()].find((r) => r.reference === id)!;
    const accounts = requisition.accounts.map((accountId) => h.sandbox.state.accounts.get(accountId)!);
    for (const account of accounts) {
      account.booked.push(booked('both'), booked('both'), booked('transactionId'), booked('none'));
      account.pending.push(pending(true), pending(true), pending(false), pending(true), pending(false), pending(true));
    }
    expect((await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`)).status).toBe(200);

    const workers = [0, 1].map(() => runBankWorker({ action: 'sync', env: h.env, connectionId: id, count: 3, spacingMs: 400 }));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go('go');
    // The bank changes while the syncs run.
    for (let step = 0; step < 6; step++) {
      for (const account of accounts) {
        account.booked.push(booked(step % 3 === 0 ? 'none' : 'both'));
        reissuePending(account);
        if (step % 2 === 0 && account.pending.length > 0) bookPending(account, 0, { remittance: `Booked card payment ${step}` });
        if (step % 2 === 1 && account.pending.length > 1) vanishPending(account, 1);
        account.pending.push(pending(step % 2 === 0));
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const outputs = await Promise.all(workers.map((w) => w.done));
    const statuses = outputs.flatMap((out) => (JSON.parse(out.trim().split('\n').at(-1)!) as { results: { status: number }[] }).results.map((r) => r.status));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    // One last look, now that the bank is still: what it shows now must be what we hold.
    expect((await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`)).status).toBe(200);

    const rows = await h.sql<{ id: number; account_id: string; external_id: string; status: string; dedupe_key: string; amount_minor: number; pending_of: string | null }[]>`
      select t.id, t.account_id, a.external_id, t.status, t.dedupe_key, t.amount_minor, t.pending_of
      from bank_transactions t join bank_accounts a on a.id = t.account_id where t.connection_id = ${id}`;
    for (const account of accounts) {
      const mine = rows.filter((r) => r.external_id === account.id);
      // Booked: the bank's list, one row each, keyed by internal id, else transaction id, else fingerprint.
      const expectedBooked = toImportRows(account.booked, 'booked').map((r) => r.dedupeKey).sort();
      expect(mine.filter((r) => r.status === 'booked').map((r) => r.dedupe_key).sort()).toEqual(expectedBooked);
      // Pending: exactly what the bank lists as pending now, whatever ids it gave them on the way.
      const expectedPending = toImportRows(account.pending, 'pending').map((r) => r.dedupeKey).sort();
      expect(mine.filter((r) => r.status === 'pending').map((r) => r.dedupe_key).sort()).toEqual(expectedPending);
      // One row per real transaction over its whole life (every amount here is unique to one):
      // re-issued under new ids, then booked or dropped, a pending transaction is still one row.
      const amounts = mine.map((r) => r.amount_minor);
      expect(amounts.length - new Set(amounts).size, 'rows sharing one transaction').toBe(0);
    }
    expect(rows.filter((r) => r.pending_of !== null).length).toBeGreaterThanOrEqual(4);
    expect(rows.filter((r) => r.status === 'removed').length).toBeGreaterThanOrEqual(4);

    // Events: one per change, none twice.
    const events = (await outboxEvents(h.sql, 'bank.transaction.')).filter((e) => e.payload.data.connectionId === id);
    const count = (type: string, rowId: number) => events.filter((e) => e.type === type && e.payload.data.id === `btx_${rowId}`).length;
    for (const row of rows) {
      expect(count('bank.transaction.booked', row.id)).toBe(row.status === 'booked' ? 1 : 0);
      const wasPending = row.status === 'pending' || row.status === 'removed' || row.pending_of !== null;
      expect(count('bank.transaction.pending', row.id)).toBe(wasPending ? 1 : 0);
      expect(count('bank.transaction.removed', row.id)).toBe(row.status === 'removed' ? 1 : 0);
    }
    const expectedEvents = rows.reduce((sum, r) => sum + (r.status === 'booked' ? 1 : 0) + (r.status === 'pending' || r.status === 'removed' || r.pending_of ? 1 : 0) + (r.status === 'removed' ? 1 : 0), 0);
    expect(events).toHaveLength(expectedEvents);
    const settledEvent = events.find((e) => e.type === 'bank.transaction.booked' && e.payload.data.pendingOf);
    expect(settledEvent?.payload.data).toMatchObject({ status: 'booked', reference: 'overlap-ref' });
  }, 180_000); // OS processes boot slowly on a loaded machine; this is no timing claim
});
