/**
 * Every attempt at a delivery is kept (time, status, duration, the first bytes of the
 * answer), through real HTTP sinks and the real relay; deliveries are listed and filtered
 * by sink, state, type and date over /v1 and in the console; dead letters are re-driven
 * by filter (audited) and their attempt history survives it; a sink is disabled, enabled
 * and sent a test event that reaches it alone.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiActor, consoleActor } from '../../src/audit/audit-log.js';
import { SESSION_COOKIE } from '../../src/console/session.js';
import type { Deps } from '../../src/deps.js';
import { configuredSinks } from '../../src/events/sinks.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { drainRelay, newPaymentId, SINK_SECRET, writeGatewayEvent, writePaymentHistory } from '../helpers/outbound-events.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const ORIGIN = 'http://localhost';
let database: TestDatabase;
let sql: postgres.Sql;
let deps: Deps;
let app: ReturnType<typeof createApp>;
let ledger: WebhookReceiver;
let billing: WebhookReceiver;
let ledgerSink: string;
let billingSink: string;
let cookie: string;

interface Attempt {
  attempt: number;
  outcome: string;
  status: number | null;
  error: string | null;
  answer: string | null;
  durationMs: number;
  startedAt: string;
  probe: boolean;
  superseded: boolean;
}
interface Delivery {
  id: number;
  eventId: string;
  type: string;
  state: string;
  attempts: number;
  sink: { id: string };
  attemptHistory: Attempt[];
}

const api = async <T,>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
  const res = await app.request(path, { ...init, headers: { ...auth, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) } });
  return { status: res.status, body: (await res.json()) as T };
};
const list = async (query: string) => (await api<{ data: Delivery[]; nextCursor: string | null }>(`/v1/deliveries?${query}`)).body;
const one = async (id: number) => (await api<Delivery>(`/v1/deliveries/${id}`)).body;
const form = (fields: Record<string, string>, extra: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, cookie, ...extra },
  body: new URLSearchParams(fields).toString(),
});
const auditRows = () => sql<{ actor: string; action: string; target: string | null; outcome: string; detail: Record<string, unknown> | null }[]>`
  select actor, action, target, outcome, detail from audit_log order by id`;
const day = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  // The ledger answers 500 to an event's first attempt, then takes it; billing refuses everything.
  const seen = new Set<string>();
  ledger = await startReceiver((request) => {
    if (seen.has(request.id)) return { status: 200, body: `ok ${request.id}` };
    seen.add(request.id);
    return { status: 500, body: `busy, try later ${'x'.repeat(600)}` };
  });
  billing = await startReceiver(() => ({ status: 503, body: 'billing is down' }));
  deps = buildTestDeps({ DATABASE_URL: database.url, EVENT_SINK_URLS: `${ledger.url},${billing.url}`, EVENT_SINK_SECRET: SINK_SECRET });
  app = createApp(deps);
  [ledgerSink, billingSink] = configuredSinks(deps).map((sink) => sink.id) as [string, string];
  const res = await app.request('/console/sign-in', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN }, body: `token=${TEST_ADMIN_TOKEN}` });
  cookie = `${SESSION_COOKIE}=${new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(res.headers.get('set-cookie') ?? '')![1]}`;
});

afterAll(async () => {
  await deps?.close();
  await ledger?.close();
  await billing?.close();
  await sql?.end();
  await database?.drop();
});

describe('delivery attempts, filters, bulk re-drive and sinks', () => {
  it('keeps every attempt with its status, duration and the first 512 bytes of the answer', async () => {
    await writeGatewayEvent(deps.db, 'attempts');
    await writePaymentHistory(deps.db, newPaymentId(), 0);
    // One immediate retry, then a dead letter.
    await drainRelay(deps, { retryDelaysMs: [0] });

    const ledgerRows = await list(`sink=${ledgerSink}&limit=10`);
    expect(ledgerRows.data).toHaveLength(4);
    expect(ledgerRows.data.every((d) => d.state === 'delivered')).toBe(true);
    const delivery = await one(ledgerRows.data.find((d) => d.type === 'gateway.poller.degraded')!.id);
    expect(delivery.attemptHistory.map((a) => [a.attempt, a.outcome, a.status])).toEqual([
      [2, 'delivered', 200],
      [1, 'retry', 500],
    ]);
    const [delivered, failed] = delivery.attemptHistory as [Attempt, Attempt];
    expect(delivered.answer).toBe(`ok ${delivery.eventId}`);
    expect(delivered.error).toBeNull();
    expect(failed.answer).toMatch(/^busy, try later x+$/);
    expect(Buffer.byteLength(failed.answer!)).toBe(512);
    expect(failed.error).toMatch(/^HTTP 500: busy, try later x+$/);
    expect(failed.error!.length).toBeLessThan(320);
    for (const attempt of delivery.attemptHistory) {
      expect(attempt.durationMs).toBeGreaterThanOrEqual(0);
      expect(attempt.durationMs).toBeLessThan(10_000);
      expect(Math.abs(Date.parse(attempt.startedAt) - Date.now())).toBeLessThan(60_000);
      expect(attempt).toMatchObject({ probe: false, superseded: false });
    }
    // Requests on the wire and attempt rows agree, one for one.
    const [{ n } = { n: -1 }] = await sql<{ n: number }[]>`select count(*)::int as n from event_delivery_attempts`;
    expect(n).toBe(ledger.requests.length + billing.requests.length);
  });

  it('lists and filters deliveries by sink, state, event type and date, paged', async () => {
    const dead = await list(`sink=${billingSink}&state=dead`);
    expect(dead.data.map((d) => d.type).sort()).toEqual(['gateway.poller.degraded', 'payment.open', 'payment.paid', 'payment.pending']);
    expect((await list(`sink=${billingSink}&state=dead&type=payment.`)).data).toHaveLength(3);
    expect((await list(`state=dead&type=payment.paid`)).data).toHaveLength(1);
    expect((await list(`state=delivered&sink=${billingSink}`)).data).toHaveLength(0);
    expect((await list(`from=${day(1)}`)).data).toHaveLength(0);
    expect((await list(`to=${day(0)}`)).data).toHaveLength(0);
    expect((await list(`from=${day(0)}&to=${day(1)}`)).data).toHaveLength(8);
    // Pages of 3, newest first, no overlap.
    const first = await list('limit=3');
    const second = await list(`limit=3&cursor=${first.nextCursor}`);
    expect(first.data.map((d) => d.id)).toEqual([...first.data.map((d) => d.id)].sort((a, b) => b - a));
    expect(Math.min(...first.data.map((d) => d.id))).toBeGreaterThan(Math.max(...second.data.map((d) => d.id)));
    expect((await app.request('/v1/deliveries?state=lost', { headers: auth })).status).toBe(400);

    const page = await (await app.request(`/console/deliveries?sink=${billingSink}&state=dead&type=payment.`, { headers: { cookie } })).text();
    expect([...page.matchAll(/data-delivery-id="(\d+)"/g)]).toHaveLength(3);
    expect(page).toMatch(/data-testid="deliveries-count">3 deliveries match · 3 of them dead letters/);
    expect(page).toContain('data-testid="bulk-redrive"');
  });

  it('re-drives dead letters by filter over /v1 and keeps their attempt history', async () => {
    const before = await list(`sink=${billingSink}&state=dead&type=payment.`);
    const target = before.data[0]!.id;
    expect((await one(target)).attemptHistory.map((a) => a.outcome)).toEqual(['dead', 'retry']);

    const res = await api<{ redriven: number; more: boolean }>('/v1/deliveries/redrive', { method: 'POST', body: JSON.stringify({ sink: billingSink, type: 'payment.' }) });
    expect(res).toEqual({ status: 202, body: { redriven: 3, more: false } });
    expect((await list(`sink=${billingSink}&state=dead`)).data.map((d) => d.type)).toEqual(['gateway.poller.degraded']);
    expect((await api('/v1/deliveries/redrive', { method: 'POST', body: JSON.stringify({ sink: 'nope' }) })).status).toBe(400);

    billing.behave(() => ({ status: 202, body: 'accepted' }));
    await drainRelay(deps, { retryDelaysMs: [0] });
    const after = await one(target);
    expect(after.state).toBe('delivered');
    expect(after.attempts).toBe(1);
    expect(after.attemptHistory.map((a) => [a.attempt, a.outcome, a.status])).toEqual([
      [1, 'delivered', 202],
      [2, 'dead', 503],
      [1, 'retry', 503],
    ]);

    const entries = (await auditRows()).filter((row) => row.action === 'delivery.bulk_redrive');
    expect(entries).toEqual([
      { actor: apiActor(TEST_ADMIN_TOKEN), action: 'delivery.bulk_redrive', target: 'deliveries', outcome: 'applied', detail: { filter: { sink: billingSink, type: 'payment.' }, redriven: 3, more: false } },
    ]);
  });

  it('re-drives by filter from the console (CSRF-checked, audited) and shows the history', async () => {
    const [dead] = (await list(`sink=${billingSink}&state=dead`)).data;
    expect((await app.request('/console/deliveries/redrive', { ...form({ sink: billingSink }), headers: { 'content-type': 'application/x-www-form-urlencoded', cookie } })).status).toBe(403);
    const res = await app.request('/console/deliveries/redrive', form({ sink: billingSink, from: day(0) }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/console/deliveries?sink=${billingSink}&from=${day(0)}&bulk-redriven=1`);
    expect(await (await app.request(res.headers.get('location')!, { headers: { cookie } })).text()).toContain('1 dead letter is queued again');
    await drainRelay(deps, { retryDelaysMs: [0] });

    const page = await (await app.request(`/console/deliveries/${dead!.id}`, { headers: { cookie } })).text();
    expect([...page.matchAll(/data-outcome="([a-z_]+)"/g)].map((match) => match[1])).toEqual(['delivered', 'dead', 'retry']);
    expect(page).toContain('billing is down');
    const entry = (await auditRows()).filter((row) => row.action === 'delivery.bulk_redrive').at(-1)!;
    expect(entry).toMatchObject({ actor: expect.stringMatching(/^console:/), outcome: 'applied', detail: { redriven: 1, more: false } });
    expect((await app.request('/console/deliveries/999999', { headers: { cookie } })).status).toBe(404);
  });

  it('disables, enables and tests a sink; the test event reaches that sink alone', async () => {
    const disabled = await api<{ disabledAt: string | null; disabledReason: string }>(`/v1/event-sinks/${billingSink}/disable`, { method: 'POST' });
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabledReason).toBe('disabled by an operator');
    expect((await api(`/v1/event-sinks/snk_0123456789abcdef/disable`, { method: 'POST' })).status).toBe(404);

    // While billing is disabled its events wait; the ledger's test event goes to the ledger only.
    await writeGatewayEvent(deps.db, 'while-disabled');
    const billingBefore = billing.requests.length;
    const sent = await api<{ eventId: string; deliveryId: number }>(`/v1/event-sinks/${ledgerSink}/test`, { method: 'POST' });
    expect(sent.status).toBe(202);
    await drainRelay(deps, { retryDelaysMs: [0] });
    expect(billing.requests.length).toBe(billingBefore);
    // The ledger refuses every event's first attempt: the test event too, then takes it.
    const test = ledger.requests.filter((request) => request.json?.type === 'gateway.test');
    expect(test.map((request) => request.id)).toEqual([sent.body.eventId, sent.body.eventId]);
    expect(test[0]!.json).toMatchObject({ id: sent.body.eventId, data: { sink: { id: ledgerSink }, requestedBy: apiActor(TEST_ADMIN_TOKEN) } });
    expect((await one(sent.body.deliveryId)).attemptHistory.map((a) => a.outcome)).toEqual(['delivered', 'retry']);
    // The pull API leaves it out.
    const feed = (await api<{ data: Array<{ type: string }> }>('/v1/events?limit=100')).body;
    expect(feed.data.map((event) => event.type)).not.toContain('gateway.test');
    expect((await list(`sink=${billingSink}&state=pending`)).data).toHaveLength(1);

    // The console: the sink page, enable (the waiting event goes out), then a test from the form.
    const sinkPage = await (await app.request(`/console/sinks/${billingSink}`, { headers: { cookie } })).text();
    expect(sinkPage).toContain('data-testid="sink-enable"');
    expect(sinkPage).toMatch(/data-testid="sink-success-rate">\d+(\.\d)? %/);
    const enabled = await app.request(`/console/sinks/${billingSink}/enable`, form({}));
    expect(enabled.headers.get('location')).toBe(`/console/sinks/${billingSink}?changed=enabled`);
    await drainRelay(deps, { retryDelaysMs: [0] });
    expect((await list(`sink=${billingSink}&state=pending`)).data).toHaveLength(0);
    const tested = await app.request(`/console/sinks/${billingSink}/test`, form({}));
    expect(tested.status).toBe(303);
    expect(tested.headers.get('location')).toMatch(/^\/console\/deliveries\/\d+\?test$/);
    await drainRelay(deps, { retryDelaysMs: [0] });
    expect(billing.requests.filter((request) => request.json?.type === 'gateway.test')).toHaveLength(1);
    expect((await app.request(`/console/sinks/${billingSink}/disable`, form({}))).status).toBe(303);

    const stats = (await api<{ last24h: { attempts: number; delivered: number; successRate: number } }>(`/v1/event-sinks/${ledgerSink}`)).body.last24h;
    const [row] = await sql<{ attempts: number; delivered: number }[]>`
      select count(*)::int as attempts, (count(*) filter (where outcome = 'delivered'))::int as delivered from event_delivery_attempts where sink_id = ${ledgerSink}`;
    expect(stats).toMatchObject({ attempts: row!.attempts, delivered: row!.delivered, successRate: row!.delivered / row!.attempts });

    const sinkActions = (await auditRows()).filter((entry) => entry.action.startsWith('sink.')).map((entry) => [entry.actor.split(':')[0], entry.action, entry.target, entry.outcome]);
    expect(sinkActions).toEqual([
      ['api', 'sink.disable', `sink:${billingSink}`, 'applied'],
      ['api', 'sink.disable', 'sink:snk_0123456789abcdef', 'no_change'],
      ['api', 'sink.test', `sink:${ledgerSink}`, 'applied'],
      ['console', 'sink.enable', `sink:${billingSink}`, 'applied'],
      ['console', 'sink.test', `sink:${billingSink}`, 'applied'],
      ['console', 'sink.disable', `sink:${billingSink}`, 'applied'],
    ]);
    expect(consoleActor('x')).toMatch(/^console:/);
  });
});
