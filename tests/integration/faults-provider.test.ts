/**
 * Fault: the provider API failing (503s, 429s with Retry-After, dropped connections) and
 * slow (past the gateway's webhook deadline, then past the client's own timeout). Two
 * real gateway processes, the Mollie and GoCardless sandboxes, a signature-checking sink.
 *
 * Whatever the provider does, a webhook whose receipt is durable is acknowledged (Mollie
 * 200, GoCardless 204) and applied later by the receipt worker; a return-page sync gets
 * 502/503 (never 500); and the invariants hold once the provider is back.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import type { GoCardlessPaymentStatus } from '../../src/providers/gocardless/mapping.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { eventually } from '../helpers/deps.js';
import { checkInvariants, metricAcross, printFigures, settle, startFaultStack, startMollieLoad, urlsOf, type FaultStack } from '../helpers/fault-harness.js';

let database: TestDatabase;
let sql: postgres.Sql;
let stack: FaultStack;
let gocardless: GoCardlessSandbox;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  gocardless = await startGoCardlessSandbox();
  stack = await startFaultStack({
    databaseUrl: database.url,
    redisUrl: TEST_REDIS_URL,
    gateways: 2,
    env: {
      MOLLIE_WEBHOOK_DEADLINE_MS: '1000',
      GOCARDLESS_ACCESS_TOKEN: gocardless.accessToken,
      GOCARDLESS_API_URL: gocardless.url,
      GOCARDLESS_WEBHOOK_SECRETS: gocardless.webhookSecret,
      // Webhooks are the path under test; the events-API recovery would paper over them.
      GOCARDLESS_EVENTS_INTERVAL_MS: '0',
    },
  });
}, 90_000);

afterAll(async () => {
  await stack?.close();
  await gocardless?.close();
  await sql?.end();
  await database?.drop();
}, 30_000);

const tally = (values: (number | string | null)[]) =>
  values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [String(v)]: (acc[String(v)] ?? 0) + 1 }), {});

describe('faults: the provider API', () => {
  it('failing: 503s, 429s with Retry-After, dropped connections', async () => {
    const urls = urlsOf(stack.gateways);
    const { sandbox } = stack;
    const started = performance.now();

    // GoCardless: payments created and announced while the API is healthy.
    const gcPayments = Array.from({ length: 12 }, (_, i) => gocardless.createPayment({ amount: 1000 + i, currency: 'GBP' }));
    const gcStatuses: (number | null)[] = [];
    // New events to one gateway, then the same events again to the other (GoCardless retries and duplicates).
    const sendGoCardless = async () => {
      const first = await gocardless.deliverWebhooks({ url: `${urls[0]}/webhooks/gocardless`, retry: false });
      const eventIds = first.batches.flatMap((b) => b.eventIds);
      const second = await gocardless.deliverWebhooks({ url: `${urls[1]}/webhooks/gocardless`, retry: false, eventIds });
      gcStatuses.push(...[...first.batches, ...second.batches].map((b) => b.status));
    };
    await sendGoCardless();

    const load = startMollieLoad({ sandbox, targets: () => urls, payments: 48, concurrency: 6, paceMs: 40, syncShare: 0.4 });
    await load.advance(Math.floor(load.totalSteps / 5));

    // 1. Every API call answers 503 (Mollie) / an HTML 503 from a proxy (GoCardless).
    sandbox.setDown('error');
    gocardless.setDown('unavailable');
    for (const payment of gcPayments) {
      gocardless.setPaymentStatus(payment.id, 'submitted');
      gocardless.setPaymentStatus(payment.id, 'confirmed');
    }
    await sendGoCardless();
    await load.advance(10);
    const [pendingWhileDown] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where state = 'pending'`;

    // 2. Rate-limited: 429 with Retry-After on the next calls.
    sandbox.setDown(null);
    gocardless.setDown(false);
    // Each 429 pauses the account for its Retry-After on every path, so each one costs a second.
    sandbox.failNext({ status: 429, count: 5, retryAfterS: 1 });
    gocardless.rateLimitNext(10, { resetMs: 1000 });
    await eventually(async () => sandbox.state.faults.length === 0, { what: 'the 429s to be used up', timeoutMs: 30_000 });

    // 3. Connections dropped without an answer.
    sandbox.setDown('reset');
    gocardless.setDown('reset');
    for (const [i, payment] of gcPayments.entries()) if (i % 2 === 0) gocardless.setPaymentStatus(payment.id, 'paid_out');
    await sendGoCardless();
    await load.advance(8);

    // Back to health.
    sandbox.setDown(null);
    gocardless.setDown(false);
    await load.done;
    const settleMs = await settle(sql, stack.sink, 60_000);

    expect(stack.crashed()).toEqual([]);
    expect(pendingWhileDown!.n).toBeGreaterThan(0);
    // GoCardless got its 204 for every batch, whatever its API was doing.
    expect(tally(gcStatuses)).toEqual({ 204: gcStatuses.length });
    const figures = await checkInvariants(sql, stack, load, { webhook: [200], sync: [200, 409, 502, 503] });
    // Syncs during the outage were refused with a provider error, not a 500.
    expect(load.syncs.filter((s) => s.status === 502 || s.status === 503).length).toBeGreaterThan(0);

    // GoCardless: one row per payment, at the sandbox's status, versions without gaps,
    // an event for every transition.
    const gcRows = await sql<{ id: number; provider_payment_id: string; provider_status: string; version: number }[]>`
      select id, provider_payment_id, provider_status, version from payments where provider = 'gocardless'`;
    expect(gcRows).toHaveLength(gcPayments.length);
    for (const row of gcRows) expect(row.provider_status).toBe(gocardless.getPayment(row.provider_payment_id)!.status as GoCardlessPaymentStatus);
    const gcTransitions = await sql<{ payment_id: number; version: number }[]>`
      select t.payment_id, t.version from payment_transitions t join payments p on p.id = t.payment_id where p.provider = 'gocardless' order by 1, 2`;
    for (const row of gcRows) {
      const versions = gcTransitions.filter((t) => t.payment_id === row.id).map((t) => t.version);
      expect(versions).toEqual(versions.map((_, i) => i + 1));
      expect(row.version).toBe(versions.length);
    }
    const [gcEvents] = await sql<{ versions: number }[]>`
      select count(distinct (provider_payment_id, payment_version))::int as versions from outbox where provider = 'gocardless' and payment_version is not null`;
    expect(gcEvents!.versions).toBe(gcTransitions.length);
    const gcReceipts = await sql<{ state: string; n: number }[]>`select state, count(*)::int as n from webhook_receipts where provider = 'gocardless' group by 1`;
    expect(gcReceipts.filter((r) => r.state === 'pending' || r.state === 'failed')).toEqual([]);

    printFigures('provider-failing', {
      ...figures,
      receiptsPendingWhileDown: pendingWhileDown!.n,
      mollieFetchOutcomes: Object.fromEntries(
        await Promise.all(['found', 'unavailable', 'rate_limited', 'timeout'].map(async (o) => [o, await metricAcross(urls, 'gateway_provider_fetches_total', { provider: 'mollie', outcome: o })])),
      ),
      gocardless: { payments: gcRows.length, webhookBatches: tally(gcStatuses), transitions: gcTransitions.length, receipts: Object.fromEntries(gcReceipts.map((r) => [r.state, r.n])) },
      settleMs,
      totalMs: Math.round(performance.now() - started),
    });
  }, 240_000);

  it('slow: past the webhook deadline, then past the client timeout', async () => {
    await sql`truncate payments, payment_transitions, outbox, event_deliveries, webhook_receipts restart identity cascade`;
    stack.sandbox.reset();
    stack.sink.events.length = 0;
    const urls = urlsOf(stack.gateways);
    const started = performance.now();
    const deadlineBefore = await metricAcross(urls, 'gateway_webhooks_total', { provider: 'mollie', outcome: 'deadline' });
    const timeoutsBefore = await metricAcross(urls, 'gateway_provider_fetches_total', { provider: 'mollie', outcome: 'timeout' });
    const load = startMollieLoad({ sandbox: stack.sandbox, targets: () => urls, payments: 36, concurrency: 6, paceMs: 40, syncShare: 0.4 });
    await load.advance(Math.floor(load.totalSteps / 5));

    // Slower than the 1 s webhook deadline: answered at the deadline, finished in the background.
    stack.sandbox.setLatency(1800);
    await eventually(async () => (await metricAcross(urls, 'gateway_webhooks_total', { provider: 'mollie', outcome: 'deadline' })) - deadlineBefore >= 5, {
      what: 'webhooks answered at the deadline',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    // Slower than the client's 4 s per-attempt timeout: the fetch gives up, the receipt waits.
    stack.sandbox.setLatency(4500);
    await eventually(async () => (await metricAcross(urls, 'gateway_provider_fetches_total', { provider: 'mollie', outcome: 'timeout' })) - timeoutsBefore >= 3, {
      what: 'provider fetches timing out',
      timeoutMs: 40_000,
      intervalMs: 200,
    });
    stack.sandbox.setLatency(0);
    await load.done;
    const settleMs = await settle(sql, stack.sink, 60_000);

    expect(stack.crashed()).toEqual([]);
    const figures = await checkInvariants(sql, stack, load, { webhook: [200], sync: [200, 409, 502] });
    printFigures('provider-slow', {
      ...figures,
      webhooksAnsweredAtDeadline: (await metricAcross(urls, 'gateway_webhooks_total', { provider: 'mollie', outcome: 'deadline' })) - deadlineBefore,
      fetchTimeouts: (await metricAcross(urls, 'gateway_provider_fetches_total', { provider: 'mollie', outcome: 'timeout' })) - timeoutsBefore,
      settleMs,
      totalMs: Math.round(performance.now() - started),
    });
  }, 120_000);
});
