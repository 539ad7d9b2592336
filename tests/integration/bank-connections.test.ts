import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newBankId } from '../../src/bank/ids.js';
import { api, createLinkedConnection, outboxEvents, runBankWorker, SANDBOX_INSTITUTION_ID, startBankHarness, type BankHarness } from '../helpers/bank.js';

/**
 * The bank-connection routes against the bank sandbox: creation by reference (also
 * ten at once from two OS processes), the consent link, linking, account discovery,
 * the first import, listing, deletion, and clear errors for bad input.
 */

let h: BankHarness;

beforeAll(async () => {
  h = await startBankHarness();
});

afterAll(async () => {
  await h?.close();
});

describe('bank connections', () => {
  it('creates a connection with a consent link, links it, discovers its accounts and imports their transactions', async () => {
    const created = await api(h.app, 'POST', '/v1/bank-connections', {
      institutionId: SANDBOX_INSTITUTION_ID,
      reference: 'merchant-1',
      redirectUrl: 'https://example.test/return',
      accessValidForDays: 90,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ reference: 'merchant-1', institutionId: SANDBOX_INSTITUTION_ID, status: 'awaiting_consent', accounts: [], consentExpiresAt: null });
    expect(created.body.link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/psd2\/start\//);

    // The same reference again: the same connection and link.
    const again = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: SANDBOX_INSTITUTION_ID, reference: 'merchant-1', redirectUrl: 'https://example.test/return' });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(created.body.id);
    expect(again.body.link).toBe(created.body.link);

    // Not linked yet: a sync only looks at the requisition.
    const early = await api(h.app, 'POST', `/v1/bank-connections/${created.body.id}/sync`);
    expect(early.status).toBe(200);
    expect(early.body.status).toBe('awaiting_consent');

    const consent = await fetch(created.body.link, { redirect: 'manual' });
    expect(consent.status).toBe(302);
    expect(consent.headers.get('location')).toBe(`https://example.test/return?ref=${created.body.id}`);
    const requisition = [...h.sandbox.state.requisitions.values()].find((r) => r.reference === created.body.id)!;
    for (const accountId of requisition.accounts) {
      const account = h.sandbox.state.accounts.get(accountId)!;
      account.booked.push({ internalTransactionId: `int-${accountId}-1`, transactionId: 'T1', bookingDate: '2026-12-01', valueDate: '2026-12-01', transactionAmount: { amount: '45.00', currency: 'EUR' }, debtorName: 'ACME', remittanceInformationUnstructured: 'Invoice 1' });
      account.pending.push({ transactionAmount: { amount: '-10.5', currency: 'EUR' }, valueDate: '2026-12-06', creditorName: 'Coffee', remittanceInformationUnstructured: 'Card' });
    }

    const linked = await api(h.app, 'POST', `/v1/bank-connections/${created.body.id}/sync`);
    expect(linked.status).toBe(200);
    expect(linked.body.status).toBe('linked');
    expect(linked.body.accounts).toHaveLength(2);
    expect(new Date(linked.body.consentExpiresAt).getTime()).toBeGreaterThan(Date.now() + 89 * 86_400_000);

    // The sync that saw it linked also imported its accounts.
    expect(Object.values(linked.body.sync)).toEqual(['synced', 'synced']);
    for (const account of linked.body.accounts) {
      expect(account).toMatchObject({ status: 'READY', rateLimitedUntil: null, callsToday: 1 });
      expect(account.iban).toMatch(/^GB/);
      expect(account.lastSyncedAt).not.toBeNull();
      expect(new Date(account.nextSyncAt).getTime()).toBeGreaterThan(Date.now());
    }

    const list = await api(h.app, 'GET', `/v1/bank-transactions?connection=${created.body.id}&limit=3`);
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(3);
    expect(list.body.nextCursor).toMatch(/^btx_\d+$/);
    const rest = await api(h.app, 'GET', `/v1/bank-transactions?connection=${created.body.id}&after=${list.body.nextCursor}`);
    expect(rest.body.data).toHaveLength(1);
    expect(rest.body.nextCursor).toBeNull();
    const all = [...list.body.data, ...rest.body.data];
    expect(all.filter((t) => t.status === 'booked').map((t) => t.amount)).toEqual([{ value: '45.00', currency: 'EUR' }, { value: '45.00', currency: 'EUR' }]);
    expect(all.filter((t) => t.status === 'pending').map((t) => t.amount)).toEqual([{ value: '-10.50', currency: 'EUR' }, { value: '-10.50', currency: 'EUR' }]);
    expect(all[0]).toMatchObject({ connectionId: created.body.id, transactionId: 'T1', bookingDate: '2026-12-01', counterparty: 'ACME', remittance: 'Invoice 1' });

    const types = (await outboxEvents(h.sql)).map((e) => e.type);
    expect(types.filter((t) => t === 'bank.connection.linked')).toHaveLength(1);
    expect(types.filter((t) => t === 'bank.transaction.booked')).toHaveLength(2);
    expect(types.filter((t) => t === 'bank.transaction.pending')).toHaveLength(2);

    const listed = await api(h.app, 'GET', '/v1/bank-connections?reference=merchant-1');
    expect(listed.body.data.map((c: { id: string }) => c.id)).toEqual([created.body.id]);
    const one = await api(h.app, 'GET', `/v1/bank-connections/${created.body.id}`);
    expect(one.body.accounts).toHaveLength(2);

    // Deleting frees the reference: a new connection (and requisition) for it.
    const deleted = await api(h.app, 'DELETE', `/v1/bank-connections/${created.body.id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.status).toBe('deleted');
    expect(h.sandbox.state.requisitions.has(requisition.id)).toBe(false);
    const fresh = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: SANDBOX_INSTITUTION_ID, reference: 'merchant-1', redirectUrl: 'https://example.test/return' });
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(created.body.id);
  });

  it('answers bad input with a status and a message', async () => {
    const missing = await api(h.app, 'POST', '/v1/bank-connections', { reference: 'x' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/institutionId/);
    const badUrl = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: SANDBOX_INSTITUTION_ID, reference: 'x', redirectUrl: 'ftp://nope' });
    expect(badUrl.status).toBe(400);
    const days = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: SANDBOX_INSTITUTION_ID, reference: 'x', redirectUrl: 'https://a.test', accessValidForDays: 400 });
    expect(days.status).toBe(400);
    const unknownBank = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: 'NO_SUCH_BANK', reference: 'y', redirectUrl: 'https://a.test' });
    expect(unknownBank.status).toBe(422);
    expect(unknownBank.body.error.code).toBe('bank_refused');
    // The refused attempt left the reference free.
    const retry = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: SANDBOX_INSTITUTION_ID, reference: 'y', redirectUrl: 'https://a.test' });
    expect(retry.status).toBe(201);
    const otherBank = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: 'SANDBOXSLOW_SSLW0000', reference: 'y', redirectUrl: 'https://a.test' });
    expect(otherBank.status).toBe(409);
    expect((await api(h.app, 'GET', '/v1/bank-connections/bcn_0000000000000000000000')).status).toBe(404);
    expect((await api(h.app, 'GET', '/v1/bank-connections/nope')).status).toBe(400);
    expect((await api(h.app, 'GET', '/v1/bank-transactions?status=lost')).status).toBe(400);
    expect((await api(h.app, 'GET', '/v1/bank-transactions?after=abc')).status).toBe(400);
    const unauthenticated = await h.app.request('/v1/bank-connections');
    expect(unauthenticated.status).toBe(401);
  });

  it('ten concurrent creations with one reference through two OS processes make one connection and one requisition', async () => {
    const before = h.sandbox.state.stats.requisitionsCreated;
    const body = { institutionId: SANDBOX_INSTITUTION_ID, reference: 'race-ref', redirectUrl: 'https://example.test/return' };
    const workers = [0, 1].map(() => runBankWorker({ action: 'create', env: h.env, count: 5, body }));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go('go');
    const outputs = await Promise.all(workers.map((w) => w.done));
    const results = outputs.flatMap((out) => (JSON.parse(out.trim().split('\n').at(-1)!) as { results: { status: number; body: { id: string; link: string } }[] }).results);
    expect(results).toHaveLength(10);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(9);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.body.link)).size).toBe(1);
    expect(h.sandbox.state.stats.requisitionsCreated - before).toBe(1);
    const rows = await h.sql<{ count: number }[]>`select count(*)::int as count from bank_connections where reference = 'race-ref'`;
    expect(rows[0]!.count).toBe(1);
  }, 180_000); // OS processes boot slowly on a loaded machine; this is no timing claim

  it('a creator that died after GoCardless made its requisition: the takeover adopts that requisition, and one that died before makes one', async () => {
    // Other requisitions first, so the one left behind is on a later page of GoCardless's list.
    for (let i = 0; i < 130; i++) h.sandbox.state.createRequisition({ institution_id: SANDBOX_INSTITUTION_ID, redirect: 'https://example.test/other', reference: `other-${i}` });
    const orphaned = async (reference: string) => {
      const id = newBankId('bcn');
      await h.sql`insert into bank_connections (id, reference, institution_id, redirect_url, max_historical_days, access_valid_for_days, status, creating_owner, creating_until)
        values (${id}, ${reference}, ${SANDBOX_INSTITUTION_ID}, 'https://example.test/return', 90, 90, 'creating', 'dead-creator', now() - interval '1 second')`;
      return id;
    };
    const body = (reference: string) => ({ institutionId: SANDBOX_INSTITUTION_ID, reference, redirectUrl: 'https://example.test/return' });

    const afterRequisition = await orphaned('died-after-requisition');
    const left = h.sandbox.state.createRequisition({ institution_id: SANDBOX_INSTITUTION_ID, redirect: 'https://example.test/return', reference: afterRequisition });
    if (left === 'reference_taken') throw new Error('unexpected');
    const before = h.sandbox.state.stats.requisitionsCreated;
    const adopted = await api(h.app, 'POST', '/v1/bank-connections', body('died-after-requisition'));
    expect(adopted.status).toBe(200);
    expect(adopted.body).toMatchObject({ id: afterRequisition, status: 'awaiting_consent', link: left.link });
    expect(h.sandbox.state.stats.requisitionsCreated).toBe(before);

    const beforeRequisition = await orphaned('died-before-requisition');
    const made = await api(h.app, 'POST', '/v1/bank-connections', body('died-before-requisition'));
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject({ id: beforeRequisition, status: 'awaiting_consent' });
    expect(h.sandbox.state.stats.requisitionsCreated).toBe(before + 1);
    const mine = [...h.sandbox.state.requisitions.values()].filter((r) => r.reference === beforeRequisition);
    expect(mine.map((r) => r.link)).toEqual([made.body.link]);
  });

  it('links through the helper and reports the linked event once', async () => {
    const { id, synced } = await createLinkedConnection(h, 'helper-ref');
    expect(synced.body.status).toBe('linked');
    const linked = (await outboxEvents(h.sql)).filter((e) => e.type === 'bank.connection.linked' && e.payload.data.connectionId === id);
    expect(linked).toHaveLength(1);
  });

  it('keeps a missing pending transaction for BANK_PENDING_GRACE_MS before calling it removed', async () => {
    const { id } = await createLinkedConnection(h, 'grace-ref');
    const requisition = [...h.sandbox.state.requisitions.values()].find((r) => r.reference === id)!;
    const account = h.sandbox.state.accounts.get(requisition.accounts[0]!)!;
    account.pending.push({ transactionAmount: { amount: '-7.00', currency: 'EUR' }, valueDate: '2026-12-06', creditorName: 'Bakery' });
    await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`);
    account.pending.length = 0;
    await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`);
    const [held] = await h.sql<{ status: string; missing_since: Date | null }[]>`select status, missing_since from bank_transactions where connection_id = ${id}`;
    expect(held!.status).toBe('pending');
    expect(held!.missing_since).not.toBeNull();
    // Three days (the default grace) pass.
    await h.sql`update bank_transactions set missing_since = missing_since - interval '3 days 1 minute' where connection_id = ${id}`;
    await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`);
    const listed = await api(h.app, 'GET', `/v1/bank-transactions?connection=${id}`);
    expect(listed.body.data.map((t: { status: string }) => t.status)).toEqual(['removed']);
    const removed = (await outboxEvents(h.sql, 'bank.transaction.removed')).filter((e) => e.payload.data.connectionId === id);
    expect(removed).toHaveLength(1);
  });
});
