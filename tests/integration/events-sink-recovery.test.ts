import { setTimeout as pause } from 'node:timers/promises';
import postgres from 'postgres';
import { beforeAll, describe, expect, it } from 'vitest';
import { configuredSinks } from '../../src/events/sinks.js';
import { eventually } from '../helpers/deps.js';
import { newPaymentId, writeGatewayEvents, writePaymentHistory } from '../helpers/outbound-events.js';
import { sinkTestHarness } from '../helpers/relay-harness.js';
import type { ReceivedRequest, WebhookReceiver } from '../helpers/webhook-receiver.js';

/**
 * Sinks that go away and come back, and sinks that hang: the relay's circuit breaker
 * (probes and pulling retries forward) and its per-sink lanes, with the default retry
 * schedule (5 s, then 5 min) where the claim is about it.
 */
const harness = sinkTestHarness();
const { receiver, startRelay } = harness;
let sql: postgres.Sql;
beforeAll(() => {
  sql = harness.sql;
});

function setup(receivers: WebhookReceiver[], env: Record<string, string> = {}) {
  const deps = harness.deps({ EVENT_SINK_URLS: receivers.map((r) => r.url).join(','), ...env });
  return { deps, sinkIds: configuredSinks(deps).map((sink) => sink.id) };
}

async function delivered(sinkIds: string[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from event_deliveries where sink_id = any(${sinkIds}) and state = 'delivered'`;
  return row!.n;
}

function versionsOf(requests: ReceivedRequest[], paymentId: string): number[] {
  return requests.filter((r) => r.json?.data.paymentId === paymentId).map((r) => r.json!.data.version as number);
}

describe('a sink that comes back', () => {
  it('after a 20 s outage, every event is delivered within 30 s of recovery, in order, without hammering the sink while it is down', async () => {
    let up = false;
    const sink = await receiver(() => (up ? { status: 204 } : { status: 503, body: 'down for maintenance' }));
    // The default schedule (EVENT_SINK_RETRY_DELAYS: 5s, 5m, ...) and probe interval (5 s).
    const { deps, sinkIds } = setup([sink]);
    startRelay(deps);

    // Payments keep changing through the outage: a burst at the start, one more every 2 s.
    const payments: string[] = [];
    const write = async (n: number) => {
      const ids = Array.from({ length: n }, () => newPaymentId());
      payments.push(...ids);
      await Promise.all(ids.map((id) => writePaymentHistory(deps.db, id, 1)));
    };
    const outageStarted = Date.now();
    await write(8);
    // The outage is 20 s of wall time; the pauses pace the writer, nothing waits on them.
    for (let i = 1; i <= 9; i++) {
      await pause(outageStarted + i * 2000 - Date.now());
      await write(1);
    }
    await pause(outageStarted + 20_000 - Date.now());
    const total = payments.length * 4;
    const requestsWhileDown = sink.requests.length;
    const idsWhileDown = new Set(sink.requests.map((r) => r.id)).size;
    // Down: each payment's first event is tried on its schedule (at 0 and ~5 s), plus one
    // probe per 5 s; later versions wait behind their first. Nowhere near a retry loop.
    expect(idsWhileDown).toBeLessThanOrEqual(payments.length);
    expect(requestsWhileDown).toBeLessThanOrEqual(2 * payments.length + 8);

    up = true;
    const recovered = Date.now();
    await eventually(async () => (await delivered(sinkIds)) === total, { timeoutMs: 30_000, intervalMs: 100, what: 'every event delivered within 30 s of recovery' });
    expect(Date.now() - recovered).toBeLessThan(30_000);

    const accepted = sink.accepted();
    expect(accepted).toHaveLength(total);
    for (const id of payments) expect(versionsOf(accepted, id)).toEqual([1, 2, 3, 4]);
    // Probes cost the deliveries nothing: nobody got near the end of the schedule.
    const [row] = await sql<{ max: number }[]>`select max(attempts)::int as max from event_deliveries where sink_id = any(${sinkIds})`;
    expect(row!.max).toBeLessThanOrEqual(3);
  }, 150_000);
});

describe('a sink that hangs', () => {
  it('does not slow a healthy sink beside it: the healthy one gets its events as fast as alone', async () => {
    const EVENTS = 300;
    // Alone first: the healthy sink's own pace on this machine, now.
    const alone = await receiver(() => ({ status: 204 }));
    const soloSetup = setup([alone], { EVENT_SINK_TIMEOUT_MS: '30000' });
    await writeGatewayEvents(soloSetup.deps.db, 'solo', EVENTS);
    let started = Date.now();
    const stopSolo = startRelay(soloSetup.deps);
    await eventually(async () => (await delivered(soloSetup.sinkIds)) === EVENTS, { timeoutMs: 30_000, intervalMs: 20, what: 'the sink alone' });
    const aloneMs = Date.now() - started;
    await stopSolo();

    // Then beside a sink that never answers (each attempt ends at the 30 s timeout).
    const healthy = await receiver(() => ({ status: 204 }));
    const hanging = await receiver(() => 'hang');
    const { deps, sinkIds } = setup([hanging, healthy], { EVENT_SINK_TIMEOUT_MS: '30000' });
    const stop = startRelay(deps);
    // Let the hanging sink's lane fill up with attempts before the events under test arrive.
    await writeGatewayEvents(deps.db, 'warm-up', 20);
    await eventually(async () => hanging.requests.length >= 16 && (await delivered([sinkIds[1]!])) === 20, { timeoutMs: 20_000, what: 'the hanging sink to hold attempts' });
    await writeGatewayEvents(deps.db, 'beside', EVENTS);
    started = Date.now();
    await eventually(async () => (await delivered([sinkIds[1]!])) === 20 + EVENTS, { timeoutMs: 30_000, intervalMs: 20, what: 'the healthy sink beside the hanging one' });
    const besideMs = Date.now() - started;
    // As fast as alone, within what a loaded shared machine adds; and inside one timeout
    // of the hanging sink, which is what every step waited for before (a relay step that
    // waited on the hanging sink could not deliver 300 events in less than 30 s).
    expect(besideMs, `alone ${aloneMs} ms, beside a hanging sink ${besideMs} ms`).toBeLessThan(Math.max(2 * aloneMs, aloneMs + 5000));
    expect(besideMs).toBeLessThan(25_000);
    // Stop the relay while the hanging sink still holds attempts: they end with its connections.
    await hanging.close();
    await stop();
  }, 150_000);
});
