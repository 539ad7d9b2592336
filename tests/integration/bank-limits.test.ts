import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, createLinkedConnection, startScheduler, runBankWorker, startBankHarness, type BankHarness } from '../helpers/bank.js';
import { eventually } from '../helpers/deps.js';

/**
 * The banks' daily limit: the gateway never makes more than BANK_DAILY_CALLS
 * successful calls per account and scope per day, across processes; when the bank
 * answers 429 anyway (its count differs), nothing is called again before its reset,
 * and it is neither an error nor a broken connection.
 */

const harnesses: BankHarness[] = [];
const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

afterAll(async () => {
  for (const h of harnesses) await h.close();
});


const accountCalls = (h: BankHarness, externalId: string) => h.sandbox.state.calls.filter((c) => c.accountId === externalId && c.scope === 'transactions');

describe('bank daily limit', () => {
  it('never exceeds BANK_DAILY_CALLS per account and day, across two processes and manual syncs', async () => {
    const h = await startBankHarness({ env: { BANK_DAILY_CALLS: '4', BANK_SYNC_INTERVAL_MS: '100', BANK_SCHEDULER_IDLE_MS: '50' } });
    harnesses.push(h);
    const { id, synced } = await createLinkedConnection(h, 'limit-ref');
    expect(synced.body.accounts.map((a: { callsToday: number }) => a.callsToday)).toEqual([1, 1]);

    const workers = [0, 1].map(() => runBankWorker({ action: 'scheduler', env: h.env, durationMs: 3000 }));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go('go');
    // Manual syncs at the same time: they share the same budget.
    const manual = await Promise.all([0, 1, 2, 3, 4, 5].map(() => api(h.app, 'POST', `/v1/bank-connections/${id}/sync`)));
    await Promise.all(workers.map((w) => w.done));

    for (const externalId of synced.body.accounts.map((a: { externalId: string }) => a.externalId)) {
      expect(accountCalls(h, externalId).map((c) => c.status)).toEqual([200, 200, 200, 200]);
    }
    expect(h.sandbox.state.stats.rateLimited).toBe(0);
    const limited = await api(h.app, 'POST', `/v1/bank-connections/${id}/sync`);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('bank_daily_limit');
    const retryAfter = Number(limited.headers.get('retry-after'));
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    expect(Math.abs(retryAfter - (midnight.getTime() - Date.now()) / 1000)).toBeLessThan(5);
    for (const account of limited.body.error.details.accounts) {
      expect(account.callsToday).toBe(4);
      expect(new Date(account.rateLimitedUntil).getTime()).toBe(midnight.getTime());
    }
    expect(manual.some((r) => r.status === 429)).toBe(true);
  }, 180_000); // OS processes boot slowly on a loaded machine; this is no timing claim

  it('after the bank answers 429, calls nothing on that account until the reset it gave', async () => {
    // The bank allows 2 a "day" of 4 s; the gateway believes it may make 10: the bank's 429 must stop it.
    const h = await startBankHarness({
      sandbox: { dailyLimit: 2, dayMs: 4000, headerStyle: 'http_x' },
      env: { BANK_DAILY_CALLS: '10', BANK_SYNC_INTERVAL_MS: '100', BANK_SCHEDULER_IDLE_MS: '50' },
    });
    harnesses.push(h);
    const { id, synced } = await createLinkedConnection(h, 'reset-ref');
    const externalId: string = synced.body.accounts[0].externalId;
    stops.push(startScheduler(h));
    // Run until the account has been refused twice (two bank days) and called after the second reset.
    await eventually(async () => accountCalls(h, externalId).filter((c) => c.status === 429).length >= 2, { timeoutMs: 20_000, what: 'two 429s' });
    const calls = accountCalls(h, externalId);
    for (const refused of calls.filter((c) => c.status === 429)) {
      const reset = Math.ceil((refused.at + 1) / 4000) * 4000;
      const early = calls.filter((c) => c.at > refused.at && c.at < reset - 50);
      expect(early, `calls between a 429 at ${refused.at} and its reset at ${reset}`).toEqual([]);
    }
    // Exactly one refusal per bank day: the pause held until the reset each time.
    const days = calls.filter((c) => c.status === 429).map((c) => Math.floor(c.at / 4000));
    expect(new Set(days).size).toBe(days.length);
    const [account] = await h.sql<{ last_error: string | null; broken_at: Date | null }[]>`
      select a.last_error, c.broken_at from bank_accounts a join bank_connections c on c.id = a.connection_id where a.external_id = ${externalId}`;
    expect(account).toMatchObject({ last_error: null, broken_at: null });
    const view = await api(h.app, 'GET', `/v1/bank-connections/${id}`);
    expect(view.body.broken).toBeNull();
  });
});
