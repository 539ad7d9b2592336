/**
 * What an operator can do, and that each action is in the audit trail with who, when and
 * what: console sign-in (also refused) and sign-out, re-process a failed receipt (the
 * receipt worker then settles it), sync a payment now, re-drive a dead letter, and over
 * /v1 re-drive and enable a sink. Failed receipts are listed in the console and in
 * GET /v1/receipts.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleActor, apiActor } from '../../src/audit/audit-log.js';
import { SESSION_COOKIE } from '../../src/console/session.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { syncPayment } from '../../src/payments/sync-payment.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { receiptHandlers } from '../../src/webhooks/handlers.js';
import { recordReceipts } from '../../src/webhooks/receipts.js';
import { retryDueReceipts } from '../../src/webhooks/receipt-worker.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { opsRows } from '../helpers/ops-rows.js';

const ORIGIN = 'http://localhost';
let database: TestDatabase;
let sandbox: MollieSandbox;
let sql: postgres.Sql;
let deps: Deps;
let app: ReturnType<typeof createApp>;
let cookie: string;
let session: string;

function form(fields: Record<string, string>, extra: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...extra }, body: new URLSearchParams(fields).toString() };
}

interface AuditRow {
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  request_id: string | null;
}
const auditRows = () => sql<AuditRow[]>`select actor, action, target, outcome, request_id from audit_log order by id`;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startMollieSandbox();
  const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url, retryConfig: { strategy: 'none' } });
  deps = buildTestDeps({ DATABASE_URL: database.url }, { providers: { mollie: provider } });
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await sandbox?.close();
  await sql?.end();
  await database?.drop();
});

describe('operator actions and the audit trail', () => {
  it('records a refused sign-in, then a sign-in with the new session’s fingerprint', async () => {
    const refused = await app.request('/console/sign-in', form({ token: 'not-the-admin-token-at-all' }, { 'user-agent': 'ops-test' }));
    expect(refused.status).toBe(401);
    const res = await app.request('/console/sign-in', form({ token: TEST_ADMIN_TOKEN }));
    expect(res.status).toBe(303);
    session = new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(res.headers.get('set-cookie') ?? '')![1]!;
    cookie = `${SESSION_COOKIE}=${session}`;
    const rows = await auditRows();
    expect(rows.map((row) => [row.actor, row.action, row.outcome])).toEqual([
      ['anonymous', 'console.sign_in_refused', 'refused'],
      [consoleActor(session), 'console.sign_in', 'applied'],
    ]);
    expect(consoleActor(session)).toMatch(/^console:[0-9a-f]{12}$/);
    expect(JSON.stringify(rows)).not.toContain(session);
    expect(rows.every((row) => row.request_id?.startsWith('req_'))).toBe(true);
  });

  it('re-processes a failed receipt: it is listed, re-opened once, and the worker settles it', async () => {
    const payment = sandbox.createPayment();
    sandbox.setStatus(payment.id, 'paid');
    const [receipt] = await recordReceipts(deps.db, [
      { provider: 'mollie', account: 'default', resourceType: 'payment', resourceId: payment.id, body: new TextEncoder().encode(`id=${payment.id}`), headers: {}, signature: 'absent' },
    ]);
    await sql`update webhook_receipts set state = 'failed', attempts = 9, last_error = 'mollie unavailable', next_attempt_at = null where id = ${receipt!.id}`;

    const listed = await app.request('/console/receipts?state=failed', { headers: { cookie } });
    const html = await listed.text();
    expect(html).toContain(`data-receipt="${receipt!.id}"`);
    expect(html).toContain(`data-testid="reprocess-${receipt!.id}"`);
    const api = (await (await app.request('/v1/receipts?state=failed', { headers: auth })).json()) as { data: Array<{ id: number; lastError: string; body?: unknown }> };
    expect(api.data.map((row) => row.id)).toEqual([receipt!.id]);
    expect(api.data[0]!.lastError).toBe('mollie unavailable');
    expect(api.data[0]).not.toHaveProperty('body');

    const first = await app.request(`/console/receipts/${receipt!.id}/reprocess`, form({ back: '/console/receipts?state=failed' }, { cookie }));
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe(`/console/receipts?state=failed&reprocessed=${receipt!.id}`);
    const second = await app.request(`/console/receipts/${receipt!.id}/reprocess`, form({ back: '/console/receipts' }, { cookie }));
    expect(second.headers.get('location')).toBe(`/console/receipts?not-failed=${receipt!.id}`);
    expect((await sql`select state, attempts from webhook_receipts where id = ${receipt!.id}`)[0]).toMatchObject({ state: 'pending', attempts: 0 });

    await retryDueReceipts(deps, receiptHandlers);
    expect((await sql`select state from webhook_receipts where id = ${receipt!.id}`)[0]!.state).toBe('processed');
    expect((await sql`select status from payments where provider_payment_id = ${payment.id}`)[0]!.status).toBe('paid');

    const rows = (await auditRows()).filter((row) => row.action === 'receipt.reprocess');
    expect(rows.map((row) => [row.actor, row.target, row.outcome])).toEqual([
      [consoleActor(session), `receipt:${receipt!.id}`, 'applied'],
      [consoleActor(session), `receipt:${receipt!.id}`, 'no_change'],
    ]);
  });

  it('syncs a payment now from the console', async () => {
    const payment = sandbox.createPayment();
    await syncPayment(deps, { provider: 'mollie', account: 'default', providerPaymentId: payment.id, source: 'track' });
    sandbox.setStatus(payment.id, 'paid');
    const page = await app.request(`/console/payments/mollie/${payment.id}`, { headers: { cookie } });
    expect(await page.text()).toContain('data-testid="sync-now"');
    const res = await app.request(`/console/payments/mollie/${payment.id}/sync`, form({}, { cookie }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/console/payments/mollie/${payment.id}?synced=changed`);
    expect((await sql`select status from payments where provider_payment_id = ${payment.id}`)[0]!.status).toBe('paid');
    const after = await app.request(res.headers.get('location')!, { headers: { cookie } });
    expect(await after.text()).toContain('the payment is updated');
    const again = await app.request(`/console/payments/mollie/${payment.id}/sync`, form({}, { cookie }));
    expect(again.headers.get('location')).toContain('synced=unchanged');
    const rows = (await auditRows()).filter((row) => row.action === 'payment.sync');
    expect(rows.map((row) => [row.actor, row.target, row.outcome])).toEqual([
      [consoleActor(session), `payment:mollie/${payment.id}`, 'applied'],
      [consoleActor(session), `payment:mollie/${payment.id}`, 'no_change'],
    ]);
    // Without a session nothing happens and nothing is recorded.
    const anonymous = await app.request(`/console/payments/mollie/${payment.id}/sync`, form({}));
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toMatch(/^\/console\/sign-in/);
    expect((await auditRows()).filter((row) => row.action === 'payment.sync')).toHaveLength(2);
  });

  it('re-drives dead letters from the console and over /v1, and enables a sink over /v1', async () => {
    const rows = opsRows(sql);
    await rows.sink('snk_0123456789abcdef');
    const event = await rows.event({ ageDays: 0, relayed: true });
    const consoleDead = await rows.delivery({ outboxId: event, sinkId: 'snk_0123456789abcdef', state: 'dead', ageDays: 0 });
    const event2 = await rows.event({ ageDays: 0, relayed: true });
    const apiDead = await rows.delivery({ outboxId: event2, sinkId: 'snk_0123456789abcdef', state: 'dead', ageDays: 0 });
    await sql`update event_sinks set disabled_at = now(), disabled_reason = '410' where id = 'snk_0123456789abcdef'`;

    expect((await app.request(`/console/dead-letters/${consoleDead}/redrive`, form({ back: '/console/outbox' }, { cookie }))).status).toBe(303);
    expect((await app.request(`/v1/dead-letters/${apiDead}/redrive`, { method: 'POST', headers: auth })).status).toBe(202);
    expect((await app.request(`/v1/dead-letters/${apiDead}/redrive`, { method: 'POST', headers: auth })).status).toBe(404);
    expect((await app.request('/v1/event-sinks/snk_0123456789abcdef/enable', { method: 'POST', headers: auth })).status).toBe(200);

    const api = apiActor(TEST_ADMIN_TOKEN);
    expect(api).toMatch(/^api:[0-9a-f]{12}$/);
    const recorded = (await auditRows()).filter((row) => row.action === 'delivery.redrive' || row.action === 'sink.enable');
    expect(recorded.map((row) => [row.actor, row.action, row.target, row.outcome])).toEqual([
      [consoleActor(session), 'delivery.redrive', `delivery:${consoleDead}`, 'applied'],
      [api, 'delivery.redrive', `delivery:${apiDead}`, 'applied'],
      [api, 'delivery.redrive', `delivery:${apiDead}`, 'no_change'],
      [api, 'sink.enable', 'sink:snk_0123456789abcdef', 'applied'],
    ]);
  });

  it('shows the trail in the console, newest first, filtered by action; sign-out is the last entry', async () => {
    const page = await (await app.request('/console/audit', { headers: { cookie } })).text();
    const actions = [...page.matchAll(/data-action="([^"]+)"/g)].map((match) => match[1]);
    expect(actions).toEqual((await auditRows()).map((row) => row.action).reverse());
    expect(page).toContain(consoleActor(session));
    const filtered = await (await app.request('/console/audit?action=payment.sync', { headers: { cookie } })).text();
    expect([...filtered.matchAll(/data-action="([^"]+)"/g)].map((match) => match[1])).toEqual(['payment.sync', 'payment.sync']);

    expect((await app.request('/console/sign-out', form({}, { cookie }))).status).toBe(303);
    expect((await auditRows()).at(-1)).toMatchObject({ actor: consoleActor(session), action: 'console.sign_out' });
  });
});
