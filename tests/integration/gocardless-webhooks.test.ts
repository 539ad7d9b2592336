/**
 * POST /webhooks/gocardless in process (app.request) against real Postgres, real Redis
 * and the GoCardless sandbox on a free port: signatures, big batches, out-of-order and
 * late-failure events, and forwarding of non-payment events.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createGoCardlessProvider } from '../../src/providers/gocardless/client.js';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import type { GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { buildGoCardlessWebhook, seededRandom } from '../../src/sandbox/gocardless-webhook-sender.js';
import { gocardlessIntake } from '../../src/webhooks/gocardless-receipts.js';
import { recoverGoCardlessEvents } from '../../src/reconciliation/gocardless-recovery.js';
import { getReceipts } from '../../src/webhooks/receipts.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';

const NEW_SECRET = 'gc_webhook_secret_new';
const OLD_SECRET = 'gc_webhook_secret_old';

let database: TestDatabase;
let sql: postgres.Sql;
let sandbox: GoCardlessSandbox;
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startGoCardlessSandbox({ webhookSecret: NEW_SECRET });
  const provider = createGoCardlessProvider({ accounts: { default: { accessToken: sandbox.accessToken } }, apiUrl: sandbox.url });
  deps = buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, GOCARDLESS_WEBHOOK_SECRETS: `${NEW_SECRET},${OLD_SECRET}` },
    { providers: { gocardless: provider }, lockKeyPrefix: redisPrefix('gc-webhooks') },
  );
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await sandbox?.close();
  await sql?.end();
  await database?.drop();
});

// Registered after the cleanup above, so it runs first (hooks run as a stack): every event
// this file's scenarios produced must match its published JSON Schema.
afterAll(() => expectOutboxMatchesSchemas(database.url, ['payment.failed', 'payment.charged_back', 'payment.chargeback_reversed', 'gocardless.mandates.cancelled', 'gocardless.mandates.expired']));

function post(body: string, headers: Record<string, string>, path = '/webhooks/gocardless') {
  return app.request(path, { method: 'POST', body, headers });
}

/** Sends these events as one signed GoCardless webhook and waits for the background processing. */
async function deliver(events: readonly GoCardlessEvent[], options: { path?: string; secret?: string } = {}) {
  const webhook = buildGoCardlessWebhook(events, options.secret ?? NEW_SECRET);
  const started = performance.now();
  const res = await post(webhook.body, webhook.headers, options.path);
  const ackMs = performance.now() - started;
  await deps.background.drain();
  return { res, ackMs };
}

