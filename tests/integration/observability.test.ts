/**
 * Observability: one structured log line per request (with its request id, and for a
 * webhook the provider and outcome) and per background job pass (with its duration);
 * the Prometheus metrics an operator alerts on, present in /metrics after traffic and
 * moving with it; /readyz reporting each dependency.
 */
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { relayOnce } from '../../src/events/relay.js';
import { createApp } from '../../src/http/app.js';
import { paymentLockKey } from '../../src/lock/locker.js';
import { createLogger } from '../../src/observability/logger.js';
import { pollOnce } from '../../src/poller/poller.js';
import { createProvidersFromEnv } from '../../src/providers/from-env.js';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import { signMollieBody } from '../../src/providers/mollie/signature.js';
import { startDownstreamReceiver, type DownstreamReceiver } from '../../src/sandbox/downstream-receiver.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { buildMollieEvent } from '../../src/sandbox/mollie-webhook-sender.js';
import { receiptHandlers } from '../../src/webhooks/handlers.js';
import { retryDueReceipts } from '../../src/webhooks/receipt-worker.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, testEnv } from '../helpers/deps.js';
import { metricSum, startRedisOnPort, type RedisOnPort } from '../helpers/fault-harness.js';
import { drainRelay, SINK_SECRET } from '../helpers/outbound-events.js';
import { freePort } from '../helpers/processes.js';

const MOLLIE_SECRET = 'observability-mollie-secret';
const GC_SECRET = 'observability-gc-secret';

type LogLine = { level: number; msg: string; requestId?: string; job?: string; [key: string]: unknown };

let database: TestDatabase;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let sink: DownstreamReceiver;
let redis: RedisOnPort;
let sql: postgres.Sql;
let deps: Deps;
let app: ReturnType<typeof createApp>;
const lines: LogLine[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox();
  gocardless = await startGoCardlessSandbox({ webhookSecret: GC_SECRET });
  sink = await startDownstreamReceiver({ secret: SINK_SECRET });
  redis = await startRedisOnPort(await freePort());
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: redis.url,
    REDIS_TIMEOUT_MS: '200',
    LOCK_WAIT_MS: '200',
    MOLLIE_API_KEY: SANDBOX_DEFAULT_API_KEY,
    MOLLIE_API_URL: mollie.url,
    MOLLIE_WEBHOOK_SECRETS: MOLLIE_SECRET,
    GOCARDLESS_ACCESS_TOKEN: gocardless.accessToken,
    GOCARDLESS_API_URL: gocardless.url,
    GOCARDLESS_WEBHOOK_SECRETS: GC_SECRET,
    EVENT_SINK_URLS: sink.url,
    EVENT_SINK_SECRET: SINK_SECRET,
    POLLER_RATE_PER_SECOND: '1000',
    POLLER_RATE_BURST: '1000',
  };
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  deps = buildTestDeps(env, { providers: createProvidersFromEnv(testEnv(env)), logger });
  await Promise.all(deps.redis.map((client) => (client.status === 'ready' ? undefined : new Promise((resolve) => client.once('ready', resolve)))));
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.background.drain();
  await deps?.close();
  await sql?.end();
  await mollie?.close();
  await gocardless?.close();
  await sink?.close();
  await redis?.kill();
  await database?.drop();
});

const form = (body: string) => ({ method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });

async function metrics(): Promise<string> {
  const res = await app.request('/metrics');
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
}

