import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bankSchedulerStatus } from '../../src/bank/scheduler.js';
import { api, createLinkedConnection, startScheduler, outboxEvents, startBankHarness, type BankHarness } from '../helpers/bank.js';
import { SESSION_COOKIE } from '../../src/console/session.js';
import { eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';

/**
 * Nothing dies silently: an account in ERROR is announced within one sync interval
 * and not retried; a consent about to end is announced on each warning day, then as
 * expired, and an expired connection is not synced.
 */

const harnesses: BankHarness[] = [];
const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

afterAll(async () => {
  for (const h of harnesses) await h.close();
});


describe('bank connection health', () => {
  it('announces an account in ERROR within one sync interval, once, and stops calling it', async () => {
    const interval = 1500;
    const h = await startBankHarness({ sandbox: { dailyLimit: 1000 }, env: { BANK_DAILY_CALLS: '1000', BANK_SYNC_INTERVAL_MS: String(interval), BANK_SCHEDULER_IDLE_MS: '50' } });
    harnesses.push(h);
    const { id, synced } = await createLinkedConnection(h, 'error-ref');
    stops.push(startScheduler(h));
    const broken = synced.body.accounts[0];
    await eventually(async () => h.sandbox.state.calls.filter((c) => c.accountId === broken.externalId).length >= 2, { what: 'a scheduled sync' });

    const turnedAt = Date.now();
    h.sandbox.state.accounts.get(broken.externalId)!.status = 'ERROR';
    const event = await eventually(async () => (await outboxEvents(h.sql, 'bank.connection.broken')).at(0), { timeoutMs: interval * 4, what: 'bank.connection.broken' });
    expect(Date.now() - turnedAt).toBeLessThan(interval + 1000);
    expect(event.payload.data).toMatchObject({ connectionId: id, reference: 'error-ref', reason: 'account_error', accountId: broken.id });

    // Not retried: no call to the ERROR account while the healthy one keeps syncing.
    const callsThen = h.sandbox.state.calls.filter((c) => c.accountId === broken.externalId).length;
    const healthy = synced.body.accounts[1].externalId;
    const healthyThen = h.sandbox.state.calls.filter((c) => c.accountId === healthy).length;
    await eventually(async () => h.sandbox.state.calls.filter((c) => c.accountId === healthy).length >= healthyThen + 2, { timeoutMs: interval * 4, what: 'two more syncs of the healthy account' });
    expect(h.sandbox.state.calls.filter((c) => c.accountId === broken.externalId).length).toBe(callsThen);
    expect(await outboxEvents(h.sql, 'bank.connection.broken')).toHaveLength(1);

    const view = await api(h.app, 'GET', `/v1/bank-connections/${id}`);
    expect(view.body.broken).toMatchObject({ reason: 'account_error' });
    const account = view.body.accounts.find((a: { id: string }) => a.id === broken.id);
    expect(account).toMatchObject({ status: 'ERROR', nextSyncAt: null });
    const ready = await (await h.app.request('/readyz')).json();
    expect(ready.bank.status).toBe('attention');
    expect(ready.bank.broken.map((c: { id: string }) => c.id)).toEqual([id]);

    // The console shows it without anyone pressing refresh at the bank.
    const signIn = await h.app.request('/console/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: new URLSearchParams({ token: TEST_ADMIN_TOKEN }).toString(),
    });
    const cookie = new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(signIn.headers.get('set-cookie') ?? '')?.[1];
    const page = await h.app.request('/console/bank', { headers: { cookie: `${SESSION_COOKIE}=${cookie}` } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(id);
    expect(html).toContain('account_error');
  });

  it('announces an ending consent on each warning day, then expired, and stops syncing it', async () => {
    // Warning days of 8.64 s and 2.59 s before a consent that ends about 12 s after linking.
    const h = await startBankHarness({ env: { BANK_EXPIRY_WARNING_DAYS: '0.0001,0.00003', BANK_SCHEDULER_IDLE_MS: '50', BANK_SYNC_INTERVAL_MS: '200', BANK_DAILY_CALLS: '1000' }, sandbox: { dailyLimit: 1000 } });
    harnesses.push(h);
    // The sandbox's clock runs a day minus 12 s behind, so a one-day consent given now ends in 12 s.
    h.sandbox.state.advanceClock(-(86_400_000 - 12_000));
    const { id, synced } = await createLinkedConnection(h, 'expiry-ref', { accessValidForDays: 1 });
    const expiresAt = new Date(synced.body.consentExpiresAt).getTime();
    expect(Math.abs(expiresAt - (Date.now() + 12_000))).toBeLessThan(3000);
    stops.push(startScheduler(h));

    await eventually(async () => (await outboxEvents(h.sql, 'bank.connection.expired')).length === 1, { timeoutMs: 25_000, what: 'bank.connection.expired' });
    const events = (await outboxEvents(h.sql, 'bank.connection.')).filter((e) => e.type !== 'bank.connection.linked');
    expect(events.map((e) => [e.type, e.payload.data.warningDays ?? null])).toEqual([
      ['bank.connection.expiring', 0.0001],
      ['bank.connection.expiring', 0.00003],
      ['bank.connection.expired', null],
    ]);
    const [warned] = await h.sql<{ created_at: Date }[]>`select created_at from outbox where type = 'bank.connection.expiring' order by id limit 1`;
    expect(warned!.created_at.getTime()).toBeGreaterThanOrEqual(expiresAt - 0.0001 * 86_400_000 - 50);
    expect(warned!.created_at.getTime()).toBeLessThan(expiresAt - 0.00003 * 86_400_000);

    // Expired: not synced any more, and a manual sync says why.
    const callsAtExpiry = h.sandbox.state.calls.length;
    const view = await api(h.app, 'GET', `/v1/bank-connections/${id}`);
    expect(view.body.status).toBe('expired');
    const refused = await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`);
    expect(refused.status).toBe(409);
    // Two full scheduler passes after the expiry, in which nothing may be called.
    let passes = 0;
    let seen = bankSchedulerStatus(h.deps).lastPassAt;
    await eventually(async () => {
      const now = bankSchedulerStatus(h.deps).lastPassAt;
      if (now !== seen) [passes, seen] = [passes + 1, now];
      return passes >= 2;
    }, { what: 'two scheduler passes' });
    expect(h.sandbox.state.calls.length).toBe(callsAtExpiry);
    // The reference is free for a new connection.
    const again = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: view.body.institutionId, reference: 'expiry-ref', redirectUrl: 'https://example.test/return' });
    expect(again.status).toBe(201);
  });
});
