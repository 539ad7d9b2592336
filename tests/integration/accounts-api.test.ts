/**
 * /v1/accounts against real Postgres and the provider sandboxes over HTTP: creation
 * checked with the provider and idempotent per provider-side identity, refusals that
 * store nothing, the env-configured accounts listed read-only, changes and disabling,
 * and no secret in any answer.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps } from '../helpers/deps.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let deps: Deps;
let app: ReturnType<typeof createApp>;
const ENV_MOLLIE_KEY = 'test_envconfigured1234';

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox();
  gocardless = await startGoCardlessSandbox();
  deps = buildTestDeps({
    DATABASE_URL: database.url,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    MOLLIE_API_URL: mollie.url,
    GOCARDLESS_API_URL: gocardless.url,
    MOLLIE_API_KEY: ENV_MOLLIE_KEY,
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

beforeEach(async () => {
  await sql`truncate accounts restart identity`;
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

const count = async () => Number((await sql`select count(*) as n from accounts`)[0]!.n);

describe('/v1/accounts', () => {
  it('creates an account (201), answers the same identity with the first account (200), refuses a name of another identity (409)', async () => {
    const key = mollie.accounts.addApiKey();
    const created = await call('POST', '/v1/accounts', { provider: 'mollie', name: 'shop-1', credentials: { apiKey: key.token }, webhookSecrets: ['whsec-shop-1'] });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      provider: 'mollie',
      name: 'shop-1',
      status: 'active',
      externalId: key.profileId,
      webhookUrl: 'http://localhost/webhooks/mollie/shop-1',
      credentials: { kind: 'apiKey', last4: key.token.slice(-4) },
      source: 'api',
      lastCheckedAt: expect.any(String),
      brokenSince: null,
      lastError: null,
      createdAt: expect.any(String),
    });
    expect(created.text).not.toContain(key.token);
    expect(created.text).not.toContain('whsec-shop-1');

    // A retry, and the same key under another name: the first account, nothing new.
    expect(await call('POST', '/v1/accounts', { provider: 'mollie', name: 'shop-1', credentials: { apiKey: key.token } })).toMatchObject({ status: 200, body: { name: 'shop-1' } });
    const renamed = await call('POST', '/v1/accounts', { provider: 'mollie', name: 'shop-1-again', credentials: { apiKey: key.token } });
    expect(renamed).toMatchObject({ status: 200, body: { name: 'shop-1', externalId: key.profileId } });
    // Another key of the same profile is the same merchant too.
    const sameProfile = mollie.accounts.addApiKey({ profileId: key.profileId });
    expect(await call('POST', '/v1/accounts', { provider: 'mollie', name: 'shop-x', credentials: { apiKey: sameProfile.token } })).toMatchObject({ status: 200, body: { name: 'shop-1' } });

    const other = mollie.accounts.addApiKey();
    const taken = await call('POST', '/v1/accounts', { provider: 'mollie', name: 'shop-1', credentials: { apiKey: other.token } });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toMatchObject({ code: 'account_name_taken', message: expect.stringContaining('belongs to another mollie identity') });
    expect(await call('POST', '/v1/accounts', { provider: 'mollie', name: 'default', credentials: { apiKey: other.token } })).toMatchObject({ status: 409 });
    expect(await count()).toBe(1);
  });

  it("answers 422 with the provider's message when the provider refuses the credentials, and stores nothing", async () => {
    const key = mollie.accounts.addApiKey();
    mollie.accounts.revoke(key.token);
    const refused = await call('POST', '/v1/accounts', { provider: 'mollie', name: 'revoked', credentials: { apiKey: key.token } });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'credentials_refused', retryable: false, message: expect.stringContaining('Missing authentication, or failed to authenticate') });
    expect(refused.text).not.toContain(key.token);

    const gc = await call('POST', '/v1/accounts', { provider: 'gocardless', name: 'gc-unknown', credentials: { accessToken: 'not-a-real-token' } });
    expect(gc.status).toBe(422);
    expect(gc.body.error.message).toContain('Access token not found');
    expect(await count()).toBe(0);
  });

  it('answers 502 provider_unavailable when the provider cannot answer, and stores nothing', async () => {
    mollie.setDown('error');
    try {
      const down = await call('POST', '/v1/accounts', { provider: 'mollie', name: 'during-outage', credentials: { apiKey: SANDBOX_DEFAULT_API_KEY } });
      expect(down.status).toBe(502);
      expect(down.body.error).toMatchObject({ code: 'provider_unavailable', retryable: true });
    } finally {
      mollie.setDown(null);
    }
    expect(await count()).toBe(0);
  });

  it('refuses bad input with 400 naming the field', async () => {
    const badName = await call('POST', '/v1/accounts', { provider: 'mollie', name: 'Shop 1', credentials: { apiKey: SANDBOX_DEFAULT_API_KEY } });
    expect(badName.status).toBe(400);
    expect(badName.body.error.message).toContain('name');
    // GoCardless credentials under Mollie, and an unknown provider.
    expect((await call('POST', '/v1/accounts', { provider: 'mollie', name: 'x', credentials: { accessToken: 'abcdefghij' } })).status).toBe(400);
    expect((await call('POST', '/v1/accounts', { provider: 'stripe', name: 'x', credentials: {} })).status).toBe(400);
    expect((await call('POST', '/v1/accounts', { provider: 'mollie', name: 'connect', credentials: { apiKey: SANDBOX_DEFAULT_API_KEY } })).status).toBe(400);
  });

  it('lists the env-configured account first and pages through the rest; gets one; the default accounts are read-only', async () => {
    for (let i = 0; i < 3; i++) {
      const key = mollie.accounts.addApiKey();
      expect((await call('POST', '/v1/accounts', { provider: 'mollie', name: `m-${i}`, credentials: { apiKey: key.token } })).status).toBe(201);
    }
    const gcToken = gocardless.creditors.addAccessToken();
    const gc = await call('POST', '/v1/accounts', { provider: 'gocardless', name: 'gc-1', credentials: { accessToken: gcToken.token } });
    expect(gc).toMatchObject({ status: 201, body: { externalId: gcToken.creditorId, credentials: { kind: 'accessToken' }, webhookUrl: 'http://localhost/webhooks/gocardless/gc-1' } });

    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await call('GET', `/v1/accounts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      names.push(...page.body.data.map((a: { provider: string; name: string }) => `${a.provider}/${a.name}`));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(names).toEqual(['mollie/default', 'mollie/m-0', 'mollie/m-1', 'mollie/m-2', 'gocardless/gc-1']);
    expect((await call('GET', '/v1/accounts?provider=gocardless')).body.data.map((a: { name: string }) => a.name)).toEqual(['gc-1']);

    const envAccount = await call('GET', '/v1/accounts/mollie/default');
    expect(envAccount).toMatchObject({ status: 200, body: { source: 'environment', status: 'active', externalId: null, credentials: { kind: 'apiKey', last4: ENV_MOLLIE_KEY.slice(-4) } } });
    expect(envAccount.text).not.toContain(ENV_MOLLIE_KEY);
    expect((await call('GET', '/v1/accounts/gocardless/default')).status).toBe(404);
    expect((await call('GET', '/v1/accounts/mollie/m-1')).body).toMatchObject({ name: 'm-1', source: 'api' });
    expect((await call('GET', '/v1/accounts/mollie/nope')).status).toBe(404);

    const patchDefault = await call('PATCH', '/v1/accounts/mollie/default', { disabled: true });
    expect(patchDefault.status).toBe(409);
    expect(patchDefault.body.error).toMatchObject({ code: 'account_read_only', message: expect.stringContaining('MOLLIE_API_KEY') });
    expect((await call('DELETE', '/v1/accounts/mollie/default')).body.error.code).toBe('account_read_only');
  });

  it('changes credentials of the same identity, refuses another identity, replaces webhook secrets, disables and enables', async () => {
    const key = mollie.accounts.addApiKey();
    await call('POST', '/v1/accounts', { provider: 'mollie', name: 'shop', credentials: { apiKey: key.token } });
    const [before] = await sql`select credentials_ciphertext, webhook_secrets_ciphertext from accounts`;
    expect(before!.webhook_secrets_ciphertext).toBeNull();

    const rotatedKey = mollie.accounts.addApiKey({ profileId: key.profileId });
    const rotated = await call('PATCH', '/v1/accounts/mollie/shop', { credentials: { apiKey: rotatedKey.token }, webhookSecrets: ['a-secret', 'old-secret'] });
    expect(rotated).toMatchObject({ status: 200, body: { credentials: { last4: rotatedKey.token.slice(-4) }, status: 'active' } });
    const [after] = await sql`select credentials_ciphertext, webhook_secrets_ciphertext from accounts`;
    expect(after!.credentials_ciphertext).not.toBe(before!.credentials_ciphertext);
    expect(after!.webhook_secrets_ciphertext).toEqual(expect.any(String));

    const stranger = mollie.accounts.addApiKey();
    const mismatch = await call('PATCH', '/v1/accounts/mollie/shop', { credentials: { apiKey: stranger.token } });
    expect(mismatch).toMatchObject({ status: 409, body: { error: { code: 'account_identity_mismatch' } } });
    mollie.accounts.revoke(stranger.token);
    expect((await call('PATCH', '/v1/accounts/mollie/shop', { credentials: { apiKey: stranger.token } })).status).toBe(422);

    expect((await call('PATCH', '/v1/accounts/mollie/shop', { webhookSecrets: [] })).status).toBe(200);
    expect((await sql`select webhook_secrets_ciphertext from accounts`)[0]!.webhook_secrets_ciphertext).toBeNull();
    expect((await call('PATCH', '/v1/accounts/mollie/shop', {})).status).toBe(400);

    expect(await call('DELETE', '/v1/accounts/mollie/shop')).toMatchObject({ status: 200, body: { status: 'disabled' } });
    expect((await call('GET', '/v1/accounts?status=disabled')).body.data.map((a: { name: string }) => a.name)).toEqual(['shop']);
    expect(await call('PATCH', '/v1/accounts/mollie/shop', { disabled: false })).toMatchObject({ status: 200, body: { status: 'active' } });
    expect((await call('DELETE', '/v1/accounts/gocardless/shop')).status).toBe(404);
  });

  it('50 concurrent creations, 10 of them the same merchant again under another name: 40 accounts, the duplicates answered with the first name', async () => {
    const keys = Array.from({ length: 40 }, () => mollie.accounts.addApiKey());
    const requests = [
      ...keys.map((key, i) => ({ name: `c-${i}`, apiKey: key.token })),
      ...keys.slice(0, 10).map((key, i) => ({ name: `c-${i}-dup`, apiKey: key.token })),
    ];
    const results = await Promise.all(requests.map(({ name, apiKey }) => call('POST', '/v1/accounts', { provider: 'mollie', name, credentials: { apiKey } })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(40);
    const duplicates = results.filter((r) => r.status === 200);
    expect(duplicates).toHaveLength(10);
    // Whichever of a pair won, both answers name the same one account.
    for (let i = 0; i < 10; i++) expect(results[i]!.body.name).toBe(results[40 + i]!.body.name);
    expect(await count()).toBe(40);
  });
});

describe('/v1/accounts without ACCOUNT_SECRETS_KEY', () => {
  it('answers 503 naming the variable when creating, and still lists', async () => {
    const keyless = buildTestDeps({ DATABASE_URL: database.url, MOLLIE_API_URL: mollie.url });
    try {
      const keylessApp = createApp(keyless);
      const res = await keylessApp.request('/v1/accounts', {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ provider: 'mollie', name: 'shop', credentials: { apiKey: SANDBOX_DEFAULT_API_KEY } }),
      });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('secrets_not_configured');
      expect(body.error.message).toContain('ACCOUNT_SECRETS_KEY');
      expect((await keylessApp.request('/v1/accounts', { headers: auth })).status).toBe(200);
      expect(await count()).toBe(0);
    } finally {
      await keyless.close();
    }
  });
});
