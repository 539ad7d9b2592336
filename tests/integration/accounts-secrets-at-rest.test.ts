/**
 * No account secret in clear at rest: a pg_dump of the whole database holds none of the
 * credentials, webhook secrets or encryption keys used. Key rotation
 * (`npm run accounts:rotate-keys`) re-encrypts every row under the new key while the API
 * keeps changing accounts, and afterwards the old key is no longer needed. A row whose key was
 * dropped too early is refused clearly (503 account_unavailable), and works again once the key is back.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCredentials } from '../../src/accounts/accounts.js';
import { createAccountSecrets } from '../../src/accounts/secrets.js';
import { getAccount } from '../../src/accounts/store.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createProvidersFromEnv } from '../../src/providers/from-env.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { buildGoCardlessWebhook } from '../../src/sandbox/gocardless-webhook-sender.js';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, testEnv } from '../helpers/deps.js';
import { metricSum } from '../helpers/fault-harness.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
const opened: Deps[] = [];
const oldKey = randomBytes(32).toString('base64');
const newKey = randomBytes(32).toString('base64');
/** Every secret this test hands the gateway. */
const secretsUsed: string[] = [oldKey, newKey, Buffer.from(oldKey, 'base64').toString('hex'), Buffer.from(newKey, 'base64').toString('hex')];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox();
  gocardless = await startGoCardlessSandbox();
});

afterAll(async () => {
  await Promise.all(opened.map((deps) => deps.close()));
  await mollie?.close();
  await gocardless?.close();
  await sql?.end();
  await database?.drop();
});

