/**
 * A fleet where nobody polls. Two gateway processes whose poller loops have gone quiet
 * (one pass at start, then an idle pause far past the threshold: as good as dead) share a
 * database with a payment that is due. Their watchers must announce
 * `gateway.poller.stalled` within the configured time, exactly once between them, and show
 * it in /readyz and the console; a third process that polls again ends the episode with
 * one `gateway.poller.recovered`.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionValue, SESSION_COOKIE } from '../../src/console/session.js';
import { checkPollerFleet, fleetWatchIntervalMs } from '../../src/poller/fleet.js';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0 });
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.kill()));
  await mollie?.close();
  await sql?.end();
  await database?.drop();
});

const STALLED_AFTER_MS = 3000;

interface EventRow {
  type: string;
  payload: { data: Record<string, unknown> };
}

const fleetEvents = () =>
  sql<EventRow[]>`select type, payload from outbox where type in ('gateway.poller.stalled', 'gateway.poller.recovered') order by id`;

describe('fleet-wide poller stall', () => {
  it('no process polling while a payment is due → gateway.poller.stalled once, in /readyz and the console; a pass again → recovered once', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: undefined,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      MOLLIE_API_KEY: 'test_sandbox',
      MOLLIE_API_URL: mollie.url,
      POLLER_STALLED_AFTER_MS: String(STALLED_AFTER_MS),
    };
    // Pollers that pass once at start and then not for ten minutes.
    const quiet = { ...env, POLLER_IDLE_MS: '600000' };
    gateways.push(await startGatewayProcess(quiet, { timeoutMs: 90_000 }), await startGatewayProcess(quiet, { timeoutMs: 90_000 }));
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];

    // A payment the gateway tracks, due for a poll now.
    const payment = mollie.createPayment({ status: 'open' });
    const tracked = await fetch(`${a.url}/v1/payments`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ provider: 'mollie', id: payment.id }) });
    expect(tracked.status).toBe(201);
    await sql`update payments set next_poll_at = now() where provider_payment_id = ${payment.id}`;

    const stalled = await eventually(async () => (await fleetEvents()).find((e) => e.type === 'gateway.poller.stalled'), {
      what: 'gateway.poller.stalled',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const data = stalled.payload.data;
    expect(data).toMatchObject({ scope: 'fleet', stalledAfterMs: STALLED_AFTER_MS, due: 1 });
    // Announced within the threshold plus one look of the watchers (and a little for a busy machine).
    const announcedAfterMs = Date.parse(String(data.since)) - Date.parse(String(data.lastPassAt));
    expect(announcedAfterMs).toBeGreaterThanOrEqual(STALLED_AFTER_MS);
    expect(announcedAfterMs).toBeLessThan(STALLED_AFTER_MS + fleetWatchIntervalMs(STALLED_AFTER_MS) + 5000);

    // Both processes say so in /readyz (informational: they still take webhooks).
    for (const gateway of [a, b]) {
      const res = await fetch(`${gateway.url}/readyz`);
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.poller.status).toBe('stalled');
      expect(body.poller.fleet).toMatchObject({ state: 'stalled', stalledAfterMs: STALLED_AFTER_MS, lastPassAt: data.lastPassAt });
    }
    expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/^gateway_poller_fleet_stalled 1$/m);
    const cookie = `${SESSION_COOKIE}=${createSessionValue(TEST_ADMIN_TOKEN, new Date())}`;
    const overview = await (await fetch(`${b.url}/console`, { headers: { cookie } })).text();
    expect(overview).toMatch(/data-testid="stat-poller-fleet">\s*STALLED, last pass /);

    // However many look again, and from however many processes, the episode has its one event.
    const watcher = buildTestDeps({ DATABASE_URL: database.url, POLLER_STALLED_AFTER_MS: String(STALLED_AFTER_MS) });
    try {
      const again = await Promise.all(Array.from({ length: 4 }, () => checkPollerFleet(watcher, STALLED_AFTER_MS)));
      expect(again).toEqual([false, false, false, false]);
    } finally {
      await watcher.close();
    }
    expect((await fleetEvents()).filter((e) => e.type === 'gateway.poller.stalled')).toHaveLength(1);

    // A process that polls again: its first pass ends the episode, with one recovery.
    gateways.push(await startGatewayProcess(env, { timeoutMs: 90_000 }));
    const recovered = await eventually(async () => (await fleetEvents()).find((e) => e.type === 'gateway.poller.recovered'), {
      what: 'gateway.poller.recovered',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    expect(recovered.payload.data).toMatchObject({ scope: 'fleet', stalledSince: data.since });
    const ready = await (await fetch(`${a.url}/readyz`)).json();
    expect(ready.poller.fleet.state).toBe('running');
    expect(ready.poller.status).not.toBe('stalled');
    expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/^gateway_poller_fleet_stalled 0$/m);
    expect((await fleetEvents()).map((e) => e.type)).toEqual(['gateway.poller.stalled', 'gateway.poller.recovered']);
  }, 300_000);
});
