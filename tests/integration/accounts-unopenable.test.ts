/**
 * A stored account whose secrets no longer open: its key was dropped from the keyring
 * before `rotate-keys` re-sealed the row. Its webhooks cannot be verified nor its payments
 * fetched, so they are refused with a clear 503 (`account_unavailable`) that stores nothing
 * (the provider sends them again), counted and logged, instead of a bare 500. Once the key
 * is back (as a previous key), the same requests go through.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createProvidersFromEnv } from '../../src/providers/from-env.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { buildGoCardlessWebhook } from '../../src/sandbox/gocardless-webhook-sender.js';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, testEnv } from '../helpers/deps.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
const opened: Deps[] = [];
const oldKey = randomBytes(32).toString('base64');
const newKey = randomBytes(32).toString('base64');
const GC_SECRET = 'gc-account-webhook-secret';

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

function gateway(overrides: Record<string, string>) {
  // Stored accounts only: no env account of either provider.
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
  const text = await (await app.request('/metrics')).text();
  const line = text.split('\n').find((row) => row.startsWith('gateway_webhooks_total{') && row.includes(`provider="${provider}"`) && row.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('a stored account whose secrets do not open', () => {
  it('answers its webhooks and syncs 503 account_unavailable, stores nothing, and works again once the key is back', async () => {
    const before = gateway({ ACCOUNT_SECRETS_KEY: oldKey });
    const apiKey = mollie.accounts.addApiKey();
    expect((await before.request('/v1/accounts', json('POST', { provider: 'mollie', name: 'shop-a', credentials: { apiKey: apiKey.token } }))).status).toBe(201);
    const gcToken = gocardless.creditors.addAccessToken();
    const created = await before.request('/v1/accounts', json('POST', { provider: 'gocardless', name: 'gc-a', credentials: { accessToken: gcToken.token }, webhookSecrets: [GC_SECRET] }));
    expect(created.status).toBe(201);
    const payment = mollie.createPayment({ apiKey: apiKey.token, status: 'paid' });

    // The old key is dropped without re-sealing: nothing stored opens any more.
    const after = gateway({ ACCOUNT_SECRETS_KEY: newKey });
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
      select (select count(*)::int from webhook_receipts) as receipts, (select count(*)::int from payments) as payments`;
    expect(stored).toEqual({ receipts: 0, payments: 0 });

    // The key back as a previous key: the same webhook is stored and the payment synced.
    const restored = gateway({ ACCOUNT_SECRETS_KEY: newKey, ACCOUNT_SECRETS_PREVIOUS_KEYS: oldKey });
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