describe('logs', () => {
  it('one structured line per request, carrying its request id (and for a webhook its provider and outcome)', async () => {
    const paid = mollie.createPayment({ status: 'paid', method: 'ideal' });
    const gcPayment = gocardless.createPayment({ amount: 700, currency: 'EUR' });
    const batch = JSON.stringify({ events: gocardless.state.events, meta: { webhook_id: 'WB_OBS' } });
    const event = JSON.stringify(buildMollieEvent({ type: 'payment.paid', entityId: paid.id }));
    const requests: [string, string, RequestInit, Record<string, unknown>][] = [
      ['mollie classic', '/webhooks/mollie', form(`id=${paid.id}`), { provider: 'mollie', outcome: 'processed', resourceId: paid.id }],
      ['mollie event', '/webhooks/mollie', { method: 'POST', body: event, headers: { 'content-type': 'application/json', 'x-mollie-signature': signMollieBody(event, MOLLIE_SECRET) } }, { provider: 'mollie', outcome: 'processed' }],
      ['mollie event again', '/webhooks/mollie', { method: 'POST', body: event, headers: { 'content-type': 'application/json', 'x-mollie-signature': signMollieBody(event, MOLLIE_SECRET) } }, { provider: 'mollie', outcome: 'duplicate' }],
      ['mollie forged', '/webhooks/mollie', { method: 'POST', body: event, headers: { 'content-type': 'application/json', 'x-mollie-signature': '00'.repeat(32) } }, { provider: 'mollie', outcome: 'bad_signature', level: 40 }],
      ['mollie garbage', '/webhooks/mollie', form('hello'), { provider: 'mollie', outcome: 'invalid' }],
      ['gocardless', '/webhooks/gocardless', { method: 'POST', body: batch, headers: { 'content-type': 'application/json', 'webhook-signature': signGoCardlessBody(batch, GC_SECRET) } }, { provider: 'gocardless', outcome: 'accepted' }],
      ['gocardless forged', '/webhooks/gocardless', { method: 'POST', body: batch, headers: { 'content-type': 'application/json', 'webhook-signature': 'ab'.repeat(32) } }, { provider: 'gocardless', outcome: 'signature_invalid', level: 40 }],
      ['sync', `/v1/payments/mollie/${paid.id}/sync`, { method: 'POST', headers: auth }, {}],
      ['not found', '/nowhere', {}, {}],
      ['health', '/healthz', {}, {}],
    ];
    for (const [label, path, init, expected] of requests) {
      const before = lines.length;
      const res = await app.request(path, init);
      await res.arrayBuffer();
      const requestId = res.headers.get('x-request-id');
      const mine = lines.slice(before).filter((line) => line.requestId === requestId);
      expect(mine.map((line) => line.msg), label).toEqual(['request']);
      const [line] = mine;
      const url = new URL(path, 'http://localhost');
      expect(line, label).toMatchObject({ method: init.method ?? 'GET', path: url.pathname, status: res.status, level: expected.level ?? 30 });
      expect(typeof line!.ms).toBe('number');
      const { level: _level, ...fields } = expected;
      expect(line, label).toMatchObject(fields);
    }
    await deps.background.drain();
    expect(gcPayment.id).toMatch(/^PM/);
  });

  it('over the Node server, every kind of answer carries the request id its log line names', async () => {
    const paid = mollie.createPayment({ status: 'paid', method: 'ideal' });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const requests: [string, string, RequestInit, number][] = [
        ['webhook', '/webhooks/mollie', form(`id=${paid.id}`), 200],
        ['webhook refused', '/webhooks/mollie', form('hello'), 400],
        ['body too large', '/webhooks/mollie', form(`id=${'x'.repeat(300 * 1024)}`), 413],
        ['handler', '/healthz', {}, 200],
        ['HEAD', '/healthz', { method: 'HEAD' }, 200],
        ['admin api', `/v1/payments/mollie/${paid.id}`, { headers: auth }, 200],
        ['unauthorized', '/v1/payments', {}, 401],
        ['not found', '/nowhere', {}, 404],
        ['method not allowed', '/healthz', { method: 'DELETE' }, 405],
        ['console page', '/console/sign-in', {}, 200],
        ['console redirect', '/console/payments', { redirect: 'manual' }, 302],
      ];
      for (const [label, path, init, status] of requests) {
        const before = lines.length;
        const res = await fetch(`${base}${path}`, init);
        await res.arrayBuffer();
        expect(res.status, label).toBe(status);
        const requestId = res.headers.get('x-request-id');
        expect(requestId, label).toMatch(/^req_[0-9a-f]{32}$/);
        expect(lines.slice(before).filter((line) => line.msg === 'request' && line.requestId === requestId), label).toHaveLength(1);
      }
      const own = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'lb-42.a:b' } });
      expect(own.headers.get('x-request-id')).toBe('lb-42.a:b');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('one line per background job pass, with its duration', async () => {
    // A receipt left pending (the payment's lock was busy), then retried by the worker.
    const busy = mollie.createPayment({ status: 'paid', method: 'ideal' });
    await deps.locker.withLock(paymentLockKey('mollie', busy.id), async () => {
      const res = await app.request('/webhooks/mollie', form(`id=${busy.id}`));
      expect(res.status).toBe(200);
    });
    await sql`update webhook_receipts set next_attempt_at = now() where state = 'pending'`;
    const before = lines.length;
    await retryDueReceipts(deps, receiptHandlers);
    // A poller pass over a due payment, and a relay step.
    await sql`update payments set next_poll_at = now() - interval '1 second' where provider_payment_id = ${busy.id}`;
    await pollOnce(deps, {});
    await relayOnce(deps);
    const jobs = lines.slice(before).filter((line) => line.job);
    const byJob = (job: string) => jobs.filter((line) => line.job === job);
    expect(byJob('receipt-retry')).toHaveLength(1);
    expect(byJob('receipt-retry')[0]).toMatchObject({ claimed: 1, processed: 1, ms: expect.any(Number) });
    expect(byJob('poller')).toHaveLength(1);
    expect(byJob('poller')[0]).toMatchObject({ msg: 'poller pass', durationMs: expect.any(Number) });
  });
});

