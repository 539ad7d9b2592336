import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { syncPayment } from '../../src/payments/sync-payment.js';
import { pollOnce, type PollOnceOptions } from '../../src/poller/poller.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually } from '../helpers/deps.js';

/**
 * A failing poller must be loud. Against the wire-exact Mollie sandbox: when its API
 * goes down, the account degrades once (event, error log, /readyz, /metrics) and
 * recovers once when it heals; a revoked key degrades its own account only; a 429's
 * Retry-After pauses the account for every process.
 */

let database: TestDatabase;
let sql: postgres.Sql;
let deps: Deps;
let sandbox: MollieSandbox;
let app: ReturnType<typeof createApp>;
const logLines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
const ids: string[] = [];
let revokedId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startMollieSandbox();
  const mollie = createMollieProvider({
    accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY }, revoked: { apiKey: 'test_revoked_key_revoked_key' } },
    apiUrl: sandbox.url,
    retryConfig: { strategy: 'none' },
    timeoutMs: 3000,
  });
  const logger = createLogger('warn', { write: (line: string) => void logLines.push(JSON.parse(line)) });
  deps = buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, POLLER_RATE_PER_SECOND: '1000', POLLER_RATE_BURST: '1000' },
    { providers: { mollie }, logger, lockKeyPrefix: redisPrefix('poller-health') },
  );
  app = createApp(deps);
  for (let i = 0; i < 3; i++) {
    const payment = sandbox.createPayment({ status: 'open', method: 'ideal' });
    ids.push(payment.id);
    await syncPayment(deps, { provider: 'mollie', account: 'default', providerPaymentId: payment.id, source: 'track' });
  }
  // A payment of an account whose key the provider no longer accepts (tracked before it was revoked).
  revokedId = sandbox.createPayment({ status: 'open', method: 'ideal' }).id;
  await sql`
    insert into payments (provider, provider_payment_id, account, status, provider_status, amount_minor, currency, method, snapshot, fence)
    values ('mollie', ${revokedId}, 'revoked', 'open', 'open', 1000, 'EUR', 'ideal', '{}'::jsonb, 0)`;
});

afterAll(async () => {
  await deps?.close();
  await sandbox?.close();
  await sql?.end();
  await database?.drop();
});

const makeDue = (paymentIds: string[]) => sql`update payments set next_poll_at = now() where provider_payment_id = any(${paymentIds})`;

async function pass(options: PollOnceOptions = {}) {
  await makeDue(ids);
  return pollOnce(deps, { thresholds: { degradeAfterFailures: 4, degradeAfterMs: 15 * 60_000 }, ...options });
}

async function events(type: string, account = 'default') {
  return sql<{ dedupe_key: string; payload: { data: Record<string, unknown> } }[]>`
    select dedupe_key, payload from outbox where type = ${type} and payload->'data'->>'account' = ${account} order by id`;
}

async function readyPoller() {
  const res = await app.request('/readyz');
  expect(res.status).toBe(200);
  const body = await res.json();
  return body.poller as { status: string; accounts: Array<Record<string, unknown>> };
}

