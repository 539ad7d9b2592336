/**
 * Stored accounts end to end, through real gateway processes and the sandboxes:
 *
 * (a) three Mollie accounts created through POST /v1/accounts, each with its own sandbox
 *     key: each account's webhooks, sent to both processes, are fetched with that
 *     account's key (the sandbox records which key asked for which payment) and the
 *     payment is filed under that account; B's payment posted to A's URL creates nothing.
 * (b) new webhook secrets PATCHed through process 1 are honoured by process 2 within about
 *     a second (LISTEN/NOTIFY); DELETE through process 1 makes process 2 answer as for an
 *     unknown account.
 * (c) the same GoCardless event id on two accounts makes two receipts (and two forwarded
 *     events).
 * (d) the Mollie sweep covers a stored account: a payment created at the sandbox with no
 *     webhook is found and filed under its account.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

// This file's servers listen in 42100-42159. The range lies among the ephemeral ports, so
// one may be briefly taken by another process's outgoing or test socket: the next is tried.
let nextPort = 42100;
async function onOwnPort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (;;) {
    const port = nextPort++;
    if (port > 42159) throw new Error('no free port left in 42100-42159');
    try {
      return await start(port);
    } catch (error) {
      if (!/EADDRINUSE|exited/.test(String(error))) throw error;
    }
  }
}

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let env: Record<string, string>;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await onOwnPort((port) => startMollieSandbox({ port }));
  gocardless = await onOwnPort((port) => startGoCardlessSandbox({ port }));
  env = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    MOLLIE_API_URL: mollie.url,
    GOCARDLESS_API_URL: gocardless.url,
    // No env accounts at all: everything below is a stored account.
    MOLLIE_API_KEY: '',
    GOCARDLESS_ACCESS_TOKEN: '',
    MOLLIE_WEBHOOK_SECRETS: '',
    GOCARDLESS_WEBHOOK_SECRETS: '',
    REDIS_URL: '',
    // (a)-(c) see only webhooks; (d) starts its own process with the sweep on.
    MOLLIE_SWEEP_INTERVAL_MS: '0',
    GOCARDLESS_EVENTS_INTERVAL_MS: '0',
  };
  gateways.push(...(await Promise.all([0, 1].map(() => onOwnPort((port) => startGatewayProcess(env, { timeoutMs: 90_000, port }))))));
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.stop()));
  await mollie?.close();
  await gocardless?.close();
  await sql?.end();
  await database?.drop();
});

async function api(gateway: GatewayProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway.url}${path}`, {
    method,
    headers: { ...auth, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function createAccount(gateway: GatewayProcess, input: Record<string, unknown>): Promise<void> {
  const created = await api(gateway, 'POST', '/v1/accounts', input);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
}

function postClassic(gateway: GatewayProcess, account: string, paymentId: string): Promise<Response> {
  return fetch(`${gateway.url}/webhooks/mollie/${account}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `id=${paymentId}`,
  });
}

/** Polls until `probe` answers a value, at most `timeoutMs`. */
async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function paymentRow(id: string): Promise<{ account: string; status: string } | undefined> {
  const rows = await sql<{ account: string; status: string }[]>`select account, status from payments where provider_payment_id = ${id}`;
  return rows[0];
}

