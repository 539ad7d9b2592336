/**
 * The Mollie reconciliation sweep against the sandbox: it lists recent payments, compares
 * them with the stored rows and syncs only what differs or is unknown.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { paymentLockKey } from '../../src/lock/locker.js';
import { runDueMollieSweep, runMollieSweeper, sweepMollie } from '../../src/reconciliation/mollie-sweep.js';
import { syncPayment } from '../../src/payments/sync-payment.js';
import { createMollieProvider, type MollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually } from '../helpers/deps.js';

const HOUR = 3_600_000;

let database: TestDatabase;
let sandbox: MollieSandbox;
let provider: MollieProvider;
let deps: Deps;
let sql: postgres.Sql;

function depsWith(env: Record<string, string> = {}): Deps {
  return buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, LOCK_WAIT_MS: '300', ...env },
    { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('mollie-sweep') },
  );
}

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = await startMollieSandbox();
  provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url, retryConfig: { strategy: 'none' } });
  deps = depsWith();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await deps?.close();
  await sandbox?.close();
  await database?.drop();
});

beforeEach(async () => {
  sandbox.reset();
  await sql`truncate payments, payment_transitions, outbox, provider_cursors cascade`;
});

const ago = (ms: number) => new Date(Date.now() - ms);
const sync = (id: string) => syncPayment(deps, { provider: 'mollie', account: 'default', providerPaymentId: id, source: 'sync' });

async function sources(id: string): Promise<string[]> {
  const rows = await sql<{ type: string; source: string }[]>`
    select type, payload->'data'->>'source' as source from outbox where provider_payment_id = ${id} order by payment_version, id`;
  return rows.map((r) => `${r.type}:${r.source}`);
}

function fetchesOf(ids: string[]): Record<string, number> {
  return Object.fromEntries(ids.map((id) => [id, sandbox.requestCount(id)]));
}

describe('sweepMollie', () => {
  it('syncs only payments that differ from the stored row or are unknown, within the window', async () => {
    const inSync = sandbox.createPayment({ status: 'paid', createdAt: ago(1 * HOUR) });
    const missedPaid = sandbox.createPayment({ status: 'open', createdAt: ago(2 * HOUR) });
    const refunded = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '30.00' }, createdAt: ago(3 * HOUR) });
    const unknown = sandbox.createPayment({ status: 'paid', createdAt: ago(0.5 * HOUR) });
    const tooOld = sandbox.createPayment({ status: 'paid', createdAt: ago(72 * HOUR) });
    for (const id of [inSync.id, missedPaid.id, refunded.id]) await sync(id);
    // What the webhooks would have told us, had they arrived.
    sandbox.setStatus(missedPaid.id, 'paid');
    sandbox.addRefund(refunded.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'refunded' });
    sandbox.state.requestCounts.clear();

    const summary = await sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR) });

    expect(summary).toMatchObject({ listed: 4, inSync: 1, changed: 3, unchanged: 0, notFound: 0, busy: 0, failed: 0, complete: true });
    expect(fetchesOf([inSync.id, missedPaid.id, refunded.id, unknown.id, tooOld.id])).toEqual({
      [inSync.id]: 0,
      [missedPaid.id]: 1,
      [refunded.id]: 1,
      [unknown.id]: 1,
      [tooOld.id]: 0,
    });
    expect(await sources(missedPaid.id)).toEqual(['payment.open:sync', 'payment.paid:sweep']);
    expect(await sources(refunded.id)).toEqual(['payment.paid:sync', 'payment.refunded:sweep', 'refund.refunded:sweep']);
    expect(await sources(unknown.id)).toEqual(['payment.paid:sweep']);
    expect(await sources(tooOld.id)).toEqual([]);

    // A second pass finds everything in sync and fetches nothing.
    sandbox.state.requestCounts.clear();
    const again = await sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR) });
    expect(again).toMatchObject({ listed: 4, inSync: 4, changed: 0, complete: true });
    expect(sandbox.state.requestCounts.size).toBe(0);
  });

  it('pages through Mollie\'s list and compares page by page', async () => {
    const ids = Array.from({ length: 23 }, (_, i) => sandbox.createPayment({ status: 'paid', createdAt: ago((i + 1) * 60_000) }).id);
    for (const id of ids.filter((_, i) => i % 2 === 0)) await sync(id);
    const listCalls = () => sandbox.state.requests.filter((r) => r.path === '/v2/payments').length;
    const before = listCalls();
    const summary = await sweepMollie(deps, { account: 'default', cutoff: ago(HOUR), pageSize: 5 });
    expect(listCalls() - before).toBe(5);
    expect(summary).toMatchObject({ listed: 23, inSync: 12, changed: 11, complete: true });
  });

  it('skips a payment another trigger is syncing right now (lock busy)', async () => {
    const payment = sandbox.createPayment({ status: 'paid', createdAt: ago(HOUR) });
    const summary = await deps.locker.withLock(paymentLockKey('mollie', payment.id), () =>
      sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR) }),
    );
    expect(summary).toMatchObject({ listed: 1, busy: 1, changed: 0, complete: true });
    expect(sandbox.requestCount(payment.id)).toBe(0);
  });

  it('stops early when Mollie throttles or is down, and says so', async () => {
    const a = sandbox.createPayment({ status: 'paid', createdAt: ago(HOUR) });
    sandbox.createPayment({ status: 'paid', createdAt: ago(2 * HOUR) });

    sandbox.failNext({ status: 429, count: 1, retryAfterS: 5 });
    const throttledList = await sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR) });
    expect(throttledList).toMatchObject({ listed: 0, complete: false, error: expect.stringMatching(/^rate_limited: /) });
    // The account stays paused until the Retry-After has passed: a sweep now calls nobody.
    const requests = sandbox.state.requests.length;
    expect(await sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR) })).toMatchObject({ listed: 0, complete: false, error: expect.stringMatching(/paused/) });
    expect(sandbox.state.requests.length).toBe(requests);
    await deps.rateLimitPauses.resume('mollie', 'default');

    // The list answers, then the first payment fetch is throttled: the rest of the run is skipped.
    sandbox.failNext({ status: 429, count: 1, retryAfterS: 5, paymentId: a.id });
    const throttledFetch = await sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR), concurrency: 1 });
    expect(throttledFetch).toMatchObject({ listed: 2, failed: 1, changed: 0, complete: false, error: expect.stringMatching(/^rate_limited: /) });
    await deps.rateLimitPauses.resume('mollie', 'default');

    sandbox.setDown('error');
    const down = await sweepMollie(deps, { account: 'default', cutoff: ago(48 * HOUR) });
    expect(down).toMatchObject({ complete: false, error: expect.stringMatching(/^unavailable: /) });
  });
});

describe('the periodic sweep', () => {
  it('runs once per interval across concurrent processes, and keeps a watermark of complete runs', async () => {
    const payment = sandbox.createPayment({ status: 'paid', createdAt: ago(HOUR) });
    const other = depsWith();
    try {
      const input = { account: 'default', intervalMs: 600_000, windowMs: 48 * HOUR };
      const [a, b] = await Promise.all([runDueMollieSweep(deps, input), runDueMollieSweep(other, input)]);
      expect([a, b].filter((s) => s !== null)).toHaveLength(1);
      expect((a ?? b)!).toMatchObject({ listed: 1, changed: 1, complete: true });
      expect(sandbox.requestCount(payment.id)).toBe(1);
      // Not due again until the interval has passed.
      expect(await runDueMollieSweep(deps, input)).toBeNull();

      const [cursor] = await sql<{ cursor: string; next_run_at: string; last_run: { complete: boolean } }[]>`
        select cursor, state->>'nextRunAt' as next_run_at, state->'lastRun' as last_run
        from provider_cursors where provider = 'mollie' and account = 'default' and name = 'sweep'`;
      expect(new Date(cursor!.cursor).getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(new Date(cursor!.next_run_at).getTime()).toBeGreaterThan(Date.now() + 500_000);
      expect(cursor!.last_run).toMatchObject({ complete: true, listed: 1 });

      // After an outage the run reaches back to the watermark, beyond the window.
      const old = sandbox.createPayment({ status: 'paid', createdAt: ago(5 * 24 * HOUR) });
      await sql`update provider_cursors
                set cursor = ${ago(6 * 24 * HOUR).toISOString()}, state = state || '{"nextRunAt": "2000-01-01T00:00:00Z"}'::jsonb
                where provider = 'mollie' and name = 'sweep'`;
      const caughtUp = await runDueMollieSweep(deps, input);
      expect(caughtUp).toMatchObject({ listed: 2, inSync: 1, changed: 1, complete: true });
      expect(sandbox.requestCount(old.id)).toBe(1);

      // An incomplete run leaves the watermark where it was.
      const [{ cursor: before }] = (await sql`select cursor from provider_cursors where provider = 'mollie' and name = 'sweep'`) as unknown as [{ cursor: string }];
      await sql`update provider_cursors set state = state || '{"nextRunAt": "2000-01-01T00:00:00Z"}'::jsonb where provider = 'mollie' and name = 'sweep'`;
      sandbox.setDown('error');
      expect(await runDueMollieSweep(deps, input)).toMatchObject({ complete: false });
      const [{ cursor: after }] = (await sql`select cursor from provider_cursors where provider = 'mollie' and name = 'sweep'`) as unknown as [{ cursor: string }];
      expect(after).toBe(before);
    } finally {
      await other.close();
    }
  });

  it('runMollieSweeper (started by the background jobs) syncs a missed payment on its own', async () => {
    const periodic = depsWith({ MOLLIE_SWEEP_INTERVAL_MS: '1000' });
    const payment = sandbox.createPayment({ status: 'open', createdAt: ago(HOUR) });
    await syncPayment(periodic, { provider: 'mollie', account: 'default', providerPaymentId: payment.id, source: 'sync' });
    sandbox.setStatus(payment.id, 'paid');
    const stop = new AbortController();
    const running = runMollieSweeper(periodic, { signal: stop.signal });
    try {
      await eventually(async () => (await sources(payment.id)).includes('payment.paid:sweep'), { what: 'the sweep to sync the paid payment' });
    } finally {
      stop.abort();
      await running;
      await periodic.close();
    }
  });

  it('does nothing when disabled (interval 0)', async () => {
    const disabled = depsWith({ MOLLIE_SWEEP_INTERVAL_MS: '0' });
    try {
      sandbox.createPayment({ status: 'paid', createdAt: ago(HOUR) });
      // Returns at once instead of looping: the abort signal is never fired.
      await runMollieSweeper(disabled, { signal: new AbortController().signal });
      expect(sandbox.state.requests).toHaveLength(0);
    } finally {
      await disabled.close();
    }
  });
});
