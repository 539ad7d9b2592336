/**
 * The inbound log: every request to a webhook route is recorded with its outcome, refused
 * ones too (without their body), off the acknowledgement's path; a flood from one source
 * is logged at a bounded rate (the rest counted, and said on its next row) while other
 * sources are still logged. Listed in GET /v1/webhook-requests and the console.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/console/session.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { INBOUND_LOG_RATE } from '../../src/webhooks/inbound-log.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';

let database: TestDatabase;
let sandbox: MollieSandbox;
let sql: postgres.Sql;
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startMollieSandbox();
  const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url, retryConfig: { strategy: 'none' } });
  deps = buildTestDeps({ DATABASE_URL: database.url, MOLLIE_WEBHOOK_SECRETS: 'inbound-log-secret' }, { providers: { mollie: provider } });
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await sandbox?.close();
  await sql?.end();
  await database?.drop();
});

const forged = (source: string) =>
  app.request('/webhooks/mollie', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mollie-signature': 'ab'.repeat(32), 'x-forwarded-for': `203.0.113.9, ${source}`, 'user-agent': 'flood/1' },
    body: JSON.stringify({ resource: 'event', id: 'event_forged', type: 'payment-link.paid', entityId: 'pl_x', createdAt: new Date().toISOString(), _embedded: {} }),
  });

interface Row {
  outcome: string;
  status: number;
  source: string;
  suppressed: number;
  body_bytes: number | null;
}
const rowsFrom = (source: string) => sql<Row[]>`select outcome, status, source, suppressed::int, body_bytes from webhook_requests where source = ${source} order by id`;

describe('inbound log', () => {
  it('records an accepted webhook and a refused one, without any body', async () => {
    const payment = sandbox.createPayment();
    const accepted = await app.request('/webhooks/mollie', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '198.51.100.1' },
      body: `id=${payment.id}`,
    });
    expect(accepted.status).toBe(200);
    const refused = await forged('198.51.100.2');
    expect(refused.status).toBe(401);
    await deps.background.drain();

    expect(await rowsFrom('198.51.100.1')).toEqual([{ outcome: expect.stringMatching(/^(processed|accepted|changed|unchanged|received)/), status: 200, source: '198.51.100.1', suppressed: 0, body_bytes: null }]);
    expect(await rowsFrom('198.51.100.2')).toEqual([expect.objectContaining({ outcome: 'bad_signature', status: 401, suppressed: 0 })]);
    const columns = (await sql`select column_name from information_schema.columns where table_name = 'webhook_requests'`).map((row) => row.column_name);
    expect(columns).not.toContain('body');

    const api = (await (await app.request('/v1/webhook-requests?outcome=bad_signature', { headers: auth })).json()) as { data: Array<{ source: string; status: number }> };
    expect(api.data).toEqual([expect.objectContaining({ source: '198.51.100.2', status: 401 })]);
  });

  it('logs a flood from one source at a bounded rate, and other sources still', async () => {
    const flood = '192.0.2.66';
    const sent = INBOUND_LOG_RATE.burst + 15;
    for (let i = 0; i < sent; i++) expect((await forged(flood)).status).toBe(401);
    expect((await forged('192.0.2.7')).status).toBe(401);
    await deps.background.drain();
    const logged = (await rowsFrom(flood)).length;
    // The burst, plus what the bucket refilled while the requests ran.
    expect(logged).toBeGreaterThanOrEqual(INBOUND_LOG_RATE.burst);
    expect(logged).toBeLessThan(sent);
    expect(await rowsFrom('192.0.2.7')).toHaveLength(1);
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toContain(`gateway_inbound_log_suppressed_total ${sent - logged}`);

    // Once the source's rate allows again, its next row says how many went unlogged.
    const row = await eventually(
      async () => {
        await forged(flood);
        await deps.background.drain();
        const rows = await rowsFrom(flood);
        return rows.length > logged ? rows.at(-1) : undefined;
      },
      { what: 'the flood source logged again', intervalMs: 100 },
    );
    expect(row.suppressed).toBeGreaterThan(0);
    // Nothing unaccounted for: every request from the source is a row or counted on a later row.
    const rows = await rowsFrom(flood);
    const total = Number(/gateway_inbound_log_suppressed_total (\d+)/.exec(await (await app.request('/metrics')).text())![1]);
    expect(rows.reduce((sum, each) => sum + each.suppressed, 0)).toBe(total);
    expect(total).toBeGreaterThanOrEqual(sent - logged);
  });

  it('lists the log in the console', async () => {
    const signIn = await app.request('/console/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: new URLSearchParams({ token: TEST_ADMIN_TOKEN }).toString(),
    });
    const cookie = `${SESSION_COOKIE}=${new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(signIn.headers.get('set-cookie') ?? '')![1]}`;
    const page = await (await app.request('/console/requests?outcome=bad_signature', { headers: { cookie } })).text();
    expect(page).toContain('data-testid="requests-table"');
    expect(page).toContain('192.0.2.7');
    expect([...page.matchAll(/data-outcome="([^"]+)"/g)].every((match) => match[1] === 'bad_signature')).toBe(true);
  });
});