async function metric(name: string, account = 'default'): Promise<number | undefined> {
  const text = await (await app.request('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`account="${account}"`) && l.includes('provider="mollie"'));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('poller health', () => {
  it('a provider outage degrades the account once, loudly, and its end recovers it once', async () => {
    sandbox.setDown('error');
    expect(await pass()).toMatchObject({ leased: 3, failed: 3 });
    expect(await events('gateway.poller.degraded')).toHaveLength(0);
    expect(await pass()).toMatchObject({ failed: 3, flips: [{ provider: 'mollie', account: 'default', flip: 'degrade' }] });
    expect(await pass()).toMatchObject({ failed: 3, flips: [] });

    const degraded = await events('gateway.poller.degraded');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]!.payload.data).toMatchObject({ provider: 'mollie', account: 'default', reason: 'consecutive_failures' });
    expect(String(degraded[0]!.payload.data.lastError)).toMatch(/unavailable/);
    const loud = logLines.filter((l) => l.level >= 50 && /DEGRADED/.test(l.msg));
    expect(loud).toHaveLength(1);
    expect(loud[0]).toMatchObject({ provider: 'mollie', account: 'default' });

    const poller = await readyPoller();
    expect(poller.status).toBe('degraded');
    expect(poller.accounts.find((a) => a.account === 'default')).toMatchObject({ state: 'degraded', consecutiveFailures: 9 });
    expect(await metric('gateway_poller_consecutive_failures')).toBe(9);
    expect(await metric('gateway_poller_degraded')).toBe(1);

    sandbox.setDown(null);
    expect(await pass()).toMatchObject({ polled: 3, flips: [{ flip: 'recover' }] });
    expect(await pass()).toMatchObject({ polled: 3, flips: [] });
    const recovered = await events('gateway.poller.recovered');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]!.payload.data).toMatchObject({ degradedSince: degraded[0]!.payload.data.since });
    expect((await readyPoller()).status).toBe('ok');
    expect(await metric('gateway_poller_degraded')).toBe(0);
    expect(await metric('gateway_poller_consecutive_failures')).toBe(0);
    expect(await metric('gateway_poller_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);

    // A second outage is a second episode: announced again, under its own key.
    sandbox.setDown('error');
    await pass();
    await pass();
    sandbox.setDown(null);
    await pass();
    const twice = await events('gateway.poller.degraded');
    expect(twice).toHaveLength(2);
    expect(new Set(twice.map((e) => e.dedupe_key)).size).toBe(2);
    expect(await events('gateway.poller.recovered')).toHaveLength(2);
  });

  it('a revoked key degrades that account alone, on "no success for T"', async () => {
    const thresholds = { degradeAfterFailures: 100, degradeAfterMs: 1000 };
    await eventually(
      async () => {
        await makeDue([revokedId]);
        const summary = await pollOnce(deps, { thresholds });
        expect(summary.failed).toBe(1);
        return summary.flips.some((f) => f.account === 'revoked' && f.flip === 'degrade');
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'the revoked account to degrade' },
    );
    const degraded = await events('gateway.poller.degraded', 'revoked');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]!.payload.data).toMatchObject({ reason: 'no_recent_success', lastSuccessAt: null });
    expect(String(degraded[0]!.payload.data.lastError)).toMatch(/unauthorized/);
    const poller = await readyPoller();
    expect(poller.accounts.find((a) => a.account === 'revoked')).toMatchObject({ state: 'degraded' });
    expect(poller.accounts.find((a) => a.account === 'default')).toMatchObject({ state: 'healthy' });
    await sql`update payments set next_poll_at = null where provider_payment_id = ${revokedId}`;
  });

  it("honours a 429's Retry-After: the account pauses for every process, then polling resumes", async () => {
    const requests = () => ids.reduce((sum, id) => sum + sandbox.requestCount(id), 0);
    sandbox.failNext({ status: 429, count: 1, retryAfterS: 2 });
    const before = requests();
    const first = await pass({ concurrency: 1 });
    expect(first).toMatchObject({ leased: 3, rateLimited: 1, skipped: 2, polled: 0 });
    // The other two were not even asked for.
    expect(requests() - before).toBe(1);
    const [health] = await sql<{ paused_ms: number }[]>`
      select (extract(epoch from paused_until - now()) * 1000)::int as paused_ms
      from poller_health where provider = 'mollie' and account = 'default'`;
    expect(health!.paused_ms).toBeGreaterThan(1000);
    expect(health!.paused_ms).toBeLessThanOrEqual(2000);

    // Another process (another lease owner, its own token bucket) leaves the account alone too.
    expect(await pass({ owner: 'another-process' })).toMatchObject({ leased: 0 });
    expect(requests() - before).toBe(1);
    expect((await readyPoller()).accounts.find((a) => a.account === 'default')!.pausedUntil).not.toBeNull();

    const resumed = await eventually(
      async () => {
        const summary = await pass();
        return summary.polled === 3 && summary;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'polling to resume after Retry-After' },
    );
    expect(resumed.rateLimited).toBe(0);
  });
});
