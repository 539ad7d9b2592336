import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { configuredSinks } from '../../src/events/sinks.js';
import { createApp } from '../../src/http/app.js';
import type { TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually } from '../helpers/deps.js';
import { drainRelay, newPaymentId, PREVIOUS_SINK_SECRET, SINK_SECRET, writeGatewayEvent, writePaymentHistory } from '../helpers/outbound-events.js';
import { sinkTestHarness } from '../helpers/relay-harness.js';
import type { ReceivedRequest, WebhookReceiver } from '../helpers/webhook-receiver.js';

const harness = sinkTestHarness();
const { cleanups } = harness;
let sql: postgres.Sql;
let database: TestDatabase;
beforeAll(() => {
  sql = harness.sql;
  database = harness.database;
});

async function setup(receivers: WebhookReceiver[], env: Record<string, string> = {}) {
  const deps = harness.deps({ EVENT_SINK_URLS: receivers.map((r) => r.url).join(','), ...env });
  const sinkIds = configuredSinks(deps).map((sink) => sink.id);
  return { deps, sinkIds, app: createApp(deps) };
}

const receiver = harness.receiver;
const startRelay = harness.startRelay;

const drain = drainRelay;

/** The successfully delivered versions of one payment, in the order the sink got them. */
function versionsOf(requests: ReceivedRequest[], paymentId: string): number[] {
  return requests.filter((r) => r.json?.data.paymentId === paymentId).map((r) => r.json!.data.version as number);
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** How many of the given sinks' deliveries are in each state. */
async function deliveryStates(sinkIds: string[]) {
  const rows = await sql<{ state: string; n: number }[]>`
    select state, count(*)::int as n from event_deliveries where sink_id = any(${sinkIds}) group by state`;
  return Object.fromEntries(rows.map((row) => [row.state, row.n]));
}

/** Event ids written by this test: the outbox also holds earlier tests' events. */
async function outboxIds(paymentIds: string[], extra: string[] = []) {
  const rows = await sql<{ event_id: string; payment_version: number | null }[]>`
    select event_id, payment_version from outbox where provider_payment_id = any(${paymentIds}) or event_id = any(${extra})`;
  return rows;
}

describe('HTTP sinks', () => {
  it('a sink that is down for a while then back gets everything, per payment in version order, validly signed by both secrets', async () => {
    let up = false;
    const sink = await receiver(() => (up ? { status: 204 } : { status: 503, body: 'maintenance' }));
    const { deps, sinkIds } = await setup([sink], { EVENT_SINK_PREVIOUS_SECRETS: PREVIOUS_SINK_SECRET });

    const payments = Array.from({ length: 6 }, () => newPaymentId());
    const typesByPayment = new Map<string, string[]>();
    await Promise.all(payments.map(async (id) => typesByPayment.set(id, await writePaymentHistory(deps.db, id, 2))));
    const gatewayEvents = [await writeGatewayEvent(deps.db, 'a'), await writeGatewayEvent(deps.db, 'b')];
    const written = await outboxIds(payments, gatewayEvents);
    const total = written.length;
    expect(total).toBe(6 * 5 + 2);

    // Enough retries that nothing dies while the sink is down.
    startRelay(deps, { retryDelaysMs: Array.from({ length: 40 }, () => 15) });

    // While the sink is down only the first event of each payment (and the events of no
    // payment) is ever attempted: the rest are held back behind it.
    await eventually(async () => new Set(sink.requests.map((r) => r.id)).size >= payments.length + 2 && sink.requests.length >= 40, { what: 'retries while down' });
    const headIds = new Set(written.filter((r) => r.payment_version === null || r.payment_version === 1).map((r) => r.event_id));
    expect(headIds.size).toBe(payments.length + 2);
    const attemptedWhileDown = new Set(sink.requests.map((r) => r.id));
    for (const id of attemptedWhileDown) expect(headIds.has(id), `${id} was attempted while an earlier event of its payment was failing`).toBe(true);

    up = true;
    await eventually(async () => (await deliveryStates(sinkIds)).delivered === total, { what: 'all delivered', timeoutMs: 20_000 });

    const accepted = sink.accepted();
    // Exactly one successful delivery per event.
    expect(accepted).toHaveLength(total);
    expect([...countBy(accepted, (r) => r.id).values()].every((n) => n === 1)).toBe(true);
    for (const id of payments) {
      expect(versionsOf(accepted, id)).toEqual([1, 2, 3, 4, 5]);
      expect(accepted.filter((r) => r.json?.data.paymentId === id).map((r) => r.json!.type)).toEqual(typesByPayment.get(id));
    }
    for (const id of gatewayEvents) expect(accepted.some((r) => r.id === id)).toBe(true);

    // Every request, failed or not: webhook-id is the event id, and both the current and
    // the previous secret verify it, each on its own (a receiver mid-rotation holds one).
    const current = new Webhook(SINK_SECRET);
    const previous = new Webhook(PREVIOUS_SINK_SECRET);
    for (const request of sink.requests) {
      expect(request.id).toBe(request.json!.id);
      expect(request.headers['content-type']).toBe('application/json');
      expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
      const headers = request.headers as Record<string, string>;
      expect(current.verify(request.body, headers)).toMatchObject({ id: request.id });
      expect(previous.verify(request.body, headers)).toMatchObject({ id: request.id });
      expect(() => new Webhook('whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==').verify(request.body, headers)).toThrow();
      expect(Object.keys(request.json!)).toEqual(['id', 'type', 'timestamp', 'data']);
    }
    // Retries carried the same webhook-id: every id the sink saw is one of our events.
    const eventIds = new Set(written.map((r) => r.event_id));
    for (const request of sink.requests) expect(eventIds.has(request.id)).toBe(true);

    const metrics = await deps.metrics.eventDeliveries.get();
    const delivered = metrics.values.filter((v) => v.labels.outcome === 'delivered').reduce((sum, v) => sum + v.value, 0);
    const retried = metrics.values.filter((v) => v.labels.outcome === 'retry').reduce((sum, v) => sum + v.value, 0);
    expect(delivered).toBe(total);
    expect(retried).toBe(sink.requests.length - total);
  });

  it('a failing delivery holds back the later events of its payment only', async () => {
    const blocked = newPaymentId();
    const free = newPaymentId();
    let healed = false;
    const sink = await receiver((r) => (!healed && r.json?.data.paymentId === blocked ? { status: 500, body: 'cannot take this one' } : { status: 200 }));
    const { deps, sinkIds } = await setup([sink]);
    await writePaymentHistory(deps.db, blocked, 2);
    await writePaymentHistory(deps.db, free, 2);
    startRelay(deps, { retryDelaysMs: Array.from({ length: 200 }, () => 10) });

    await eventually(async () => versionsOf(sink.accepted(), free).length === 5 && sink.requests.filter((r) => r.json?.data.paymentId === blocked).length >= 3, { what: 'the free payment delivered' });
    expect(versionsOf(sink.accepted(), free)).toEqual([1, 2, 3, 4, 5]);
    // Only the blocked payment's first event was tried, again and again.
    expect(new Set(versionsOf(sink.requests, blocked))).toEqual(new Set([1]));

    healed = true;
    await eventually(async () => (await deliveryStates(sinkIds)).delivered === 10, { what: 'all delivered' });
    expect(versionsOf(sink.accepted(), blocked)).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps version order when a later version of a payment took the lower transaction id', async () => {
    const sink = await receiver(() => ({ status: 200 }));
    const { deps } = await setup([sink]);
    const paymentId = newPaymentId();
    const insert = (on: postgres.ReservedSql | postgres.Sql, version: number) => {
      const id = `evt_v${version}_${paymentId}`;
      const payload = { id, type: 'payment.updated', timestamp: new Date().toISOString(), data: { provider: 'mollie', paymentId, version } };
      return on`insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload)
        values (${id}, ${id}, 'payment.updated', 'mollie', ${paymentId}, ${version}, ${on.json(payload)})`;
    };
    // Version 2's transaction takes its id first but commits after version 1's, as two
    // syncs racing for the payment's row lock can: (tx_id, id) order is then v2, v1.
    const later = await sql.reserve();
    try {
      await later`begin`;
      await later`select pg_current_xact_id()`;
      await insert(sql, 1);
      await insert(later, 2);
      await later`commit`;
    } finally {
      later.release();
    }
    const [first] = await sql<{ version: number }[]>`
      select payment_version as version from outbox where provider_payment_id = ${paymentId} order by tx_id, id limit 1`;
    expect(first!.version).toBe(2);
    // One event per fan-out, so version 2 is handed to the sink before version 1 exists there.
    await drain(deps, { fanOutBatch: 1 });
    expect(versionsOf(sink.accepted(), paymentId)).toEqual([1, 2]);
  });

  it('honours a per-request timeout and Retry-After, with the same webhook-id on every attempt', async () => {
    const sink = await receiver((r) => (r.n === 0 ? 'hang' : r.n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 202 }));
    const { deps, sinkIds } = await setup([sink], { EVENT_SINK_TIMEOUT_MS: '300' });
    const eventId = await writeGatewayEvent(deps.db, 'timeout');
    startRelay(deps, { retryDelaysMs: [5, 5, 5] });

    await eventually(async () => (await deliveryStates(sinkIds)).delivered === 1, { what: 'delivered', timeoutMs: 15_000 });
    expect(sink.requests.map((r) => r.id)).toEqual([eventId, eventId, eventId]);
    const [first, second, third] = sink.requests;
    // The hanging attempt was cut at the timeout, then retried on the 5 ms schedule.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(250);
    expect(second!.at - first!.at).toBeLessThan(5000);
    // Retry-After: 1 overrides the 5 ms schedule.
    expect(third!.at - second!.at).toBeGreaterThanOrEqual(950);
    const [row] = await sql<{ attempts: number; last_status: number }[]>`select attempts, last_status from event_deliveries where event_id = ${eventId}`;
    expect(row).toEqual({ attempts: 3, last_status: 202 });
  });

  it('a 410 disables the sink for every process until an operator enables it, says so once (gateway.sink.disabled, /readyz), and loses nothing meanwhile', async () => {
    let gone = true;
    const sink = await receiver(() => (gone ? { status: 410, body: 'endpoint removed' } : { status: 200 }));
    const other = await receiver(() => ({ status: 200 }));
    const { deps, sinkIds, app } = await setup([sink, other]);
    const id = newPaymentId();
    await writePaymentHistory(deps.db, id, 1);

    await drain(deps, { retryDelaysMs: [5] });
    // One attempt, then nothing more, however often the relay runs.
    expect(sink.requests).toHaveLength(1);
    await drain(deps, { retryDelaysMs: [5] });
    expect(sink.requests).toHaveLength(1);
    // The other sink is unaffected.
    expect(versionsOf(other.accepted(), id)).toEqual([1, 2, 3, 4]);

    // Persisted: a second gateway process on the same database does not call it either.
    const second = buildTestDeps({ DATABASE_URL: database.url, EVENT_SINK_URLS: sink.url, EVENT_SINK_SECRET: SINK_SECRET });
    cleanups.push(() => second.close());
    await drain(second);
    expect(sink.requests).toHaveLength(1);

    const [sinkId, otherId] = sinkIds;
    // The other sink and the pull API hear of it, once.
    const notices = other.accepted().filter((r) => r.json?.type === 'gateway.sink.disabled');
    expect(notices).toHaveLength(1);
    expect(notices[0]!.json!.data).toMatchObject({ sink: { id: sinkId, kind: 'http', target: sink.url }, status: 410, reason: '410 Gone: endpoint removed', disabledAt: expect.any(String) });
    const feed = await (await app.request('/v1/events?limit=1000', { headers: auth })).json();
    const fed = feed.data.filter((e: { type: string; data: { sink?: { id: string } } }) => e.type === 'gateway.sink.disabled' && e.data.sink?.id === sinkId);
    expect(fed).toHaveLength(1);
    expect(fed[0].id).toBe(notices[0]!.id);
    // /readyz names it (informational: the gateway stays ready, the events wait in Postgres).
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    expect((await ready.json()).sinks).toMatchObject({ configured: 2, disabled: [{ id: sinkId, kind: 'http', target: sink.url, reason: '410 Gone: endpoint removed' }] });

    const listed = await (await app.request('/v1/event-sinks', { headers: auth })).json();
    expect(listed.data.find((s: { id: string }) => s.id === sinkId)).toMatchObject({
      kind: 'http',
      target: sink.url,
      disabledReason: expect.stringContaining('410'),
      pending: 4,
      deadLetters: 0,
    });
    expect(listed.data.find((s: { id: string }) => s.id === sinkId).disabledAt).toEqual(expect.any(String));

    gone = false;
    const enabled = await app.request(`/v1/event-sinks/${sinkId}/enable`, { method: 'POST', headers: auth });
    expect(enabled.status).toBe(200);
    expect(await enabled.json()).toMatchObject({ id: sinkId, disabledAt: null });
    await drain(deps);
    expect(versionsOf(sink.accepted(), id)).toEqual([1, 2, 3, 4]);
    // The re-enabled sink is not sent the notice of its own disablement.
    expect(sink.requests.some((r) => r.json?.type === 'gateway.sink.disabled')).toBe(false);
    expect(await deliveryStates([sinkId!])).toEqual({ delivered: 4 });
    expect(await deliveryStates([otherId!])).toEqual({ delivered: 5 });
    expect((await (await app.request('/readyz')).json()).sinks.disabled).toEqual([]);

    // A second 410 after re-enabling is a new episode: a second notice.
    gone = true;
    await writePaymentHistory(deps.db, newPaymentId(), 0);
    await drain(deps, { retryDelaysMs: [5] });
    expect(other.accepted().filter((r) => r.json?.type === 'gateway.sink.disabled')).toHaveLength(2);
    expect((await app.request('/v1/event-sinks/snk_0000000000000000/enable', { method: 'POST', headers: auth })).status).toBe(404);
  });

  it('after the last retry an event is a dead letter, listed and re-driven through the admin API', async () => {
    let failing = true;
    const sink = await receiver(() => (failing ? { status: 500, body: 'database locked' } : { status: 200 }));
    const { deps, sinkIds, app } = await setup([sink]);
    const id = newPaymentId();
    await writePaymentHistory(deps.db, id, 0); // versions 1..3
    startRelay(deps, { retryDelaysMs: [5, 5] });

    await eventually(async () => (await deliveryStates(sinkIds)).dead === 3, { what: 'three dead letters' });
    // Three attempts each, all of v1 before any of v2: the hold-back lasts until the dead letter.
    expect(versionsOf(sink.requests, id)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
    expect([...countBy(sink.requests, (r) => r.id).values()]).toEqual([3, 3, 3]);

    const list = await app.request(`/v1/dead-letters?limit=2&sink=${sinkIds[0]}`, { headers: auth });
    expect(list.status).toBe(200);
    const page1 = await list.json();
    expect(page1.data).toHaveLength(2);
    expect(page1.data[0]).toMatchObject({
      type: 'payment.open',
      paymentId: id,
      version: 1,
      attempts: 3,
      lastStatus: 500,
      lastError: 'HTTP 500: database locked',
      sink: { kind: 'http', target: sink.url, disabled: false },
      event: { type: 'payment.open', data: { paymentId: id, version: 1 } },
    });
    expect(page1.data[0].eventId).toBe(page1.data[0].event.id);
    const page2 = await (await app.request(`/v1/dead-letters?limit=2&sink=${sinkIds[0]}&cursor=${page1.nextCursor}`, { headers: auth })).json();
    expect(page2.data.map((d: { version: number }) => d.version)).toEqual([3]);
    expect(page2.nextCursor).toBeNull();

    failing = false;
    const before = sink.requests.length;
    for (const dead of [...page1.data, ...page2.data]) {
      const res = await app.request(`/v1/dead-letters/${dead.id}/redrive`, { method: 'POST', headers: auth });
      expect(res.status).toBe(202);
    }
    await eventually(async () => (await deliveryStates(sinkIds)).delivered === 3, { what: 're-driven' });
    // Same event ids as before, delivered once each, in version order.
    const redriven = sink.requests.slice(before);
    expect(redriven.map((r) => r.id)).toEqual([...page1.data, ...page2.data].map((d: { eventId: string }) => d.eventId));
    expect(versionsOf(redriven, id)).toEqual([1, 2, 3]);
    expect((await (await app.request(`/v1/dead-letters?sink=${sinkIds[0]}`, { headers: auth })).json()).data).toEqual([]);
    const again = await app.request(`/v1/dead-letters/${page1.data[0].id}/redrive`, { method: 'POST', headers: auth });
    expect(again.status).toBe(404);
    expect((await again.json()).error.code).toBe('dead_letter_not_found');
    expect((await app.request('/v1/dead-letters', { headers: { Authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
  });
});