describe('metrics', () => {
  it('webhooks, sync latency, lock waits and timeouts, poll lag, outbox lag and deliveries, after traffic', async () => {
    // A lock timeout: the payment is held while a webhook for it waits 200 ms.
    const held = mollie.createPayment({ status: 'paid', method: 'ideal' });
    await deps.locker.withLock(paymentLockKey('mollie', held.id), async () => {
      expect((await app.request('/webhooks/mollie', form(`id=${held.id}`))).status).toBe(200);
    });
    // A return-page sync writes a new payment, with its event.
    const fresh = mollie.createPayment({ status: 'pending', method: 'ideal' });
    expect((await app.request(`/v1/payments/mollie/${fresh.id}/sync`, { method: 'POST', headers: auth })).status).toBe(200);
    // Poll lag: that payment overdue for its poll by a minute, no poller running.
    await sql`update payments set next_poll_at = now() - interval '60 seconds' where provider_payment_id = ${fresh.id}`;
    // Outbox lag: its event not yet handed to the sinks for half a minute.
    await sql`update outbox set created_at = now() - interval '30 seconds' where relayed_at is null`;
    const [waiting] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where relayed_at is null`;
    expect(waiting!.n).toBeGreaterThan(0);

    const text = await metrics();
    expect(metricSum(text, 'gateway_webhooks_total', { provider: 'mollie', outcome: 'processed' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_webhooks_total', { provider: 'mollie', outcome: 'bad_signature' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_webhooks_total', { provider: 'mollie', outcome: 'pending' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_webhooks_total', { provider: 'gocardless', outcome: 'accepted' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_sync_duration_seconds_count', { provider: 'mollie', source: 'webhook' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_sync_duration_seconds_bucket', { provider: 'mollie', source: 'sync', le: '+Inf' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_lock_wait_seconds_count')).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_lock_outcomes_total', { outcome: 'acquired' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_lock_outcomes_total', { outcome: 'busy' })).toBeGreaterThan(0);
    expect(metricSum(text, 'gateway_poller_lag_seconds', { provider: 'mollie', account: 'default' })).toBeGreaterThanOrEqual(59);
    // Read at the scrape, though no relay has run since: a stopped relay still shows.
    expect(metricSum(text, 'gateway_outbox_lag_seconds')).toBeGreaterThanOrEqual(29);
    expect(metricSum(text, 'gateway_provider_fetches_total', { provider: 'mollie', outcome: 'found' })).toBeGreaterThan(0);

    // Deliveries by outcome once the relay has run (it waits out other tests' transactions
    // on the shared server, which hold the commit horizon back); the outbox lag falls back to 0.
    await drainRelay(deps);
    const after = await metrics();
    expect(metricSum(after, 'gateway_event_deliveries_total', { kind: 'http', outcome: 'delivered' })).toBeGreaterThan(0);
    expect(metricSum(after, 'gateway_event_delivery_duration_seconds_count', { kind: 'http' })).toBeGreaterThan(0);
    expect(metricSum(after, 'gateway_outbox_lag_seconds')).toBe(0);
    expect(sink.events.length).toBeGreaterThan(0);
    for (const name of ['gateway_webhooks_total', 'gateway_sync_duration_seconds', 'gateway_lock_wait_seconds', 'gateway_lock_outcomes_total', 'gateway_poller_lag_seconds', 'gateway_outbox_lag_seconds', 'gateway_event_deliveries_total']) {
      expect(after, name).toContain(`# HELP ${name} `);
    }
  });
});

describe('/readyz', () => {
  it('reports each dependency: Postgres, Redis, the lock and the poller', async () => {
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'ready',
      checks: { postgres: { ok: true, ms: expect.any(Number) }, redis: { ok: true, ms: expect.any(Number) } },
      lock: 'redlock',
      poller: { status: expect.any(String), accounts: expect.any(Array) },
    });

    // Redis away: still ready (the lock is an optimisation), but degraded and saying why.
    await redis.kill();
    const degraded = await app.request('/readyz');
    expect(degraded.status).toBe(200);
    expect(await degraded.json()).toMatchObject({ status: 'degraded', checks: { postgres: { ok: true }, redis: { ok: false, error: expect.any(String) } } });
    expect(metricSum(await metrics(), 'gateway_dependency_up', { dependency: 'redis' })).toBe(0);

    // Postgres away: unavailable, 503.
    const gone = buildTestDeps({ DATABASE_URL: database.url.replace(/:\d+\//, `:${await freePort()}/`) }, { logger: createLogger('silent') });
    try {
      const res = await createApp(gone).request('/readyz');
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unavailable', checks: { postgres: { ok: false, error: expect.any(String) } }, poller: { status: 'unknown' } });
    } finally {
      await gone.close();
    }
  });
});