describe('stored Mollie accounts, two processes', () => {
  const shops = ['shop-a', 'shop-b', 'shop-c'] as const;
  const keys = new Map<string, string>();

  beforeAll(async () => {
    for (const [index, shop] of shops.entries()) {
      const key = mollie.accounts.addApiKey().token;
      keys.set(shop, key);
      // Created through either process: the other learns of it from the database.
      await createAccount(gateways[index % 2]!, { provider: 'mollie', name: shop, credentials: { apiKey: key } });
    }
  });

  it("fetches each account's payments with that account's own key and files them under that account", async () => {
    const payments = shops.flatMap((shop) => [0, 1].map(() => ({ shop, id: mollie.createPayment({ apiKey: keys.get(shop)!, status: 'paid' }).id })));
    // Every webhook to both processes at once.
    const answers = await Promise.all(payments.flatMap(({ shop, id }) => gateways.map((gateway) => postClassic(gateway, shop, id))));
    expect(answers.map((res) => res.status)).toEqual(answers.map(() => 200));

    for (const { shop, id } of payments) {
      const row = await until(() => paymentRow(id), `payment ${id} of ${shop}`);
      expect(row).toEqual({ account: shop, status: 'paid' });
      const fetchers = mollie.fetchedBy(id);
      expect(fetchers.length).toBeGreaterThan(0);
      // Only the owner's key ever asked for it.
      expect(new Set(fetchers)).toEqual(new Set([keys.get(shop)]));
    }
  });

  it("B's payment posted to A's URL creates nothing: fetched with A's key, Mollie's 404", async () => {
    const ofB = mollie.createPayment({ apiKey: keys.get('shop-b')!, status: 'paid' });
    for (const gateway of gateways) expect((await postClassic(gateway, 'shop-a', ofB.id)).status).toBe(200);
    await until(async () => (mollie.fetchedBy(ofB.id).length >= 2 ? true : undefined), `both processes to fetch ${ofB.id}`);
    expect(new Set(mollie.fetchedBy(ofB.id))).toEqual(new Set([keys.get('shop-a')]));
    // The receipts are settled (the payment is unknown to A), and no payment row exists.
    await until(async () => {
      const rows = await sql<{ state: string }[]>`select state from webhook_receipts where resource_id = ${ofB.id}`;
      return rows.length === 2 && rows.every((row) => row.state !== 'pending') ? rows : undefined;
    }, `the receipts of ${ofB.id} to settle`);
    expect(await paymentRow(ofB.id)).toBeUndefined();
  });

  it('an unknown account is refused by both processes, and nothing is stored', async () => {
    const payment = mollie.createPayment({ apiKey: keys.get('shop-a')!, status: 'paid' });
    for (const gateway of gateways) {
      const res = await postClassic(gateway, 'shop-nobody', payment.id);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_account');
    }
    const [receipts] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where resource_id = ${payment.id}`;
    expect(receipts!.n).toBe(0);
  });

  it('an organization token account fetches its profile\'s test payments with testmode, as Mollie requires', async () => {
    const profileKey = mollie.accounts.addApiKey();
    const token = mollie.accounts.addOrganizationToken({ organizationId: profileKey.organizationId }).token;
    await createAccount(gateways[1]!, { provider: 'mollie', name: 'shop-org', credentials: { organizationToken: token, profileId: profileKey.profileId } });
    const payment = mollie.createPayment({ apiKey: profileKey.token, status: 'paid', mode: 'test' });
    expect((await postClassic(gateways[0]!, 'shop-org', payment.id)).status).toBe(200);
    expect(await until(() => paymentRow(payment.id), `payment ${payment.id}`)).toEqual({ account: 'shop-org', status: 'paid' });
    expect(new Set(mollie.fetchedBy(payment.id))).toEqual(new Set([token]));
    // Asked without testmode first (Mollie's 404 for a test payment), then with it.
    const asked = mollie.state.requests.filter((request) => request.path === `/v2/payments/${payment.id}`).map((request) => request.status);
    expect(asked).toEqual([404, 200]);
  });

  it('a refused key breaks the account at its first fetch, its webhooks still recorded; a working call mends it', async () => {
    const [one, two] = gateways as [GatewayProcess, GatewayProcess];
    const key = mollie.accounts.addApiKey().token;
    await createAccount(one, { provider: 'mollie', name: 'shop-r', credentials: { apiKey: key } });
    const payment = mollie.createPayment({ apiKey: key, status: 'paid' });
    mollie.accounts.revoke(key);

    expect((await postClassic(two, 'shop-r', payment.id)).status).toBe(200);
    const broken = await until(async () => {
      const account = await api(one, 'GET', '/v1/accounts/mollie/shop-r');
      return account.body.status === 'broken' ? account.body : undefined;
    }, 'shop-r to be broken');
    expect(String(broken.lastError)).toMatch(/^unauthorized: Mollie rejected the API key \(401\)/);
    const [receipt] = await sql<{ state: string }[]>`select state from webhook_receipts where account = 'shop-r' and resource_id = ${payment.id}`;
    expect(receipt!.state).toBe('pending');
    expect(await paymentRow(payment.id)).toBeUndefined();

    // The merchant's key works again: the next call mends the account.
    mollie.accounts.get(key)!.revoked = false;
    expect((await postClassic(two, 'shop-r', payment.id)).status).toBe(200);
    await until(async () => ((await api(one, 'GET', '/v1/accounts/mollie/shop-r')).body.status === 'active' ? true : undefined), 'shop-r to recover');
    expect(await until(() => paymentRow(payment.id), `payment ${payment.id}`)).toEqual({ account: 'shop-r', status: 'paid' });
  });

  it('webhook secrets PATCHed through process 1 are honoured by process 2 within about a second; DELETE makes it unknown there', async () => {
    const [one, two] = gateways as [GatewayProcess, GatewayProcess];
    const secret = `whsec_${randomBytes(12).toString('hex')}`;
    const payment = mollie.createPayment({ apiKey: keys.get('shop-c')!, status: 'paid' });
    const send = async () => {
      const sent = await mollie.notifyEvent(payment.id, { url: `${two.url}/webhooks/mollie/shop-c`, secret, schedule: [0] });
      return sent.attempts.at(-1)!.status;
    };
    // Before: process 2 has no secret for shop-c (nor in the environment), so the signature cannot be checked.
    expect(await send()).toBe(401);

    const patched = await api(one, 'PATCH', '/v1/accounts/mollie/shop-c', { webhookSecrets: [secret] });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const changedAt = Date.now();
    await until(async () => ((await send()) === 200 ? true : undefined), 'process 2 to accept the new secret', 5_000);
    // The contract says a second; the bound leaves room for a loaded CI machine.
    expect(Date.now() - changedAt).toBeLessThan(3_000);
    await until(() => paymentRow(payment.id), `payment ${payment.id}`);

    const disabled = await api(one, 'DELETE', '/v1/accounts/mollie/shop-c');
    expect(disabled.status, JSON.stringify(disabled.body)).toBe(200);
    const other = mollie.createPayment({ apiKey: keys.get('shop-c')!, status: 'paid' });
    const refused = await until(async () => {
      const res = await postClassic(two, 'shop-c', other.id);
      return res.status === 404 ? ((await res.json()) as { error: { code: string } }) : undefined;
    }, 'process 2 to answer shop-c as unknown', 5_000);
    expect(refused.error.code).toBe('unknown_account');
  });
});

describe('stored GoCardless accounts', () => {
  it('the same event id on two accounts makes two receipts and two forwarded events', async () => {
    const secrets = { 'gc-one': `gc_${randomBytes(8).toString('hex')}`, 'gc-two': `gc_${randomBytes(8).toString('hex')}` };
    for (const [index, name] of (['gc-one', 'gc-two'] as const).entries()) {
      const { token } = gocardless.creditors.addAccessToken();
      await createAccount(gateways[index]!, { provider: 'gocardless', name, credentials: { accessToken: token }, webhookSecrets: [secrets[name]] });
    }
    const eventId = `EV0SHARED${randomBytes(4).toString('hex').toUpperCase()}`;
    const body = JSON.stringify({
      events: [
        {
          id: eventId,
          created_at: new Date().toISOString(),
          resource_type: 'mandates',
          action: 'created',
          links: { mandate: 'MD000SHARED1' },
          details: { origin: 'api', cause: 'mandate_created', description: 'Mandate created via the API.' },
          metadata: {},
        },
      ],
    });
    for (const [index, name] of (['gc-one', 'gc-two'] as const).entries()) {
      const res = await fetch(`${gateways[index]!.url}/webhooks/gocardless/${name}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Webhook-Signature': signGoCardlessBody(body, secrets[name]) },
        body,
      });
      expect(res.status, await res.text()).toBe(204);
    }
    const receipts = await sql<{ account: string }[]>`select account from webhook_receipts where provider = 'gocardless' and event_id = ${eventId} order by account`;
    expect(receipts.map((row) => row.account)).toEqual(['gc-one', 'gc-two']);
    const forwarded = await until(async () => {
      const rows = await sql<{ account: string }[]>`
        select payload->'data'->>'account' as account from outbox where type = 'gocardless.mandates.created' and payload->'data'->>'eventId' = ${eventId} order by 1`;
      return rows.length === 2 ? rows : undefined;
    }, 'both forwarded events');
    expect(forwarded.map((row) => row.account)).toEqual(['gc-one', 'gc-two']);
  });
});

