/**
 * The bounded steps a Workers cron run takes (src/jobs.ts) cover stored accounts: the
 * Mollie sweep step finds a stored account's payment that no webhook announced, and the
 * GoCardless events step recovers a stored account's events into receipts under that
 * account, each with its own cursor beside the env's `default`.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/accounts.js';
import { createAccountSecrets } from '../../src/accounts/secrets.js';
import type { Deps } from '../../src/deps.js';
import { createProvidersFromEnv } from '../../src/providers/from-env.js';
import { recoverGoCardlessEventsStep } from '../../src/reconciliation/gocardless-recovery.js';
import { runDueMollieSweeps } from '../../src/reconciliation/mollie-sweep.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { startMollieSandbox, SANDBOX_DEFAULT_API_KEY, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, testEnv } from '../helpers/deps.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let deps: Deps;
const key = randomBytes(32).toString('base64');

// This file's sandboxes listen in 42160-42179 (the next port when one is briefly taken).
let nextPort = 42160;
async function onOwnPort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (;;) {
    const port = nextPort++;
    if (port > 42179) throw new Error('no free port left in 42160-42179');
    try {
      return await start(port);
    } catch (error) {
      if (!String(error).includes('EADDRINUSE')) throw error;
    }
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await onOwnPort((port) => startMollieSandbox({ port }));
  gocardless = await onOwnPort((port) => startGoCardlessSandbox({ port }));
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: '',
    ACCOUNT_SECRETS_KEY: key,
    MOLLIE_API_KEY: SANDBOX_DEFAULT_API_KEY,
    MOLLIE_API_URL: mollie.url,
    GOCARDLESS_ACCESS_TOKEN: gocardless.accessToken,
    GOCARDLESS_API_URL: gocardless.url,
    MOLLIE_SWEEP_INTERVAL_MS: '60000',
    GOCARDLESS_EVENTS_INTERVAL_MS: '60000',
  };
  const parsed = testEnv(env);
  deps = buildTestDeps(env, { providers: (accounts) => createProvidersFromEnv(parsed, accounts) });
}, 60_000);

afterAll(async () => {
  await deps?.close();
  await mollie?.close();
  await gocardless?.close();
  await sql?.end();
  await database?.drop();
});

const accountDeps = () => ({ db: deps.db, env: deps.env, secrets: createAccountSecrets(key) });

describe('the cron steps over stored accounts', () => {
  it("the Mollie sweep step finds a stored account's unannounced payment, and keeps a cursor per account", async () => {
    const apiKey = mollie.accounts.addApiKey().token;
    await createAccount(accountDeps(), { provider: 'mollie', name: 'swept-shop', credentials: { apiKey } });
    const payment = mollie.createPayment({ apiKey, status: 'paid' });
    const summaries = await runDueMollieSweeps(deps);
    expect(summaries.map((summary) => summary.account)).toEqual(['default', 'swept-shop']);
    const [row] = await sql<{ account: string; status: string }[]>`select account, status from payments where provider_payment_id = ${payment.id}`;
    expect(row).toEqual({ account: 'swept-shop', status: 'paid' });
    expect(new Set(mollie.fetchedBy(payment.id))).toEqual(new Set([apiKey]));
    // Both ran this interval: the next step has nothing due.
    expect(await runDueMollieSweeps(deps)).toEqual([]);
  });

  it("the GoCardless events step recovers a stored account's events under that account", async () => {
    const { token } = gocardless.creditors.addAccessToken();
    await createAccount(accountDeps(), { provider: 'gocardless', name: 'gc-shop', credentials: { accessToken: token } });
    const event = gocardless.createEvent({ resourceType: 'mandates', action: 'created', details: { origin: 'api', cause: 'mandate_created', description: 'Mandate created.' } });
    const results = await recoverGoCardlessEventsStep(deps);
    expect(results.map((result) => result.outcome)).toEqual(['completed', 'completed']);
    const receipts = await sql<{ account: string }[]>`select account from webhook_receipts where provider = 'gocardless' and event_id = ${event.id} order by account`;
    // The sandbox serves every token the same events: each account keeps its own receipt.
    expect(receipts.map((receipt) => receipt.account)).toEqual(['default', 'gc-shop']);
    const cursors = await sql<{ account: string }[]>`select account from provider_cursors where provider = 'gocardless' and name = 'events' order by account`;
    expect(cursors.map((cursor) => cursor.account)).toEqual(['default', 'gc-shop']);
  });
});
