/**
 * Onboarding with Mollie OAuth against real Postgres and the Mollie sandbox over HTTP:
 * connect → the sandbox's authorize step → the public callback creates the account, once
 * per organization; forged and expired states are refused before any code is exchanged;
 * an expiring token is refreshed and stored sealed; a revoked grant breaks the account and
 * connecting again mends it; a token endpoint outage is not a broken account.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { accountSecretsFromEnv, openCredentials } from '../../src/accounts/accounts.js';
import { usableMollieAccessToken, type MollieOAuthCredentials, type MollieOAuthDeps } from '../../src/accounts/oauth.js';
import { signOAuthState } from '../../src/accounts/oauth-state.js';
import { getAccount } from '../../src/accounts/store.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { ProviderError } from '../../src/providers/types.js';
import { SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET, SANDBOX_OAUTH_ORGANIZATION, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually } from '../helpers/deps.js';
import { freePort } from '../helpers/processes.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0 });
  deps = buildTestDeps({
    DATABASE_URL: database.url,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    MOLLIE_API_URL: mollie.url,
    MOLLIE_OAUTH_CLIENT_ID: SANDBOX_OAUTH_CLIENT_ID,
    MOLLIE_OAUTH_CLIENT_SECRET: SANDBOX_OAUTH_CLIENT_SECRET,
    MOLLIE_OAUTH_URL: mollie.url,
    MOLLIE_OAUTH_REFRESH_MARGIN_MS: '1000',
  });
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await mollie?.close();
  await sql?.end();
  await database?.drop();
});

beforeEach(async () => {
  await sql`truncate accounts restart identity`;
  mollie.oauth.setAccessTokenLifetime(3_600_000);
  mollie.oauth.resetStats();
});

interface ConnectStart {
  authorizeUrl: string;
  state: string;
  expiresAt: string;
  redirectUri: string;
}

async function connect(name: string): Promise<ConnectStart> {
  const res = await app.request(`/v1/accounts/mollie/connect?name=${encodeURIComponent(name)}`, { headers: auth });
  expect(res.status).toBe(200);
  return (await res.json()) as ConnectStart;
}

/** The merchant's browser: the authorize page redirects at once; the callback has no admin token. */
async function approveAndReturn(start: ConnectStart, organization = SANDBOX_OAUTH_ORGANIZATION): Promise<Response> {
  const authorize = new URL(start.authorizeUrl);
  authorize.searchParams.set('sandbox_organization', organization);
  const redirect = await fetch(authorize, { redirect: 'manual' });
  expect(redirect.status).toBe(302);
  const back = new URL(redirect.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(start.redirectUri);
  return app.request(`${back.pathname}${back.search}`);
}

async function onboard(name: string, organization = SANDBOX_OAUTH_ORGANIZATION) {
  const res = await approveAndReturn(await connect(name), organization);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function oauthDeps(env: Partial<Deps['env']> = {}): MollieOAuthDeps {
  return { db: deps.db, env: { ...deps.env, ...env }, locker: deps.locker, secrets: accountSecretsFromEnv(deps.env)!, logger: deps.logger };
}

async function storedOAuth(name: string) {
  const account = (await getAccount(deps.db, 'mollie', name))!;
  const credentials = (await openCredentials(accountSecretsFromEnv(deps.env)!, account)) as MollieOAuthCredentials;
  return { account, credentials };
}

async function organizationOf(token: string): Promise<number> {
  return (await fetch(`${mollie.url}/v2/organizations/me`, { headers: { Authorization: `Bearer ${token}` } })).status;
}

describe('GET /v1/accounts/mollie/connect', () => {
  it('answers the authorize URL with the scopes, the redirect URI and a signed state that lasts 10 minutes', async () => {
    const start = await connect('shop-oauth');
    const url = new URL(start.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${mollie.url}/oauth2/authorize`);
    expect(url.searchParams.get('client_id')).toBe(SANDBOX_OAUTH_CLIENT_ID);
    expect(url.searchParams.get('state')).toBe(start.state);
    expect(url.searchParams.get('redirect_uri')).toBe('http://localhost/v1/accounts/mollie/connect/callback');
    expect(url.searchParams.get('scope')!.split(' ')).toEqual(expect.arrayContaining(['payments.read', 'refunds.read', 'organizations.read', 'profiles.read']));
    const ttl = Date.parse(start.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(9 * 60_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000);
  });

  it('refuses a bad name (400), the env account name (409), no admin token (401)', async () => {
    for (const query of ['?name=Bad%20Name', '?name=connect', '']) {
      const res = await app.request(`/v1/accounts/mollie/connect${query}`, { headers: auth });
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    }
    expect((await app.request('/v1/accounts/mollie/connect?name=default', { headers: auth })).status).toBe(409);
    expect((await app.request('/v1/accounts/mollie/connect?name=shop')).status).toBe(401);
  });

  it('answers 503 naming the variables when Mollie OAuth is not configured', async () => {
    const unconfigured = createApp({ ...deps, env: { ...deps.env, MOLLIE_OAUTH_CLIENT_ID: undefined, MOLLIE_OAUTH_CLIENT_SECRET: undefined } });
    const res = await unconfigured.request('/v1/accounts/mollie/connect?name=shop', { headers: auth });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('oauth_not_configured');
    expect(body.error.message).toContain('MOLLIE_OAUTH_CLIENT_ID');
    expect(body.error.message).toContain('MOLLIE_OAUTH_CLIENT_SECRET');
  });
});

describe('the callback', () => {
  it('creates the account (201); the same organization again answers 200 with the first name; one row', async () => {
    const first = await onboard('shop-oauth');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ provider: 'mollie', name: 'shop-oauth', status: 'active', externalId: SANDBOX_OAUTH_ORGANIZATION, credentials: { kind: 'oauth' } });
    const again = await onboard('shop-oauth-again');
    expect(again.status).toBe(200);
    expect(again.body.name).toBe('shop-oauth');
    const rows = await sql<{ n: string }[]>`select count(*) as n from accounts`;
    expect(Number(rows[0]!.n)).toBe(1);
    // The stored tokens work, and no secret is in any answer.
    const { credentials } = await storedOAuth('shop-oauth');
    expect(await organizationOf(credentials.accessToken)).toBe(200);
    expect(JSON.stringify([first.body, again.body])).not.toContain(credentials.refreshToken);
    expect(JSON.stringify([first.body, again.body])).not.toContain(credentials.accessToken);
  });

  it('answers 409 when the name belongs to another organization', async () => {
    expect((await onboard('shop-a', 'org_merchanta')).status).toBe(201);
    const other = await onboard('shop-a', 'org_merchantb');
    expect(other.status).toBe(409);
  });

  it('refuses a forged, altered or expired state with 400 before any code is exchanged', async () => {
    const start = await connect('shop-oauth');
    const [body, mac] = start.state.split('.') as [string, string];
    const altered = `${body.slice(0, -2)}${body.endsWith('A') ? 'B' : 'A'}${body.slice(-1)}.${mac}`;
    const foreign = await signOAuthState('another-apps-secret', { name: 'shop-oauth', redirectUri: start.redirectUri, expiresAt: Date.now() + 60_000 });
    const expired = await signOAuthState(SANDBOX_OAUTH_CLIENT_SECRET, { name: 'shop-oauth', redirectUri: start.redirectUri, expiresAt: Date.now() - 1 });
    const code = mollie.oauth.approve({ redirectUri: start.redirectUri });
    for (const [state, words] of [
      [altered, 'does not match'],
      [foreign, 'does not match'],
      ['garbage', 'malformed'],
      [expired, 'expired'],
    ] as const) {
      const res = await app.request(`/v1/accounts/mollie/connect/callback?code=${code}&state=${encodeURIComponent(state)}`);
      expect(res.status, words).toBe(400);
      const error = ((await res.json()) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('invalid_oauth_state');
      expect(error.message).toContain(words);
    }
    expect(mollie.oauth.stats().codeExchanges).toBe(0);
    // The code is still good: nothing was exchanged.
    const res = await app.request(`/v1/accounts/mollie/connect/callback?code=${code}&state=${encodeURIComponent(start.state)}`);
    expect(res.status).toBe(201);
  });

  it('answers 422 with Mollie\'s message for a refused code (invalid_grant), and for a merchant who did not approve', async () => {
    const start = await connect('shop-oauth');
    const used = await approveAndReturn(start);
    expect(used.status).toBe(201);
    const code = mollie.oauth.approve({ redirectUri: start.redirectUri });
    await app.request(`/v1/accounts/mollie/connect/callback?code=${code}&state=${encodeURIComponent(start.state)}`);
    const replay = await app.request(`/v1/accounts/mollie/connect/callback?code=${code}&state=${encodeURIComponent(start.state)}`);
    expect(replay.status).toBe(422);
    const error = ((await replay.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('credentials_refused');
    expect(error.message).toContain('invalid_grant');

    const denied = new URL(start.authorizeUrl);
    denied.searchParams.set('sandbox_deny', '1');
    const back = new URL((await fetch(denied, { redirect: 'manual' })).headers.get('location')!);
    const res = await app.request(`${back.pathname}${back.search}`);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('access_denied');
  });
});

describe('usableMollieAccessToken', () => {
  it('hands out the stored token while it is fresh, and refreshes one that nears expiry once, sealed in the row', async () => {
    mollie.oauth.setAccessTokenLifetime(1500);
    expect((await onboard('shop-oauth')).status).toBe(201);
    const before = await storedOAuth('shop-oauth');
    // Still fresh (1.5 s left, margin 1 s): no refresh.
    expect(await usableMollieAccessToken(oauthDeps(), before.account, before.credentials)).toBe(before.credentials.accessToken);
    expect(mollie.oauth.stats().refreshes).toBe(0);
    await eventually(async () => Date.parse(before.credentials.expiresAt) - Date.now() < 1000, { what: 'the token to near expiry' });
    // Many callers at once, all holding the old credentials: one refresh.
    const tokens = await Promise.all(Array.from({ length: 20 }, () => usableMollieAccessToken(oauthDeps(), before.account, before.credentials)));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(before.credentials.accessToken);
    expect(mollie.oauth.stats().refreshes).toBe(1);
    const after = await storedOAuth('shop-oauth');
    expect(after.credentials.accessToken).toBe(tokens[0]);
    expect(after.credentials.refreshToken).not.toBe(before.credentials.refreshToken);
    expect(after.account.credentialsCiphertext).not.toContain(tokens[0]);
    expect(await organizationOf(tokens[0]!)).toBe(200);
    // Callers still holding the old credentials get the cached fresh token: no second refresh.
    expect(await usableMollieAccessToken(oauthDeps(), before.account, before.credentials)).toBe(tokens[0]);
    expect(mollie.oauth.stats().refreshes).toBe(1);
  });

  it('an expired access token gets Mollie\'s 401 from the sandbox API', async () => {
    mollie.oauth.setAccessTokenLifetime(1000);
    expect((await onboard('shop-oauth')).status).toBe(201);
    const { credentials } = await storedOAuth('shop-oauth');
    await eventually(async () => Date.parse(credentials.expiresAt) < Date.now() - 100, { what: 'the token to expire' });
    const res = await fetch(`${mollie.url}/v2/organizations/me`, { headers: { Authorization: `Bearer ${credentials.accessToken}` } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ status: 401, title: 'Unauthorized Request' });
  });

  it('a revoked grant (invalid_grant) breaks the account with that reason; connecting again mends it', async () => {
    mollie.oauth.setAccessTokenLifetime(1000);
    expect((await onboard('shop-revoked', 'org_revoker')).status).toBe(201);
    const { account, credentials } = await storedOAuth('shop-revoked');
    expect(mollie.oauth.revokeOrganization('org_revoker')).toBe(1);
    await eventually(async () => Date.parse(credentials.expiresAt) - Date.now() < 1000, { what: 'the token to near expiry' });
    const error = await usableMollieAccessToken(oauthDeps(), account, credentials).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ provider: 'mollie', code: 'unauthorized', retryable: false });
    const res = await app.request('/v1/accounts/mollie/shop-revoked', { headers: auth });
    const broken = (await res.json()) as { status: string; lastError: string; brokenSince: string | null };
    expect(broken.status).toBe('broken');
    expect(broken.lastError).toMatch(/^invalid_grant: /);
    expect(broken.brokenSince).not.toBeNull();
    // Asked again with the same credentials: the same answer, without asking Mollie again.
    const refusals = mollie.oauth.stats().invalidGrants;
    await expect(usableMollieAccessToken(oauthDeps(), account, credentials)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(mollie.oauth.stats().invalidGrants).toBe(refusals);

    mollie.oauth.setAccessTokenLifetime(3_600_000);
    const again = await onboard('shop-revoked-again', 'org_revoker');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ name: 'shop-revoked', status: 'active', lastError: null });
    // The new grant's token is handed out.
    const mended = await storedOAuth('shop-revoked');
    const token = await usableMollieAccessToken(oauthDeps(), mended.account, mended.credentials);
    expect(token).toBe(mended.credentials.accessToken);
    expect(await organizationOf(token)).toBe(200);
  });

  it('the app\'s own credentials refused (invalid_client) break no account', async () => {
    mollie.oauth.setAccessTokenLifetime(1500);
    expect((await onboard('shop-client')).status).toBe(201);
    const { account, credentials } = await storedOAuth('shop-client');
    await eventually(async () => Date.parse(credentials.expiresAt) < Date.now(), { what: 'the token to expire' });
    const error = await usableMollieAccessToken(oauthDeps({ MOLLIE_OAUTH_CLIENT_SECRET: 'not-the-secret' }), account, credentials).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ provider: 'mollie', code: 'unavailable', retryable: false });
    expect((error as Error).message).toContain('MOLLIE_OAUTH_CLIENT_SECRET');
    expect((await storedOAuth('shop-client')).account.status).toBe('active');
  });

  it('a token endpoint outage is not a broken account: the valid token is kept, an expired one is a retryable error', async () => {
    mollie.oauth.setAccessTokenLifetime(1500);
    expect((await onboard('shop-outage')).status).toBe(201);
    const { account, credentials } = await storedOAuth('shop-outage');
    // A port that was free a moment ago and has nothing listening on it now.
    const down = oauthDeps({ MOLLIE_OAUTH_URL: `http://127.0.0.1:${await freePort()}` });
    await eventually(async () => Date.parse(credentials.expiresAt) - Date.now() < 1000, { what: 'the token to near expiry' });
    // Inside the margin but not expired: the refresh fails, the current token is still used.
    expect(await usableMollieAccessToken(down, account, credentials)).toBe(credentials.accessToken);
    await eventually(async () => Date.parse(credentials.expiresAt) < Date.now(), { what: 'the token to expire' });
    const error = await usableMollieAccessToken(down, account, credentials).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ provider: 'mollie', code: 'unavailable', retryable: true });
    expect((await storedOAuth('shop-outage')).account.status).toBe('active');
    // The endpoint back: the refresh goes through.
    const token = await usableMollieAccessToken(oauthDeps(), account, credentials);
    expect(token).not.toBe(credentials.accessToken);
    expect(await organizationOf(token)).toBe(200);
  });
});

describe('the sandbox token endpoint', () => {
  const basic = `Basic ${btoa(`${SANDBOX_OAUTH_CLIENT_ID}:${SANDBOX_OAUTH_CLIENT_SECRET}`)}`;
  const tokens = (method: 'POST' | 'DELETE', body: Record<string, string>, authorization = basic) =>
    fetch(`${mollie.url}/oauth2/tokens`, { method, headers: { Authorization: authorization, 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });

  it('refuses other client credentials, rotates refresh tokens, and revokes a grant through its refresh token', async () => {
    const code = mollie.oauth.approve({ redirectUri: 'https://gw.example/cb', organizationId: 'org_tokens' });
    expect((await tokens('POST', { grant_type: 'authorization_code', code, redirect_uri: 'https://gw.example/cb' }, 'Basic eDp5')).status).toBe(401);
    const first = (await (await tokens('POST', { grant_type: 'authorization_code', code, redirect_uri: 'https://gw.example/cb' })).json()) as { access_token: string; refresh_token: string; expires_in: number };
    expect(first.expires_in).toBe(3600);
    expect(await organizationOf(first.access_token)).toBe(200);
    const second = (await (await tokens('POST', { grant_type: 'refresh_token', refresh_token: first.refresh_token })).json()) as { access_token: string; refresh_token: string };
    expect(second.refresh_token).not.toBe(first.refresh_token);
    const reused = await tokens('POST', { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(reused.status).toBe(400);
    expect(await reused.json()).toMatchObject({ error: 'invalid_grant' });

    expect((await tokens('DELETE', { token_type_hint: 'refresh_token', token: second.refresh_token })).status).toBe(204);
    expect(await organizationOf(second.access_token)).toBe(401);
    expect((await tokens('POST', { grant_type: 'refresh_token', refresh_token: second.refresh_token })).status).toBe(400);
  });
});