describe('the Mollie sweep', () => {
  it('covers a stored account: a payment with no webhook is found and filed under its account', async () => {
    const key = mollie.accounts.addApiKey().token;
    await createAccount(gateways[0]!, { provider: 'mollie', name: 'shop-swept', credentials: { apiKey: key } });
    const payment = mollie.createPayment({ apiKey: key, status: 'paid' });
    const sweeper = await onOwnPort((port) => startGatewayProcess({ ...env, MOLLIE_SWEEP_INTERVAL_MS: '2000' }, { timeoutMs: 90_000, port }));
    try {
      const row = await until(() => paymentRow(payment.id), `the sweep to find ${payment.id}`, 30_000);
      expect(row).toEqual({ account: 'shop-swept', status: 'paid' });
      expect(new Set(mollie.fetchedBy(payment.id))).toEqual(new Set([key]));
      const cursors = await sql<{ account: string }[]>`select account from provider_cursors where provider = 'mollie' and name = 'sweep' order by account`;
      // Each active stored account has its own cursor (shop-c was disabled above).
      expect(cursors.map((cursor) => cursor.account)).toEqual(expect.arrayContaining(['shop-a', 'shop-b', 'shop-swept']));
      expect(cursors.map((cursor) => cursor.account)).not.toContain('shop-c');
    } finally {
      await sweeper.stop();
    }
  }, 60_000);
});
