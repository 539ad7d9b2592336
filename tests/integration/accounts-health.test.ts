/**
 * Connections that cannot die silently, in one process against real Postgres and the Mollie
 * sandbox over HTTP: health.ts's flips (one event per episode however many report it), the
 * check (a revoked key breaks, an outage does not, a changed identity breaks, new
 * credentials mend), the check-now route, the job's claim (SKIP LOCKED: one call per due
 * account whoever steps), /readyz, the gauge and the console's Accounts page.
 * The fleet of processes is in accounts-check-processes.test.ts.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountSecretsFromEnv } from '../../src/accounts/accounts.js';
import { withAccountHealth } from '../../src/accounts/call-health.js';
import { checkAccount, checkDueAccounts } from '../../src/accounts/check-job.js';
import { reportAccountRefused, reportAccountWorking } from '../../src/accounts/health.js';
import { credentialsFingerprint, getAccount } from '../../src/accounts/store.js';
import { SESSION_COOKIE } from '../../src/console/session.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { ProviderError, type PaymentProvider } from '../../src/providers/types.js';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { eventContractProblems } from '../helpers/event-contract.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let deps: Deps;
let app: ReturnType<typeof createApp>;
const ORIGIN = 'http://localhost';

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 4, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0 });
  gocardless = await startGoCardlessSandbox({ port: 0 });
  deps = buildTestDeps({
    DATABASE_URL: database.url,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    MOLLIE_API_URL: mollie.url,
    GOCARDLESS_API_URL: gocardless.url,
    MOLLIE_API_KEY: 'test_envconfigured1234',
    ACCOUNT_CHECK_INTERVAL_MS: '60000',
  });
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await mollie?.close();
  await gocardless?.close();
  await sql?.end();
  await database?.drop();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked field by field.
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await app.request(path, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, text };
}

async function createShop(name: string) {
  const key = mollie.accounts.addApiKey();
  const created = await call('POST', '/v1/accounts', { provider: 'mollie', name, credentials: { apiKey: key.token } });
  expect(created.status).toBe(201);
  return key;
}

interface OutboxRow {
  type: string;
  dedupe_key: string;
  payload: { id: string; type: string; timestamp: string; data: Record<string, string> };
}

const accountEvents = (name: string) =>
  sql<OutboxRow[]>`select type, dedupe_key, payload from outbox where type like 'gateway.account.%' and payload->'data'->>'account' = ${name} order by id`;

const profileChecks = () => mollie.state.requests.filter((request) => request.path === '/v2/profiles/me').length;

describe('health.ts: one event per episode', () => {
  it('ten concurrent refusals break the account once; ten concurrent working reports mend it once; a second episode is announced again', async () => {
    const key = await createShop('episodes');
    const refuse = () => reportAccountRefused(deps, 'mollie', 'episodes', 'unauthorized', 'Mollie rejected the API key (401): Missing authentication, or failed to authenticate');
    await Promise.all(Array.from({ length: 10 }, refuse));
    const [row] = await sql<{ status: string; broken_since: Date; last_error: string }[]>`select status, broken_since, last_error from accounts where name = 'episodes'`;
    expect(row!.status).toBe('broken');
    expect(row!.last_error).toBe('unauthorized: Mollie rejected the API key (401): Missing authentication, or failed to authenticate');
    let events = await accountEvents('episodes');
    expect(events.map((e) => e.type)).toEqual(['gateway.account.broken']);
    expect(events[0]!.payload.data).toEqual({
      provider: 'mollie',
      account: 'episodes',
      reason: 'unauthorized',
      detail: 'Mollie rejected the API key (401): Missing authentication, or failed to authenticate',
      since: row!.broken_since.toISOString(),
    });

    await Promise.all(Array.from({ length: 10 }, () => reportAccountWorking(deps, 'mollie', 'episodes')));
    events = await accountEvents('episodes');
    expect(events.map((e) => e.type)).toEqual(['gateway.account.broken', 'gateway.account.recovered']);
    expect(events[1]!.payload.data).toMatchObject({ provider: 'mollie', account: 'episodes', brokenSince: row!.broken_since.toISOString() });
    const [mended] = await sql<{ status: string; broken_since: Date | null; last_error: string | null }[]>`select status, broken_since, last_error from accounts where name = 'episodes'`;
    expect(mended).toEqual({ status: 'active', broken_since: null, last_error: null });

    // A working report without an episode changes nothing and announces nothing.
    await reportAccountWorking(deps, 'mollie', 'episodes');
    // The next episode is its own: announced again, once.
    await Promise.all(Array.from({ length: 5 }, refuse));
    await Promise.all(Array.from({ length: 5 }, () => reportAccountWorking(deps, 'mollie', 'episodes')));
    events = await accountEvents('episodes');
    expect(events.map((e) => e.type)).toEqual(['gateway.account.broken', 'gateway.account.recovered', 'gateway.account.broken', 'gateway.account.recovered']);
    expect(new Set(events.map((e) => e.dedupe_key)).size).toBe(4);
    for (const event of events) {
      expect(eventContractProblems(event.payload)).toEqual([]);
      expect(JSON.stringify(event.payload)).not.toContain(key.token);
    }
    // Reports about the env-configured account or an unknown one change nothing.
    await reportAccountRefused(deps, 'mollie', 'default', 'unauthorized', 'x');
    await reportAccountRefused(deps, 'mollie', 'nobody', 'unauthorized', 'x');
    expect(await sql`select 1 from outbox where payload->'data'->>'account' in ('default', 'nobody')`).toHaveLength(0);
  });
});

describe('POST /v1/accounts/:provider/:name/check', () => {
  it('an outage notes lastError and breaks nothing; a revoked key breaks the account once; new credentials (PATCH) mend it once', async () => {
    const key = await createShop('shop-check');
    const created = (await call('GET', '/v1/accounts/mollie/shop-check')).body;

    mollie.setDown('error');
    const outage = await call('POST', '/v1/accounts/mollie/shop-check/check');
    mollie.setDown(null);
    expect(outage.status).toBe(200);
    expect(outage.body).toMatchObject({ name: 'shop-check', status: 'active', brokenSince: null, lastCheckedAt: created.lastCheckedAt });
    expect(outage.body.lastError).toMatch(/^unavailable: Mollie answered 503/);
    expect(await accountEvents('shop-check')).toHaveLength(0);

    const working = await call('POST', '/v1/accounts/mollie/shop-check/check');
    expect(working.body).toMatchObject({ status: 'active', lastError: null });
    expect(Date.parse(working.body.lastCheckedAt)).toBeGreaterThan(Date.parse(created.lastCheckedAt));

    mollie.accounts.revoke(key.token);
    const refused = await call('POST', '/v1/accounts/mollie/shop-check/check');
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ status: 'broken', brokenSince: expect.any(String) });
    expect(refused.body.lastError).toMatch(/^unauthorized: Mollie rejected the API key \(401\)/);
    // Checked again, and during an outage: the same episode, its reason kept.
    await call('POST', '/v1/accounts/mollie/shop-check/check');
    mollie.setDown('error');
    const brokenOutage = await call('POST', '/v1/accounts/mollie/shop-check/check');
    mollie.setDown(null);
    expect(brokenOutage.body).toMatchObject({ status: 'broken', brokenSince: refused.body.brokenSince, lastError: refused.body.lastError });
    let events = await accountEvents('shop-check');
    expect(events.map((e) => e.type)).toEqual(['gateway.account.broken']);
    expect(events[0]!.payload.data).toMatchObject({ provider: 'mollie', account: 'shop-check', reason: 'unauthorized', since: refused.body.brokenSince });

    // A new key of the same profile: the PATCH checks it and mends the account.
    const replacement = mollie.accounts.addApiKey({ profileId: key.profileId });
    const patched = await call('PATCH', '/v1/accounts/mollie/shop-check', { credentials: { apiKey: replacement.token } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ status: 'active', brokenSince: null, lastError: null, credentials: { kind: 'apiKey', last4: replacement.token.slice(-4) } });
    events = await accountEvents('shop-check');
    expect(events.map((e) => e.type)).toEqual(['gateway.account.broken', 'gateway.account.recovered']);
    expect(events[1]!.payload.data).toMatchObject({ account: 'shop-check', brokenSince: refused.body.brokenSince });
    expect((await call('POST', '/v1/accounts/mollie/shop-check/check')).body.status).toBe('active');
    expect(await accountEvents('shop-check')).toHaveLength(2);
    for (const event of events) {
      expect(JSON.stringify(event.payload)).not.toContain(key.token);
      expect(JSON.stringify(event.payload)).not.toContain(replacement.token);
    }
    for (const answer of [outage, working, refused, brokenOutage, patched]) expect(answer.text).not.toContain(key.token);
  });

  it('a GoCardless token revoked at the sandbox breaks its account the same way', async () => {
    const token = gocardless.creditors.addAccessToken();
    const created = await call('POST', '/v1/accounts', { provider: 'gocardless', name: 'gc-shop', credentials: { accessToken: token.token } });
    expect(created.status).toBe(201);
    expect((await call('POST', '/v1/accounts/gocardless/gc-shop/check')).body).toMatchObject({ status: 'active', lastError: null });
    gocardless.creditors.revokeAccessToken(token.token);
    const refused = await call('POST', '/v1/accounts/gocardless/gc-shop/check');
    expect(refused.body.status).toBe('broken');
    expect(refused.body.lastError).toMatch(/^unauthorized: /);
    const events = await accountEvents('gc-shop');
    expect(events.map((e) => [e.type, e.payload.data.provider, e.payload.data.reason])).toEqual([['gateway.account.broken', 'gocardless', 'unauthorized']]);
    expect(JSON.stringify(events)).not.toContain(token.token);
    await sql`update accounts set status = 'disabled' where name = 'gc-shop'`;
  });

  it('credentials that now answer for another identity break the account with reason identity_changed', async () => {
    const key = await createShop('shop-moved');
    const profileId = key.profileId;
    // The sandbox's credential object, changed in place: the key now answers for another profile.
    mollie.accounts.get(key.token)!.profileId = 'pfl_someoneelse';
    const checked = await call('POST', '/v1/accounts/mollie/shop-moved/check');
    expect(checked.body.status).toBe('broken');
    expect(checked.body.lastError).toBe(`identity_changed: the credentials now belong to pfl_someoneelse, not to ${profileId}`);
    const events = await accountEvents('shop-moved');
    expect(events.map((e) => [e.type, e.payload.data.reason])).toEqual([['gateway.account.broken', 'identity_changed']]);
  });

  it('answers 404 for an unknown account or provider, 409 for the env-configured one, 400 for a bad name, 401 without the token', async () => {
    expect((await call('POST', '/v1/accounts/mollie/no-such-shop/check')).status).toBe(404);
    const env = await call('POST', '/v1/accounts/mollie/default/check');
    expect(env.status).toBe(409);
    expect(env.body.error.code).toBe('account_read_only');
    const provider = await call('POST', '/v1/accounts/stripe/shop/check');
    expect([provider.status, provider.body.error.code]).toEqual([404, 'unknown_provider']);
    expect((await call('POST', '/v1/accounts/mollie/Bad%20Name/check')).status).toBe(400);
    expect((await app.request('/v1/accounts/mollie/shop-check/check', { method: 'POST' })).status).toBe(401);
  });
});

describe('visible: /readyz and /metrics', () => {
  it('/readyz stays ready and names the broken accounts (no provider text); the gauge counts by provider and status only', async () => {
    const res = await app.request('/readyz');
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body.status).toBe('ready');
    expect(body.accounts.status).toBe('attention');
    expect(body.accounts.broken.count).toBe(1);
    expect(body.accounts.broken.accounts).toEqual([{ provider: 'mollie', name: 'shop-moved', since: expect.any(String) }]);
    expect(body.accounts.counts.mollie).toEqual({ active: 2, broken: 1 });
    expect(text).not.toContain('pfl_someoneelse');
    expect(text).not.toContain('identity_changed');

    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toContain('gateway_accounts{provider="mollie",status="broken"} 1');
    expect(metrics).toContain('gateway_accounts{provider="mollie",status="active"} 2');
    expect(metrics).toContain('gateway_accounts{provider="gocardless",status="broken"} 0');
    expect(metrics).not.toMatch(/gateway_accounts\{[^}]*account=/);
  });
});

describe('the check job', () => {
  it('schedules new accounts within the interval, and two steps at once check each due account once', async () => {
    await sql`update accounts set status = 'disabled' where name in ('episodes', 'shop-check', 'shop-moved')`;
    const names = ['job-1', 'job-2', 'job-3', 'job-4'];
    for (const name of names) await createShop(name);
    // A first step only schedules them: they were checked when they were created.
    const before = profileChecks();
    expect((await checkDueAccounts(deps))!.claimed).toBe(0);
    const scheduled = await sql<{ name: string; in_ms: number }[]>`
      select name, extract(epoch from next_check_at - now()) * 1000 as in_ms from accounts where name like 'job-%' order by name`;
    expect(scheduled).toHaveLength(4);
    for (const row of scheduled) {
      expect(Number(row.in_ms)).toBeGreaterThan(0);
      expect(Number(row.in_ms)).toBeLessThanOrEqual(60_000);
    }
    expect(profileChecks()).toBe(before);

    await sql`update accounts set next_check_at = now() - interval '1 second' where name like 'job-%'`;
    const steps = await Promise.all([checkDueAccounts(deps), checkDueAccounts(deps), checkDueAccounts(deps)]);
    expect(steps.reduce((sum, step) => sum + step!.claimed, 0)).toBe(4);
    expect(steps.reduce((sum, step) => sum + step!.working, 0)).toBe(4);
    expect(profileChecks() - before).toBe(4);
    // Each moved one interval on (its phase kept): nothing is due again now.
    const next = await sql<{ in_ms: number }[]>`select extract(epoch from next_check_at - now()) * 1000 as in_ms from accounts where name like 'job-%'`;
    for (const row of next) expect(Number(row.in_ms)).toBeGreaterThan(55_000);
    expect((await checkDueAccounts(deps))!.claimed).toBe(0);

    // Another process's claim, not committed yet, holds those rows: this step skips them at
    // once (SKIP LOCKED) instead of waiting and then checking them a second time.
    await sql`update accounts set next_check_at = now() - interval '1 second' where name like 'job-%'`;
    const callsBefore = profileChecks();
    const concurrent = await sql.begin(async (tx) => {
      await tx`update accounts set next_check_at = now() + interval '1 minute' where name like 'job-%'`;
      const step = checkDueAccounts(deps).then((summary) => summary!.claimed);
      const waited = new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 5000));
      return Promise.race([step, waited]);
    });
    expect(concurrent).toBe(0);
    expect(profileChecks()).toBe(callsBefore);
    // Disabled accounts are never claimed.
    expect(await sql`select 1 from accounts where status = 'disabled' and next_check_at is not null`).toHaveLength(0);
  });
});

describe('the console Accounts page', () => {
  function form(headers: Record<string, string> = {}): RequestInit {
    return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...headers }, body: '' };
  }

  it('lists each account with its status, last error, webhook URL and buttons; Check now and Disable work, are audited, and need the console origin', async () => {
    const signIn = await app.request('/console/sign-in', { ...form(), body: new URLSearchParams({ token: TEST_ADMIN_TOKEN }).toString() });
    expect(signIn.status).toBe(303);
    const cookie = `${SESSION_COOKIE}=${/gw_console=([^;]*)/.exec(signIn.headers.get('set-cookie') ?? '')![1]}`;
    await sql`update accounts set status = 'broken', broken_since = now(), last_error = 'unauthorized: <b>refused</b>' where name = 'shop-moved'`;

    const page = await app.request('/console/accounts', { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    const html = await page.text();
    expect(html).not.toContain('<script');
    expect(html).toContain('data-testid="account-mollie-job-1"');
    expect(html).toContain('http://localhost/webhooks/mollie/job-1');
    expect(html).toContain('http://localhost/webhooks/mollie/default');
    expect(html).toContain('read-only (environment)');
    expect(html).toContain('1 account is broken');
    // Provider text is escaped, never markup.
    expect(html).toContain('unauthorized: &lt;b&gt;refused&lt;/b&gt;');
    expect(html).toContain('action="/console/accounts/mollie/job-1/check"');
    expect(html).toContain('action="/console/accounts/mollie/job-1/disable"');
    const brokenOnly = await (await app.request('/console/accounts?status=broken', { headers: { cookie } })).text();
    expect(brokenOnly).toContain('account-mollie-shop-moved');
    expect(brokenOnly).not.toContain('account-mollie-job-1');

    // Without the console's Origin: refused, nothing checked.
    const before = profileChecks();
    const foreign = await app.request('/console/accounts/mollie/job-1/check', form({ cookie, origin: 'https://evil.example' }));
    expect(foreign.status).toBe(403);
    expect(profileChecks()).toBe(before);

    const checked = await app.request('/console/accounts/mollie/job-1/check', form({ cookie }));
    expect(checked.status).toBe(303);
    expect(checked.headers.get('location')).toBe('/console/accounts?account=mollie%2Fjob-1&checked=working');
    expect(profileChecks()).toBe(before + 1);
    expect(await (await app.request(checked.headers.get('location')!, { headers: { cookie } })).text()).toContain('mollie/job-1: the provider accepts the credentials.');

    const disabled = await app.request('/console/accounts/mollie/job-2/disable', form({ cookie }));
    expect(disabled.status).toBe(303);
    expect((await sql`select status from accounts where name = 'job-2'`)[0]!.status).toBe('disabled');
    expect((await app.request('/console/accounts/mollie/default/disable', form({ cookie }))).status).toBe(409);
    expect((await app.request('/console/accounts/mollie/nobody/check', form({ cookie }))).status).toBe(404);

    const audit = await sql<{ action: string; target: string; outcome: string; actor: string }[]>`
      select action, target, outcome, actor from audit_log where action like 'account.%' order by id`;
    expect(audit.map((entry) => [entry.action, entry.target, entry.outcome])).toEqual([
      ['account.check', 'account:mollie/job-1', 'applied'],
      ['account.disable', 'account:mollie/job-2', 'applied'],
      ['account.disable', 'account:mollie/default', 'refused'],
      ['account.check', 'account:mollie/nobody', 'refused'],
    ]);
    expect(audit.every((entry) => entry.actor.startsWith('console:'))).toBe(true);
  });
});

describe('a refusal of credentials that were replaced meanwhile', () => {
  it('a check that set out with the old key, refused after a PATCH mended the account, breaks nothing', async () => {
    const key = await createShop('stale-check');
    mollie.accounts.revoke(key.token);
    expect((await call('POST', '/v1/accounts/mollie/stale-check/check')).body.status).toBe('broken');
    // The check job claimed the row (old credentials) just before the PATCH below.
    const staleRow = (await getAccount(deps.db, 'mollie', 'stale-check'))!;
    const replacement = mollie.accounts.addApiKey({ profileId: key.profileId });
    const patched = await call('PATCH', '/v1/accounts/mollie/stale-check', { credentials: { apiKey: replacement.token } });
    expect(patched.body).toMatchObject({ status: 'active', brokenSince: null });

    // Its call with the old key is refused now: the answer is about credentials no longer stored.
    expect(await checkAccount(deps, accountSecretsFromEnv(deps.env)!, staleRow)).toBe('refused');
    expect((await call('GET', '/v1/accounts/mollie/stale-check')).body).toMatchObject({ status: 'active', brokenSince: null, lastError: null });
    expect((await accountEvents('stale-check')).map((e) => e.type)).toEqual(['gateway.account.broken', 'gateway.account.recovered']);

    // The same report naming the credentials stored now does break it.
    await reportAccountRefused(deps, 'mollie', 'stale-check', 'unauthorized', 'refused', credentialsFingerprint((await getAccount(deps.db, 'mollie', 'stale-check'))!));
    // ...where the old one does not (the row is broken now either way; nothing more is announced).
    expect(credentialsFingerprint(staleRow)).not.toBe(credentialsFingerprint((await getAccount(deps.db, 'mollie', 'stale-check'))!));
    expect((await call('GET', '/v1/accounts/mollie/stale-check')).body.status).toBe('broken');
  });

  it('a provider call refused with the key this process held as it began breaks nothing once a PATCH has replaced that key', async () => {
    const key = await createShop('stale-call');
    const replacement = mollie.accounts.addApiKey({ profileId: key.profileId });
    const refusedAfterPatch = async () => {
      // The PATCH lands while the call is out; the old key is then refused.
      expect((await call('PATCH', '/v1/accounts/mollie/stale-call', { credentials: { apiKey: replacement.token } })).status).toBe(200);
      throw new ProviderError('mollie', 'unauthorized', 'Mollie rejected the API key (401)', false);
    };
    const fake = { fetchPayment: refusedAfterPatch } as unknown as PaymentProvider;
    const wrapped = withAccountHealth({ mollie: fake }, { db: deps.db, logger: deps.logger, accounts: deps.accounts });
    await expect(wrapped.mollie!.fetchPayment('stale-call', 'tr_stale12345')).rejects.toThrow('401');
    expect((await call('GET', '/v1/accounts/mollie/stale-call')).body).toMatchObject({ status: 'active', brokenSince: null });
    expect(await accountEvents('stale-call')).toEqual([]);

    // A call refused with the key stored now breaks it, once.
    const refusedNow = () => Promise.reject(new ProviderError('mollie', 'unauthorized', 'Mollie rejected the API key (401)', false));
    const current = withAccountHealth({ mollie: { fetchPayment: refusedNow } as unknown as PaymentProvider }, { db: deps.db, logger: deps.logger, accounts: deps.accounts });
    await expect(current.mollie!.fetchPayment('stale-call', 'tr_stale12345')).rejects.toThrow('401');
    expect((await call('GET', '/v1/accounts/mollie/stale-call')).body.status).toBe('broken');
    expect((await accountEvents('stale-call')).map((e) => e.type)).toEqual(['gateway.account.broken']);
  });
});