function gateway(env: Record<string, string>) {
  const deps = buildTestDeps({ DATABASE_URL: database.url, MOLLIE_API_URL: mollie.url, GOCARDLESS_API_URL: gocardless.url, ...env });
  opened.push(deps);
  const app = createApp(deps);
  return async (method: string, url: string, body: unknown) => {
    const res = await app.request(url, { method, headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  };
}

async function dump(): Promise<string> {
  const { stdout } = await run('pg_dump', ['--data-only', '--dbname', database.url], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

function expectNoSecret(text: string): void {
  for (const secret of secretsUsed) expect(text.includes(secret), `found a secret in clear: ${secret.slice(0, 6)}…`).toBe(false);
}

describe('account secrets at rest', () => {
  it('a database dump holds no credential, webhook secret or key in clear; rotation re-encrypts every row while accounts keep changing', async () => {
    const api = gateway({ ACCOUNT_SECRETS_KEY: oldKey });
    const apiKeys: string[] = [];
    for (let i = 0; i < 6; i++) {
      const key = mollie.accounts.addApiKey();
      apiKeys.push(key.token);
      const webhookSecret = `mollie-webhook-secret-${randomBytes(8).toString('hex')}`;
      secretsUsed.push(key.token, webhookSecret);
      expect((await api('POST', '/v1/accounts', { provider: 'mollie', name: `shop-${i}`, credentials: { apiKey: key.token }, webhookSecrets: [webhookSecret] })).status).toBe(201);
    }
    const org = mollie.accounts.addOrganizationToken();
    const refresh = `refresh_${randomBytes(12).toString('hex')}`;
    secretsUsed.push(org.token, refresh);
    expect((await api('POST', '/v1/accounts', { provider: 'mollie', name: 'platform', credentials: { accessToken: org.token, refreshToken: refresh, expiresAt: '2026-12-31T00:00:00Z' } })).status).toBe(201);
    const gc = gocardless.creditors.addAccessToken();
    secretsUsed.push(gc.token);
    expect((await api('POST', '/v1/accounts', { provider: 'gocardless', name: 'gc', credentials: { accessToken: gc.token } })).status).toBe(201);

    const before = await dump();
    // The dump does hold the accounts (so the search below means something)...
    expect(before).toContain('shop-5');
    expect(before).toContain(org.organizationId);
    // ...and none of the secrets.
    expectNoSecret(before);

    // Rotation: every gateway gets the new key, the old one as previous; the command re-seals while the API keeps writing.
    const oldKeyId = await createAccountSecrets(oldKey).currentKeyId();
    const newKeyId = await createAccountSecrets(newKey).currentKeyId();
    const rotatingApi = gateway({ ACCOUNT_SECRETS_KEY: newKey, ACCOUNT_SECRETS_PREVIOUS_KEYS: oldKey });
    const lateSecret = `late-secret-${randomBytes(8).toString('hex')}`;
    secretsUsed.push(lateSecret);
    const [rotation, ...patches] = await Promise.all([
      run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/rotate-account-keys.ts')], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: database.url, ACCOUNT_SECRETS_KEY: newKey, ACCOUNT_SECRETS_PREVIOUS_KEYS: oldKey, LOG_LEVEL: 'silent' },
      }),
      ...Array.from({ length: 6 }, (_, i) => rotatingApi('PATCH', `/v1/accounts/mollie/shop-${i}`, { webhookSecrets: [lateSecret, `old-${i}`] })),
    ]);
    expect(rotation.stdout).toMatch(new RegExp(`re-encrypted \\d+ account\\(s\\) under key ${newKeyId}`));
    for (const patch of patches) expect(patch.status).toBe(200);

    const keyIds = await sql<{ credentials_key_id: string; webhook_secrets_key_id: string | null }[]>`select credentials_key_id, webhook_secrets_key_id from accounts`;
    expect(keyIds).toHaveLength(8);
    for (const row of keyIds) {
      expect(row.credentials_key_id).toBe(newKeyId);
      if (row.webhook_secrets_key_id !== null) expect(row.webhook_secrets_key_id).toBe(newKeyId);
    }
    expect(oldKeyId).not.toBe(newKeyId);

    // The old key can go: the new one alone opens everything, and the old one alone opens nothing.
    const newOnly = createAccountSecrets(newKey);
    const reader = buildTestDeps({ DATABASE_URL: database.url });
    opened.push(reader);
    const shop0 = (await getAccount(reader.db, 'mollie', 'shop-0'))!;
    expect(await openCredentials(newOnly, shop0)).toMatchObject({ kind: 'apiKey', apiKey: apiKeys[0] });
    const platform = (await getAccount(reader.db, 'mollie', 'platform'))!;
    expect(await openCredentials(newOnly, platform)).toEqual({ kind: 'oauth', accessToken: org.token, refreshToken: refresh, expiresAt: '2026-12-31T00:00:00Z' });
    await expect(openCredentials(createAccountSecrets(oldKey), platform)).rejects.toThrow(/neither ACCOUNT_SECRETS_KEY nor/);
    const webhookSecrets = await newOnly.open({ keyId: shop0.webhookSecretsKeyId!, ciphertext: shop0.webhookSecretsCiphertext! }, 'mollie/shop-0/webhook-secrets');
    expect(JSON.parse(webhookSecrets)).toEqual([lateSecret, 'old-0']);

    // A gateway with only the new key keeps working, and the dump still holds nothing in clear.
    const afterApi = gateway({ ACCOUNT_SECRETS_KEY: newKey });
    expect((await afterApi('PATCH', '/v1/accounts/gocardless/gc', { webhookSecrets: ['gc-secret-after-rotation'] })).status).toBe(200);
    secretsUsed.push('gc-secret-after-rotation');
    expectNoSecret(await dump());
  });
});

/**
 * A stored account whose secrets no longer open: its key was dropped from the keyring before
 * `rotate-keys` re-sealed the row. Its webhooks cannot be verified nor its payments fetched,
 * so they get a clear 503 (`account_unavailable`) that stores nothing (the provider sends them
 * again), counted and logged, instead of a bare 500; once the key is back, they go through.
 */
const droppedKey = randomBytes(32).toString('base64');
const keptKey = randomBytes(32).toString('base64');
const GC_SECRET = 'gc-account-webhook-secret';

/** A whole gateway (stored accounts only, no env account), for webhooks and syncs. */
function webhookApp(overrides: Record<string, string>) {
  const env = { DATABASE_URL: database.url, REDIS_URL: '', MOLLIE_API_URL: mollie.url, GOCARDLESS_API_URL: gocardless.url, ...overrides };
  const parsed = testEnv(env);
  const deps = buildTestDeps(env, { providers: (accounts) => createProvidersFromEnv(parsed, accounts) });
  opened.push(deps);
  return createApp(deps);
}

const json = (method: string, body?: unknown): RequestInit => ({
  method,
  headers: { ...auth, 'Content-Type': 'application/json' },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

async function metric(app: ReturnType<typeof createApp>, provider: string, outcome: string): Promise<number> {
  return metricSum(await (await app.request('/metrics')).text(), 'gateway_webhooks_total', { provider, outcome });
}

describe('a stored account whose secrets do not open', () => {
  it('answers its webhooks and syncs 503 account_unavailable, stores nothing, and works again once the key is back', async () => {
    const before = webhookApp({ ACCOUNT_SECRETS_KEY: droppedKey });
    const apiKey = mollie.accounts.addApiKey();
    expect((await before.request('/v1/accounts', json('POST', { provider: 'mollie', name: 'shop-a', credentials: { apiKey: apiKey.token } }))).status).toBe(201);
    const gcToken = gocardless.creditors.addAccessToken();
    const created = await before.request('/v1/accounts', json('POST', { provider: 'gocardless', name: 'gc-a', credentials: { accessToken: gcToken.token }, webhookSecrets: [GC_SECRET] }));
    expect(created.status).toBe(201);
    const payment = mollie.createPayment({ apiKey: apiKey.token, status: 'paid' });

    // The old key is dropped without re-sealing: nothing stored opens any more.
    const after = webhookApp({ ACCOUNT_SECRETS_KEY: keptKey });
    const mollieWebhook = () =>
      after.request('/webhooks/mollie/shop-a', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${payment.id}` });
    const refused = await mollieWebhook();
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(refused.status, JSON.stringify(body)).toBe(503);
    expect(body.error.code).toBe('account_unavailable');
    expect(body.error.message).toContain('neither ACCOUNT_SECRETS_KEY nor in ACCOUNT_SECRETS_PREVIOUS_KEYS');
    expect(body.error.message).toContain('nothing was stored');
    expect(await metric(after, 'mollie', 'account_unavailable')).toBe(1);

    const gcWebhook = buildGoCardlessWebhook([], GC_SECRET);
    const gcRefused = await after.request('/webhooks/gocardless/gc-a', { method: 'POST', headers: gcWebhook.headers, body: gcWebhook.body });
    expect(gcRefused.status).toBe(503);
    expect(((await gcRefused.json()) as { error: { code: string } }).error.code).toBe('account_unavailable');
    expect(await metric(after, 'gocardless', 'account_unavailable')).toBe(1);

    // The return-page sync of a payment of that account: the same answer, not a 500.
    const sync = await after.request(`/v1/payments/mollie/${payment.id}/sync?account=shop-a`, json('POST'));
    expect(sync.status).toBe(503);
    expect(((await sync.json()) as { error: { code: string } }).error.code).toBe('account_unavailable');

    const [stored] = await sql<{ receipts: number; payments: number }[]>`
      select (select count(*)::int from webhook_receipts where account in ('shop-a', 'gc-a')) as receipts,
             (select count(*)::int from payments where account in ('shop-a', 'gc-a')) as payments`;
    expect(stored).toEqual({ receipts: 0, payments: 0 });

    // The key back as a previous key: the same webhook is stored and the payment synced.
    const restored = webhookApp({ ACCOUNT_SECRETS_KEY: keptKey, ACCOUNT_SECRETS_PREVIOUS_KEYS: droppedKey });
    const accepted = await restored.request('/webhooks/mollie/shop-a', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `id=${payment.id}`,
    });
    expect(accepted.status).toBe(200);
    const [row] = await sql<{ account: string; status: string }[]>`select account, status from payments where provider_payment_id = ${payment.id}`;
    expect(row).toEqual({ account: 'shop-a', status: 'paid' });
  });
});
