/**
 * Mollie OAuth through two real gateway processes: an account onboarded through connect → the sandbox's
 * authorize step → the callback; then, for several token lifetimes of 3 s, webhooks of its
 * payments sent to both processes, each fetched with the account's OAuth token. One refresh
 * per expiry at the token endpoint, every webhook answered 200 and every payment filed
 * under the account. Then the merchant revokes the app: the next refresh breaks the account
 * with reason invalid_grant.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET, SANDBOX_OAUTH_ORGANIZATION, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcesses, type GatewayProcess } from '../helpers/gateway-process.js';

const LIFETIME_MS = 3000;
const MARGIN_MS = 1200;
const DURATION_MS = 10_000;
// The lock lives in the shared Redis: a name of this run's own.
const NAME = `shop-oauth-${randomBytes(3).toString('hex')}`;

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0, oauth: { accessTokenLifetimeMs: LIFETIME_MS } });
  const env = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    REDIS_URL: TEST_REDIS_URL,
    MOLLIE_API_URL: mollie.url,
    MOLLIE_API_KEY: '',
    GOCARDLESS_ACCESS_TOKEN: '',
    MOLLIE_OAUTH_CLIENT_ID: SANDBOX_OAUTH_CLIENT_ID,
    MOLLIE_OAUTH_CLIENT_SECRET: SANDBOX_OAUTH_CLIENT_SECRET,
    MOLLIE_OAUTH_URL: mollie.url,
    MOLLIE_OAUTH_REFRESH_MARGIN_MS: String(MARGIN_MS),
    WEBHOOK_REFETCH_WINDOW_MS: '0',
    WEBHOOK_NOT_FOUND_WINDOW_MS: '0',
    MOLLIE_SWEEP_INTERVAL_MS: '0',
    GOCARDLESS_EVENTS_INTERVAL_MS: '0',
  };
  gateways.push(...(await startGatewayProcesses(env, 2, { timeoutMs: 90_000 })));
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.stop()));
  await mollie?.close();
  await sql?.end();
  await database?.drop();
});

async function account(): Promise<{ status: string; lastError: string | null }> {
  return (await (await fetch(`${gateways[1]!.url}/v1/accounts/mollie/${NAME}`, { headers: auth })).json()) as { status: string; lastError: string | null };
}

describe('Mollie OAuth through two gateway processes', () => {
  it('onboards through connect, refreshes once per expiry under webhook load, and breaks on a revoked grant', { timeout: 120_000 }, async () => {
    const start = (await (await fetch(`${gateways[0]!.url}/v1/accounts/mollie/connect?name=${NAME}`, { headers: auth })).json()) as { authorizeUrl: string };
    // The merchant's browser: the sandbox approves and redirects to the gateway's callback.
    const created = await fetch(start.authorizeUrl);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ name: NAME, externalId: SANDBOX_OAUTH_ORGANIZATION, credentials: { kind: 'oauth' } });

    const payments = Array.from({ length: 40 }, () => mollie.createPayment({ status: 'paid' }));
    mollie.oauth.resetStats();
    const answers: Record<number, number> = {};
    const deadline = Date.now() + DURATION_MS;
    let sent = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        while (Date.now() < deadline) {
          const payment = payments[sent++ % payments.length]!;
          const res = await fetch(`${gateways[lane % 2]!.url}/webhooks/mollie/${NAME}`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: `id=${payment.id}`,
          });
          await res.arrayBuffer();
          answers[res.status] = (answers[res.status] ?? 0) + 1;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    );
    expect(Object.keys(answers)).toEqual(['200']);
    const rows = await sql<{ account: string; status: string }[]>`select account, status from payments`;
    expect(rows).toHaveLength(payments.length);
    expect(rows.every((row) => row.account === NAME && row.status === 'paid')).toBe(true);

    const stats = mollie.oauth.stats();
    expect(stats.refreshes).toBeGreaterThanOrEqual(3);
    expect(stats.invalidGrants).toBe(0);
    for (const entry of stats.refreshLog) expect(entry.remainingMs!).toBeLessThanOrEqual(MARGIN_MS);
    expect((await account()).status).toBe('active');

    // The merchant removes the app. Its access tokens stop working at once too, so a call
    // made with a live one breaks the account as `unauthorized` (the health wiring's 401);
    // here every token has expired first, so the refresh is what is refused.
    await new Promise((resolve) => setTimeout(resolve, LIFETIME_MS + 200));
    mollie.oauth.revokeOrganization(SANDBOX_OAUTH_ORGANIZATION);
    await eventually(
      async () => {
        await fetch(`${gateways[0]!.url}/webhooks/mollie/${NAME}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `id=${payments[0]!.id}` });
        const now = await account();
        return now.status === 'broken' ? now : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 300, what: 'the account to break' },
    );
    expect((await account()).lastError).toMatch(/^invalid_grant: /);
  });
});
