import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBankWorker, startBankHarness, type BankHarness } from '../helpers/bank.js';

/**
 * `token/new` allows 100 calls an hour per company: a fleet must mint one token and
 * refresh it once per expiry, not once per process. The sandbox compresses the
 * token's day: access tokens live 2 s, refresh tokens 60 s.
 */

let h: BankHarness;

beforeAll(async () => {
  h = await startBankHarness({ sandbox: { accessTtlS: 2, refreshTtlS: 60 } });
});

afterAll(async () => {
  await h?.close();
});

describe('bank tokens', () => {
  it('two processes calling for 8 s mint one token and refresh it once per expiry', async () => {
    const workers = [0, 1].map(() => runBankWorker({ action: 'tokens', env: h.env, durationMs: 8000 }));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go('go');
    const outputs = await Promise.all(workers.map((w) => w.done));
    const calls = outputs.map((out) => (JSON.parse(out.trim().split('\n').at(-1)!) as { results: { calls: number }[] }).results[0]!.calls);
    // Both processes really used the API throughout (and never on a refused token: they would have thrown).
    for (const count of calls) expect(count).toBeGreaterThan(20);

    const { tokenNew, tokenRefresh, refreshedGenerations } = h.sandbox.state.stats;
    expect(tokenNew).toBe(1);
    // Each access token generation was refreshed at most once, by one process.
    expect(new Set(refreshedGenerations).size).toBe(refreshedGenerations.length);
    // Renewed at 3/4 of a 2 s life over 8 s: about five refreshes, never one per process per expiry.
    expect(tokenRefresh).toBeGreaterThanOrEqual(3);
    expect(tokenRefresh).toBeLessThanOrEqual(7);
    const [row] = await h.sql<{ count: number }[]>`select count(*)::int as count from bank_tokens`;
    expect(row!.count).toBe(1);
  }, 180_000); // OS processes boot slowly on a loaded machine; this is no timing claim
});