async function receiptCount(): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts`;
  return row!.n;
}

async function webhookOutcome(outcome: string): Promise<number> {
  const metric = await deps.metrics.webhooks.get();
  return metric.values.find((value) => value.labels.provider === 'gocardless' && value.labels.outcome === outcome)?.value ?? 0;
}

async function paymentRow(id: string) {
  const [row] = await sql<{ id: number; status: string; provider_status: string; version: number; refunded_minor: number }[]>`
    select id::int as id, status, provider_status, version, refunded_minor::int as refunded_minor from payments where provider = 'gocardless' and provider_payment_id = ${id}`;
  return row;
}

async function transitions(id: string) {
  return sql<{ version: number; previous_status: string | null; new_status: string; new_provider_status: string }[]>`
    select t.version, t.previous_status, t.new_status, t.new_provider_status
    from payment_transitions t join payments p on p.id = t.payment_id
    where p.provider = 'gocardless' and p.provider_payment_id = ${id} order by t.version`;
}

async function paymentEventTypes(id: string) {
  const rows = await sql<{ type: string }[]>`select type from outbox where provider = 'gocardless' and provider_payment_id = ${id} order by payment_version, id`;
  return rows.map((row) => row.type);
}

describe('signature checks: 498 and nothing stored', () => {
  it('refuses a bad, a missing and a tampered signature, counted, and stores nothing', async () => {
    const payment = sandbox.createPayment();
    const events = sandbox.state.events.filter((event) => event.links.payment === payment.id);
    const before = await receiptCount();
    const counted = { invalid: await webhookOutcome('signature_invalid'), missing: await webhookOutcome('signature_missing') };

    const wrong = buildGoCardlessWebhook(events, NEW_SECRET, { signWith: 'not-a-configured-secret' });
    const bad = await post(wrong.body, wrong.headers);
    expect(bad.status).toBe(498);
    const badBody = await bad.json();
    expect(badBody.error).toMatchObject({ code: 'signature_invalid', retryable: false });
    expect(badBody.error.message).toMatch(/Webhook-Signature does not match/);
    expect(badBody.error.requestId).toMatch(/^req_/);

    const unsigned = buildGoCardlessWebhook(events, NEW_SECRET, { omitSignature: true });
    const missing = await post(unsigned.body, unsigned.headers);
    expect(missing.status).toBe(498);
    expect((await missing.json()).error).toMatchObject({ code: 'signature_missing', message: 'missing Webhook-Signature header' });

    // Signed, then one byte of the body changed in flight.
    const signed = buildGoCardlessWebhook(events, NEW_SECRET, { webhookId: 'WB0TAMPER' });
    const tampered = buildGoCardlessWebhook(events, NEW_SECRET, { webhookId: 'WB0TAMPER', tamperBody: (body) => body.replace('"created"', '"createe"') });
    expect(tampered.body).not.toBe(signed.body);
    expect(tampered.headers['Webhook-Signature']).toBe(signed.headers['Webhook-Signature']);
    expect((await post(tampered.body, tampered.headers)).status).toBe(498);

    // Not hex, and a valid signature cut short, are refused too.
    const good = buildGoCardlessWebhook(events, NEW_SECRET);
    expect((await post(good.body, { ...good.headers, 'Webhook-Signature': 'sha256=abc' })).status).toBe(498);
    expect((await post(good.body, { ...good.headers, 'Webhook-Signature': good.headers['Webhook-Signature']!.slice(0, 62) })).status).toBe(498);

    await deps.background.drain();
    expect(await receiptCount()).toBe(before);
    expect(await paymentRow(payment.id)).toBeUndefined();
    expect(sandbox.fetchCount(payment.id)).toBe(0);
    expect(await webhookOutcome('signature_invalid')).toBe(counted.invalid + 4);
    expect(await webhookOutcome('signature_missing')).toBe(counted.missing + 1);
  });

  it('accepts both secrets during a rotation, and upper-case hex', async () => {
    const a = sandbox.createPayment();
    const b = sandbox.createPayment();
    const c = sandbox.createPayment();
    const eventsFor = (id: string) => sandbox.state.events.filter((event) => event.links.payment === id);

    expect((await deliver(eventsFor(a.id), { secret: OLD_SECRET })).res.status).toBe(204);
    expect((await deliver(eventsFor(b.id), { secret: NEW_SECRET })).res.status).toBe(204);
    const upper = buildGoCardlessWebhook(eventsFor(c.id), NEW_SECRET);
    const res = await post(upper.body, { ...upper.headers, 'Webhook-Signature': upper.headers['Webhook-Signature']!.toUpperCase() });
    expect(res.status).toBe(204);
    await deps.background.drain();
    for (const id of [a.id, b.id, c.id]) expect(await paymentRow(id)).toMatchObject({ status: 'pending', provider_status: 'pending_submission' });
  });

  it('answers 400 for a signed body that is not a batch, 404 for an unknown account; neither stores anything', async () => {
    const before = await receiptCount();
    for (const body of ['{"events": [', '[]', '{"events": [{"id": "EV1"}]}', '{"meta": {}}']) {
      const res = await post(body, { 'Content-Type': 'application/json', 'Webhook-Signature': signGoCardlessBody(body, NEW_SECRET) });
      expect(res.status, body).toBe(400);
      expect((await res.json()).error.code).toBe('malformed_webhook');
    }
    const payment = sandbox.createPayment();
    const webhook = buildGoCardlessWebhook(sandbox.state.events.filter((event) => event.links.payment === payment.id), NEW_SECRET);
    const unknown = await post(webhook.body, webhook.headers, '/webhooks/gocardless/no-such-account');
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.code).toBe('unknown_account');
    // The account check comes after the signature: an unsigned caller learns nothing about accounts.
    expect((await post(webhook.body, { 'Content-Type': 'application/json' }, '/webhooks/gocardless/no-such-account')).status).toBe(498);
    // The named default account is the same as the bare route.
    expect((await post(webhook.body, webhook.headers, '/webhooks/gocardless/default')).status).toBe(204);
    await deps.background.drain();
    expect(await receiptCount()).toBe(before + 1);
    const empty = '{"events":[],"meta":{"webhook_id":"WB1"}}';
    expect((await post(empty, { 'Webhook-Signature': signGoCardlessBody(empty, NEW_SECRET) })).status).toBe(204);
  });

  it('answers 404 when GoCardless is not configured at all', async () => {
    const bare = buildTestDeps({ DATABASE_URL: database.url, GOCARDLESS_WEBHOOK_SECRETS: NEW_SECRET });
    try {
      const webhook = buildGoCardlessWebhook([], NEW_SECRET);
      const res = await createApp(bare).request('/webhooks/gocardless', { method: 'POST', body: webhook.body, headers: webhook.headers });
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('provider_not_configured');
    } finally {
      await bare.close();
    }
  });
});

describe('a 500-event batch', () => {
  it('is acknowledged quickly, then fully applied with one fetch per payment', async () => {
    const payments = Array.from({ length: 100 }, () => sandbox.createPayment({ amount: 2500, currency: 'EUR' }));
    for (const payment of payments) {
      sandbox.setPaymentStatus(payment.id, 'submitted');
      sandbox.setPaymentStatus(payment.id, 'confirmed');
      sandbox.setPaymentStatus(payment.id, 'paid_out');
    }
    const others = Array.from({ length: 100 }, (_, i) =>
      sandbox.createEvent(i % 2 === 0 ? { resourceType: 'mandates', action: 'created' } : { resourceType: 'subscriptions', action: 'created' }),
    );
    const ids = new Set(payments.map((payment) => payment.id));
    const events = [...sandbox.state.events.filter((event) => event.links.payment && ids.has(event.links.payment)), ...others];
    expect(events).toHaveLength(500);
    // Out of order, as GoCardless may send them.
    const random = seededRandom(4);
    const shuffled = [...events].sort(() => random() - 0.5);

    const webhook = buildGoCardlessWebhook(shuffled, NEW_SECRET);
    const started = performance.now();
    const res = await post(webhook.body, webhook.headers);
    const ackMs = performance.now() - started;
    console.log(`gocardless: 500-event batch (${webhook.body.length} bytes) acknowledged in ${ackMs.toFixed(1)} ms`);
    expect(res.status).toBe(204);
    // GoCardless gives 10 s; the acknowledgement must not wait for 100 provider fetches.
    expect(ackMs).toBeLessThan(3000);
    const [stored] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where event_id in ${sql(events.map((e) => e.id))}`;
    expect(stored!.n).toBe(500);

    const processStarted = performance.now();
    await deps.background.drain();
    console.log(`gocardless: 500-event batch fully applied ${(performance.now() - processStarted).toFixed(0)} ms after the acknowledgement`);

    for (const payment of payments) {
      expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', provider_status: 'paid_out', version: 1 });
      expect(sandbox.fetchCount(payment.id)).toBe(1);
      expect(await paymentEventTypes(payment.id)).toEqual(['payment.paid']);
    }
    const states = await sql<{ state: string; n: number }[]>`
      select state, count(*)::int as n from webhook_receipts where event_id in ${sql(events.map((e) => e.id))} group by state`;
    expect(states).toEqual([{ state: 'processed', n: 500 }]);
    const [forwarded] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where dedupe_key in ${sql(others.map((e) => `gocardless:event:${e.id}`))}`;
    expect(forwarded!.n).toBe(100);
  });
});

describe('statuses that are not monotonic', () => {
  it('takes a late failure after paid_out, and stale events never move the payment back', async () => {
    const payment = sandbox.createPayment({ amount: 1000 });
    const created = sandbox.state.events.at(-1)!;
    expect((await deliver([created])).res.status).toBe(204);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'pending', provider_status: 'pending_submission' });

    const submitted = sandbox.setPaymentStatus(payment.id, 'submitted').event!;
    const confirmed = sandbox.setPaymentStatus(payment.id, 'confirmed').event!;
    const paidOut = sandbox.setPaymentStatus(payment.id, 'paid_out').event!;
    // Delivered well after the fact, newest first: one fetch sees paid_out.
    expect((await deliver([paidOut, submitted])).res.status).toBe(204);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', provider_status: 'paid_out' });

    const failed = sandbox.setPaymentStatus(payment.id, 'failed', { cause: 'insufficient_funds', description: 'late failure' }).event!;
    expect((await deliver([failed])).res.status).toBe(204);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'failed', provider_status: 'failed' });

    // The confirmed event arrives last of all (never seen before, so it is processed):
    // the fetch it triggers sees failed, and nothing moves.
    const fetchesBefore = sandbox.fetchCount(payment.id);
    expect((await deliver([confirmed, paidOut])).res.status).toBe(204);
    expect(sandbox.fetchCount(payment.id)).toBe(fetchesBefore + 1);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'failed', provider_status: 'failed', version: 3 });

    const steps = await transitions(payment.id);
    expect(steps.map((t) => [t.previous_status, t.new_status, t.new_provider_status])).toEqual([
      [null, 'pending', 'pending_submission'],
      ['pending', 'paid', 'paid_out'],
      ['paid', 'failed', 'failed'],
    ]);
    expect(await paymentEventTypes(payment.id)).toEqual(['payment.pending', 'payment.paid', 'payment.failed']);
    // The fetched payment does not say why; the event that announced the failure does.
    const [failedEvent] = await sql<{ data: Record<string, unknown> }[]>`
      select payload->'data' as data from outbox where provider_payment_id = ${payment.id} and type = 'payment.failed'`;
    expect(failedEvent!.data).toMatchObject({ failureReason: 'insufficient_funds', failureCode: 'insufficient_funds', failureMessage: 'late failure', sequenceType: null });
    expect(failedEvent!.data.links).toMatchObject({ mandate: expect.stringMatching(/^MD/) });
  });

  it('follows confirmed to paid_out as one paid, then a chargeback and its reversal', async () => {
    const payment = sandbox.createPayment({ amount: 700 });
    sandbox.setPaymentStatus(payment.id, 'confirmed');
    await deliver(sandbox.state.events.filter((event) => event.links.payment === payment.id));
    const paidOut = sandbox.setPaymentStatus(payment.id, 'paid_out').event!;
    await deliver([paidOut]);
    const chargedBack = sandbox.setPaymentStatus(payment.id, 'charged_back').event!;
    await deliver([chargedBack]);
    const reversed = sandbox.setPaymentStatus(payment.id, 'paid_out').event!;
    expect(reversed.action).toBe('chargeback_cancelled');
    await deliver([reversed, chargedBack]);
    const steps = await transitions(payment.id);
    expect(steps.map((t) => t.new_provider_status)).toEqual(['confirmed', 'paid_out', 'charged_back', 'paid_out']);
    expect(steps.filter((t) => t.new_status === 'paid' && t.previous_status !== 'paid')).toHaveLength(2);
    expect(await paymentEventTypes(payment.id)).toEqual(['payment.paid', 'payment.updated', 'payment.charged_back', 'payment.paid', 'payment.chargeback_reversed']);
  });
});

describe('events about other resources', () => {
  it('forwards each exactly once: mandate cancelled and expired, refunds, across batches and recovery', async () => {
    const mandate = 'MD000CANCEL01';
    const dormant = 'MD000EXPIRE01';
    const pending = sandbox.createPayment({ mandate, amount: 1500 });
    const paid = sandbox.createPayment({ amount: 5000 });
    sandbox.setPaymentStatus(paid.id, 'confirmed');
    await deliver(sandbox.state.events.filter((event) => event.links.payment === pending.id || event.links.payment === paid.id));

    const [cancelled, cancelledPayment] = sandbox.cancelMandate(mandate);
    const [expired] = sandbox.expireMandate(dormant);
    const { event: refund } = sandbox.refundPayment(paid.id, { amount: 2000 });
    expect(cancelledPayment!.links).toMatchObject({ payment: pending.id, parent_event: cancelled!.id });

    expect((await deliver([cancelled!, cancelledPayment!, expired!])).res.status).toBe(204);
    // The same mandate event again, in another batch with something new.
    expect((await deliver([refund, cancelled!])).res.status).toBe(204);
    // And once more through the events API.
    const recovered = await recoverGoCardlessEvents(deps, { account: 'default' });
    expect(recovered.outcome).toBe('completed');

    const forwarded = await sql<{ dedupe_key: string; type: string; payload: { type: string; timestamp: string; data: Record<string, unknown> } }[]>`
      select dedupe_key, type, payload from outbox where dedupe_key in ${sql([cancelled!, expired!, refund].map((e) => `gocardless:event:${e.id}`))} order by id`;
    expect(forwarded.map((row) => row.type)).toEqual(['gocardless.mandates.cancelled', 'gocardless.mandates.expired', 'gocardless.refunds.created']);
    expect(forwarded[0]!.payload).toMatchObject({
      type: 'gocardless.mandates.cancelled',
      timestamp: cancelled!.created_at,
      data: { provider: 'gocardless', account: 'default', eventId: cancelled!.id, resourceType: 'mandates', action: 'cancelled', resourceId: mandate, event: cancelled },
    });
    expect(forwarded[1]!.payload.data).toMatchObject({ resourceId: dormant, event: { details: { cause: 'mandate_expired' } } });

    // The payment the mandate took with it, and the refunded one, come out as payment events.
    expect(await paymentRow(pending.id)).toMatchObject({ status: 'canceled', provider_status: 'cancelled' });
    expect(await paymentRow(paid.id)).toMatchObject({ status: 'paid', refunded_minor: 2000 });
    expect(await paymentEventTypes(paid.id)).toEqual(['payment.paid', 'payment.refunded', 'refund.pending']);
    // Payment events are not forwarded raw: their meaning is the payment.* events.
    const [raw] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where dedupe_key = ${`gocardless:event:${cancelledPayment!.id}`}`;
    expect(raw!.n).toBe(0);

    // Processing the same receipt again (a lost lease, a manual replay) adds nothing.
    const [receipt] = await sql<{ id: number }[]>`select id::int as id from webhook_receipts where provider = 'gocardless' and event_id = ${cancelled!.id}`;
    const outcomes = await gocardlessIntake.handle(deps, await getReceipts(deps.db, [receipt!.id]));
    expect(outcomes.get(receipt!.id)).toEqual({ state: 'processed' });
    const [again] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where dedupe_key = ${`gocardless:event:${cancelled!.id}`}`;
    expect(again!.n).toBe(1);
    const [receipts] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where event_id = ${cancelled!.id}`;
    expect(receipts!.n).toBe(1);
  });

  it('leaves a receipt pending when its payment cannot be fetched, and the retry forwards nothing twice', async () => {
    const payment = sandbox.createPayment();
    const { event: refund } = sandbox.refundPayment(payment.id, { amount: 100 });
    sandbox.failNext(1, 503);
    expect((await deliver([refund])).res.status).toBe(204);
    const [receipt] = await sql<{ id: number; state: string; last_error: string | null }[]>`
      select id::int as id, state, last_error from webhook_receipts where event_id = ${refund.id}`;
    expect(receipt).toMatchObject({ state: 'pending' });
    expect(receipt!.last_error).toMatch(/unavailable/);
    const [none] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where dedupe_key = ${`gocardless:event:${refund.id}`}`;
    expect(none!.n).toBe(0);

    const outcomes = await gocardlessIntake.handle(deps, await getReceipts(deps.db, [receipt!.id]));
    expect(outcomes.get(receipt!.id)).toEqual({ state: 'processed' });
    const [one] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where dedupe_key = ${`gocardless:event:${refund.id}`}`;
    expect(one!.n).toBe(1);
    expect(await paymentRow(payment.id)).toMatchObject({ refunded_minor: 100 });
  });
});
