/**
 * Mollie webhooks end to end, in process: the real app (app.request), the real Mollie
 * adapter over the wire-exact sandbox on a free port, real Postgres and Redis.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { paymentLockKey } from '../../src/lock/locker.js';
import { createMollieProvider, type MollieProvider } from '../../src/providers/mollie/client.js';
import { signMollieBody } from '../../src/providers/mollie/signature.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { buildMollieEvent, sendMollieEventWebhook, type MollieEventInput } from '../../src/sandbox/mollie-webhook-sender.js';
import { receiptHandlers } from '../../src/webhooks/handlers.js';
import { newMollieReceipt } from '../../src/webhooks/mollie-receipts.js';
import { parseMollieWebhook } from '../../src/providers/mollie/webhook.js';
import { retryDueReceipts, runReceiptWorker } from '../../src/webhooks/receipt-worker.js';
import { recordReceipts } from '../../src/webhooks/receipts.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually } from '../helpers/deps.js';

const OLD_SECRET = 'old-signing-secret';
const NEW_SECRET = 'new-signing-secret';
const SHOP2_KEY = 'test_shop2sandboxkey';

let database: TestDatabase;
let sandbox: MollieSandbox;
let provider: MollieProvider;
let deps: Deps;
let app: ReturnType<typeof createApp>;
let sql: postgres.Sql;

function depsWith(env: Record<string, string> = {}): Deps {
  return buildTestDeps(
    {
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      MOLLIE_WEBHOOK_SECRETS: `${NEW_SECRET},${OLD_SECRET}`,
      LOCK_WAIT_MS: '300',
      ...env,
    },
    { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('mollie-webhooks') },
  );
}

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = await startMollieSandbox({ apiKeys: [SANDBOX_DEFAULT_API_KEY, SHOP2_KEY] });
  // No SDK retries: each test decides what Mollie answers to each call.
  provider = createMollieProvider({
    accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY }, shop2: { apiKey: SHOP2_KEY } },
    apiUrl: sandbox.url,
    retryConfig: { strategy: 'none' },
  });
  deps = depsWith();
  app = createApp(deps);
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await deps?.close();
  await sandbox?.close();
  await database?.drop();
});

// Registered after the cleanup above, so it runs first (hooks run as a stack): every event
// this file's scenarios produced must match its published JSON Schema.
afterAll(() => expectOutboxMatchesSchemas(database.url, ['payment.refunded', 'payment.charged_back']));

beforeEach(() => {
  // Faults, latency and down mode are per test; payments stay (ids are unique).
  sandbox.state.faults.length = 0;
  sandbox.state.latencyMs = 0;
  sandbox.state.paymentLatencyMs.clear();
  sandbox.setDown(null);
});

function classic(id: string, path = '/webhooks/mollie', target = app) {
  return target.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mollie HTTP client/1.0' },
    body: new URLSearchParams({ id }).toString(),
  });
}

function signedEvent(event: MollieEventInput | Record<string, unknown>, secret: string, options: { prefix?: boolean; upper?: boolean } = {}) {
  const body = JSON.stringify('resource' in event ? event : buildMollieEvent(event as MollieEventInput));
  let signature = signMollieBody(body, secret);
  if (options.upper) signature = signature.toUpperCase();
  return app.request('/webhooks/mollie', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mollie-signature': options.prefix ? `sha256=${signature}` : signature },
    body,
  });
}

/** The sandbox's own sender (exact bytes and headers Mollie sends), delivered into app.request. */
const intoApp: typeof fetch = (input, init) => Promise.resolve(app.request(String(input), init));

interface ReceiptRow {
  id: number;
  state: string;
  event_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  signature: string;
  attempts: number;
  last_error: string | null;
  wait_s: number | null;
}

async function receiptsFor(resourceId: string): Promise<ReceiptRow[]> {
  return sql<ReceiptRow[]>`
    select id::int, state, event_id, resource_type, resource_id, signature, attempts, last_error,
           extract(epoch from next_attempt_at - now())::float as wait_s
    from webhook_receipts where resource_id = ${resourceId} order by id`;
}

async function receiptCount(): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts`;
  return row!.n;
}

async function paymentRow(id: string) {
  const rows = await sql<{ id: number; account: string; status: string; refunded_minor: number; charged_back_minor: number; version: number }[]>`
    select id::int, account, status, refunded_minor::int, charged_back_minor::int, version from payments
    where provider = 'mollie' and provider_payment_id = ${id}`;
  return rows[0];
}

async function eventTypes(id: string): Promise<string[]> {
  const rows = await sql<{ type: string }[]>`select type from outbox where provider_payment_id = ${id} order by payment_version, id`;
  return rows.map((r) => r.type);
}

async function forceDue(receiptIds: number[]) {
  await sql`update webhook_receipts set next_attempt_at = now() - interval '1 second' where id = any(${receiptIds}::bigint[]) and state = 'pending'`;
}

async function metricValue(outcome: string): Promise<number> {
  const metric = await deps.metrics.webhooks.get();
  return metric.values.find((v) => v.labels.provider === 'mollie' && v.labels.outcome === outcome)?.value ?? 0;
}

describe('classic webhooks (id=...)', () => {
  it('stores the receipt, syncs the payment through the Mollie API and answers exactly 200', async () => {
    const payment = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '49.95' }, method: 'ideal' });
    const res = await classic(payment.id);
    expect(res.status).toBe(200);

    const [receipt] = await receiptsFor(payment.id);
    expect(receipt).toMatchObject({ state: 'processed', signature: 'absent', event_id: null, resource_type: 'payment' });
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', version: 1 });
    expect(await eventTypes(payment.id)).toEqual(['payment.paid']);
    const [transition] = await sql<{ source: string; receipt_id: number }[]>`
      select source, receipt_id::int from payment_transitions t join payments p on p.id = t.payment_id
      where p.provider_payment_id = ${payment.id}`;
    expect(transition).toEqual({ source: 'webhook', receipt_id: receipt!.id });
    expect(sandbox.requestCount(payment.id)).toBe(1);
  });

  it('never trusts the body: a webhook for a payment that is still open writes open, not paid', async () => {
    const payment = sandbox.createPayment({ status: 'open' });
    expect((await classic(payment.id)).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'open' });
    expect(await eventTypes(payment.id)).toEqual(['payment.open']);
  });

  it('fetches an id we have never seen (a subscription payment) and creates it', async () => {
    const payment = sandbox.createPayment({ status: 'paid', sequenceType: 'recurring', subscriptionId: 'sub_abc123', customerId: 'cst_abc123' });
    expect((await classic(payment.id)).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
  });

  it('still fetches an id Mollie does not know; the 404 answers 200, creates nothing and marks the receipt ignored', async () => {
    const res = await classic('tr_doesNotExist42');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true });
    expect(sandbox.requestCount('tr_doesNotExist42')).toBe(1);
    expect(await paymentRow('tr_doesNotExist42')).toBeUndefined();
    expect(await receiptsFor('tr_doesNotExist42')).toMatchObject([{ state: 'ignored' }]);
  });

  it('answers 200 to other Mollie ids, counts them without storing a receipt, and calls nobody', async () => {
    const before = sandbox.state.requests.length;
    for (const id of ['sub_8JfGzs6v3K', 'ord_kEn1PlbGa', 'pl_4Y0eZitmBnQ6IDoMqZQKh', 'cst_8wmqcHMN4U']) {
      expect((await classic(id)).status, id).toBe(200);
      expect(await receiptsFor(id), id).toEqual([]);
    }
    expect(sandbox.state.requests.length).toBe(before);
  });

  it('rejects bodies that cannot be a Mollie webhook with 400 and a clear message, storing nothing', async () => {
    const before = await receiptCount();
    const cases: [string, string, RegExp][] = [
      ['application/x-www-form-urlencoded', '', /body is empty/],
      ['application/x-www-form-urlencoded', 'foo=bar', /no id parameter/],
      ['application/x-www-form-urlencoded', 'id=tr_a&id=tr_b', /more than one id/],
      ['application/x-www-form-urlencoded', 'id=%3Cscript%3E', /must look like a Mollie id/],
      ['text/plain', 'id=tr_abc', /unsupported content type "text\/plain"/],
      ['application/json', '{not json', /not valid JSON/],
    ];
    for (const [type, body, message] of cases) {
      const res = await app.request('/webhooks/mollie', { method: 'POST', headers: { 'content-type': type }, body });
      expect(res.status, body).toBe(400);
      const json = await res.json();
      expect(json.error.code, body).toBe('bad_request');
      expect(json.error.message, body).toMatch(/^not a Mollie webhook: /);
      expect(json.error.message, body).toMatch(message);
    }
    const huge = await app.request('/webhooks/mollie', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `id=tr_abc&pad=${'x'.repeat(300 * 1024)}`,
    });
    expect(huge.status).toBe(413);
    expect(await receiptCount()).toBe(before);
  });

  it('routes /webhooks/mollie/:account to that account, and answers 404 to an unknown one, storing nothing', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    expect((await classic(payment.id, '/webhooks/mollie/shop2')).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ account: 'shop2', status: 'paid' });

    const before = await receiptCount();
    for (const path of ['/webhooks/mollie/nope', '/webhooks/mollie/bad%20name']) {
      const res = await classic(payment.id, path);
      expect(res.status, path).toBe(404);
      expect((await res.json()).error, path).toMatchObject({ code: 'unknown_account', message: expect.stringMatching(/no Mollie account named .* nothing was stored/) });
    }
    expect(await receiptCount()).toBe(before);
  });
});

describe('refunds and chargebacks', () => {
  it('re_ and chb_ webhooks lead to their payment: amounts and events change, the status stays paid', async () => {
    const payment = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '50.00' } });
    expect((await classic(payment.id)).status).toBe(200);

    const refund = sandbox.addRefund(payment.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'refunded' });
    expect((await classic(refund.id)).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', refunded_minor: 1000, charged_back_minor: 0 });
    expect(await receiptsFor(refund.id)).toMatchObject([{ state: 'processed', resource_type: 'refund' }]);

    // A refund that fails gives the money back: the refunded amount goes down again.
    sandbox.setRefundStatus(refund.id, 'failed');
    expect((await classic(refund.id)).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ refunded_minor: 0 });

    const chargeback = sandbox.addChargeback(payment.id, { amount: { currency: 'EUR', value: '50.00' } });
    expect((await classic(chargeback.id)).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', charged_back_minor: 5000 });

    sandbox.reverseChargeback(chargeback.id);
    expect((await classic(chargeback.id)).status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', charged_back_minor: 0, version: 5 });

    expect(await eventTypes(payment.id)).toEqual([
      'payment.paid',
      'payment.refunded',
      'payment.refund_reversed',
      'payment.charged_back',
      'payment.chargeback_reversed',
      // The refund's own events (filed under the payment, without a payment version: last).
      'refund.refunded',
      'refund.failed',
    ]);
  });

  it('an unknown refund or chargeback id answers 200 and is ignored', async () => {
    for (const id of ['re_unknown1234', 'chb_unknown1234']) {
      expect((await classic(id)).status).toBe(200);
      expect(await receiptsFor(id)).toMatchObject([{ state: 'ignored' }]);
    }
  });

  it('receipts for one payment (tr_, re_, a payment event, a refund event) cost one fetch', async () => {
    const payment = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '20.00' } });
    const refund = sandbox.addRefund(payment.id, { amount: { currency: 'EUR', value: '5.00' }, status: 'processing' });
    const deliveries: [string, string, 'absent' | 'valid'][] = [
      ['application/x-www-form-urlencoded', `id=${payment.id}`, 'absent'],
      ['application/x-www-form-urlencoded', `id=${refund.id}`, 'absent'],
      ['application/json', JSON.stringify(buildMollieEvent({ type: 'payment.paid', entityId: payment.id })), 'valid'],
      ['application/json', JSON.stringify(buildMollieEvent({ type: 'refund.processing', entityId: refund.id })), 'valid'],
    ];
    const receipts = deliveries.map(([type, body, signature]) => {
      const rawBody = new TextEncoder().encode(body);
      const webhook = parseMollieWebhook(type, rawBody);
      if (webhook.kind === 'invalid') throw new Error(webhook.message);
      return newMollieReceipt({ account: 'default', webhook, rawBody, headers: { 'content-type': type }, signature });
    });
    const recorded = await recordReceipts(deps.db, receipts);
    await forceDue(recorded.map((r) => r.id));

    const result = await retryDueReceipts(deps, receiptHandlers);
    expect(result.claimed).toBeGreaterThanOrEqual(4);
    expect(sandbox.requestCount(payment.id)).toBe(1);
    const states = await sql<{ state: string }[]>`select state from webhook_receipts where id = any(${recorded.map((r) => r.id)}::bigint[]) order by id`;
    expect(states.map((s) => s.state)).toEqual(['processed', 'processed', 'processed', 'processed']);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid', refunded_minor: 500, version: 1 });
  });
});

describe('next-gen signed events', () => {
  it('accepts a good signature (bare hex, from the sandbox sender) and syncs the payment it names', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const sent = await sandbox.notifyEvent(payment.id, { url: 'http://gateway.test/webhooks/mollie', secret: NEW_SECRET, fetcher: intoApp, schedule: [0] });
    expect(sent.attempts.map((a) => a.status)).toEqual([200]);
    const eventId = (JSON.parse(sent.body) as { id: string }).id;
    expect(await receiptsFor(payment.id)).toMatchObject([{ state: 'processed', signature: 'valid', event_id: eventId }]);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
  });

  it('accepts the rotated-out secret and the sha256= prefix during rotation', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const sent = await sendMollieEventWebhook(
      'http://gateway.test/webhooks/mollie',
      { type: 'payment.paid', entityId: payment.id },
      { secret: OLD_SECRET, prefixSignature: true, fetcher: intoApp, schedule: [0] },
    );
    expect(sent.delivered).toBe(true);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
  });

  it('answers 401 to a bad signature: nothing stored, nothing fetched, counted', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const before = await receiptCount();
    const counted = await metricValue('bad_signature');
    const event = { type: 'payment.paid', entityId: payment.id };
    for (const res of [await signedEvent(event, 'some-other-secret'), await signedEvent(event, NEW_SECRET, { upper: true })]) {
      expect(res.status).toBe(401);
      expect((await res.json()).error).toMatchObject({ code: 'invalid_signature', message: expect.stringMatching(/does not match/) });
    }
    // The body tampered with after signing.
    const body = JSON.stringify(buildMollieEvent(event));
    const tampered = await app.request('/webhooks/mollie', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mollie-signature': signMollieBody(body, NEW_SECRET) },
      body: body.replace('payment.paid', 'payment.open'),
    });
    expect(tampered.status).toBe(401);
    expect(await receiptCount()).toBe(before);
    expect(sandbox.requestCount(payment.id)).toBe(0);
    expect(await metricValue('bad_signature')).toBe(counted + 3);
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toMatch(/gateway_webhooks_total\{provider="mollie",outcome="bad_signature"\} \d+/);
  });

  it('answers 401 to an unsigned event (it could squat an event id)', async () => {
    const res = await app.request('/webhooks/mollie', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(buildMollieEvent({ type: 'payment.paid', entityId: 'tr_unsigned1' })),
    });
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('signature_required');
    expect(await receiptsFor('tr_unsigned1')).toEqual([]);
  });

  it('an event delivered twice is stored once and synced once', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const event = buildMollieEvent({ type: 'payment.paid', entityId: payment.id });
    const first = await signedEvent(event, NEW_SECRET);
    const second = await signedEvent(event, NEW_SECRET);
    expect([first.status, second.status]).toEqual([200, 200]);
    const rows = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where event_id = ${event.id as string}`;
    expect(rows[0]!.n).toBe(1);
    expect(sandbox.requestCount(payment.id)).toBe(1);
    expect(await eventTypes(payment.id)).toEqual(['payment.paid']);
    expect(await metricValue('duplicate')).toBeGreaterThanOrEqual(1);
  });

  it('does not trust the embedded entity: it fetches, and writes what Mollie says', async () => {
    const payment = sandbox.createPayment({ status: 'open' });
    const forged = { ...sandbox.paymentJson(payment.id), status: 'paid', paidAt: '2026-01-01T00:00:00+00:00' };
    const res = await signedEvent({ type: 'payment.paid', entityId: payment.id, entity: forged, mode: 'snapshot' }, NEW_SECRET);
    expect(res.status).toBe(200);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'open' });
    expect(sandbox.requestCount(payment.id)).toBe(1);
  });

  it('keeps a snapshot event without its embedded payment: no consumer names or IBANs at rest', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const entity = {
      ...(sandbox.paymentJson(payment.id) as Record<string, unknown>),
      details: { consumerName: 'Jan Jansen', consumerAccount: 'NL53INGB0654422370', consumerBic: 'INGBNL2A' },
    };
    const res = await signedEvent({ type: 'payment.paid', entityId: payment.id, entity, mode: 'snapshot' }, NEW_SECRET);
    expect(res.status).toBe(200);
    const rows = await sql<{ body: Buffer; headers: Record<string, string> }[]>`
      select body, headers from webhook_receipts where resource_id = ${payment.id}`;
    expect(rows).toHaveLength(1);
    const stored = rows[0]!.body.toString('utf8');
    expect(JSON.parse(stored)).toMatchObject({ entityId: payment.id, type: 'payment.paid' });
    expect(stored).not.toContain('_embedded');
    for (const value of Object.values(entity.details as Record<string, unknown>)) {
      if (typeof value === 'string' && value.length > 3) expect(stored).not.toContain(value);
    }
    expect(rows[0]!.headers['x-gateway-redacted']).toBe('_embedded');
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
  });

  it('stores events that are not about a payment and answers 200', async () => {
    for (const [type, entityId] of [['payout.completed', 'po_abc123'], ['payment-link.paid', 'pl_abc123'], ['sales-invoice.paid', 'invoice_abc123']]) {
      const res = await signedEvent({ type: type!, entityId: entityId! }, NEW_SECRET);
      expect(res.status, type).toBe(200);
      expect(await receiptsFor(entityId!), type).toMatchObject([{ state: 'ignored', signature: 'valid' }]);
    }
  });
});

describe('when Mollie is slow, throttles or fails, nothing acknowledged is dropped', () => {
  it('429 with Retry-After: answered 200, the receipt waits at least that long, then the retry completes it', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    sandbox.failNext({ status: 429, count: 1, retryAfterS: 9, paymentId: payment.id });
    expect((await classic(payment.id)).status).toBe(200);
    const [pending] = await receiptsFor(payment.id);
    expect(pending).toMatchObject({ state: 'pending', last_error: expect.stringMatching(/^rate_limited: /) });
    expect(pending!.wait_s).toBeGreaterThan(8);
    expect(await paymentRow(payment.id)).toBeUndefined();

    // Until the Retry-After has passed, nothing calls Mollie for this account: the retry is refused here.
    await forceDue([pending!.id]);
    await retryDueReceipts(deps, receiptHandlers);
    expect(sandbox.requestCount(payment.id)).toBe(1);
    // Time passes (the pause ends), and the retry completes it.
    await deps.rateLimitPauses.resume('mollie', 'default');
    await forceDue([pending!.id]);
    await retryDueReceipts(deps, receiptHandlers);
    expect(await receiptsFor(payment.id)).toMatchObject([{ state: 'processed', attempts: 2 }]);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
    expect(sandbox.requestCount(payment.id)).toBe(2);
  });

  it('Mollie down (connections dropped): answered 200; the receipt worker completes it once Mollie is back', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    sandbox.setDown('reset');
    expect((await classic(payment.id)).status).toBe(200);
    const [pending] = await receiptsFor(payment.id);
    expect(pending).toMatchObject({ state: 'pending', last_error: expect.stringMatching(/^unavailable: cannot reach Mollie/) });

    sandbox.setDown(null);
    const worker = new AbortController();
    const running = runReceiptWorker(deps, receiptHandlers, { signal: worker.signal, idleMs: 50 });
    try {
      await forceDue([pending!.id]);
      await eventually(async () => (await receiptsFor(payment.id))[0]?.state === 'processed', { what: 'the worker to process the receipt' });
    } finally {
      worker.abort();
      await running;
    }
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
    expect(await eventTypes(payment.id)).toEqual(['payment.paid']);
  });

  it('a webhook that finds the lock held (a poll mid-fetch) stays pending and is synced again afterwards', async () => {
    const payment = sandbox.createPayment({ status: 'open' });
    let receiptId = 0;
    await deps.locker.withLock(paymentLockKey('mollie', payment.id), async () => {
      // The poll holding the lock saw "open"; meanwhile the customer pays and Mollie calls.
      sandbox.setStatus(payment.id, 'paid');
      expect((await classic(payment.id)).status).toBe(200);
      const [pending] = await receiptsFor(payment.id);
      expect(pending).toMatchObject({ state: 'pending', last_error: expect.stringMatching(/payment busy/) });
      receiptId = pending!.id;
    });
    expect(sandbox.requestCount(payment.id)).toBe(0);
    await forceDue([receiptId]);
    await retryDueReceipts(deps, receiptHandlers);
    expect(await receiptsFor(payment.id)).toMatchObject([{ state: 'processed' }]);
    expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
  });

  it('a slow Mollie: answered 200 at the deadline while the sync finishes in the background', async () => {
    const quick = depsWith({ MOLLIE_WEBHOOK_DEADLINE_MS: '300' });
    try {
      const payment = sandbox.createPayment({ status: 'paid' });
      sandbox.setLatency(1500, payment.id);
      const started = performance.now();
      const res = await classic(payment.id, '/webhooks/mollie', createApp(quick));
      const answeredMs = performance.now() - started;
      expect(res.status).toBe(200);
      expect(answeredMs).toBeLessThan(1200);
      expect(await receiptsFor(payment.id)).toMatchObject([{ state: 'pending' }]);
      await eventually(async () => (await receiptsFor(payment.id))[0]?.state === 'processed', { what: 'the background sync' });
      expect(await paymentRow(payment.id)).toMatchObject({ status: 'paid' });
      expect(sandbox.requestCount(payment.id)).toBe(1);
    } finally {
      await quick.close();
    }
  });
});

describe('the return-page sync against the real Mollie adapter', () => {
  it('POST /v1/payments/mollie/:id/sync and GET /v1/payments/mollie/:id', async () => {
    const payment = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '12.34' }, method: 'ideal', metadata: { invoiceId: 'INV-9' } });
    const res = await app.request(`/v1/payments/mollie/${payment.id}/sync`, { method: 'POST', headers: auth });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      provider: 'mollie',
      id: payment.id,
      status: 'paid',
      providerStatus: 'paid',
      amount: { value: '12.34', currency: 'EUR' },
      method: 'ideal',
      metadata: { invoiceId: 'INV-9' },
      version: 1,
    });
    expect(await (await app.request(`/v1/payments/mollie/${payment.id}`, { headers: auth })).json()).toEqual(body);
  });

  it('maps Mollie trouble to clear statuses: 404 unknown, 503 + Retry-After when throttled, 502 when down', async () => {
    const unknown = await app.request('/v1/payments/mollie/tr_neverCreated1/sync', { method: 'POST', headers: auth });
    expect(unknown.status).toBe(404);

    const payment = sandbox.createPayment({ status: 'paid' });
    sandbox.failNext({ status: 429, count: 1, retryAfterS: 3, paymentId: payment.id });
    const throttled = await app.request(`/v1/payments/mollie/${payment.id}/sync`, { method: 'POST', headers: auth });
    expect(throttled.status).toBe(503);
    expect(throttled.headers.get('retry-after')).toBe('3');
    expect((await throttled.json()).error).toMatchObject({ code: 'provider_rate_limited', retryable: true });
    // The pause has ended.
    await deps.rateLimitPauses.resume('mollie', 'default');

    sandbox.setDown('error');
    const down = await app.request(`/v1/payments/mollie/${payment.id}/sync`, { method: 'POST', headers: auth });
    expect(down.status).toBe(502);
    expect((await down.json()).error).toMatchObject({ code: 'provider_unavailable', retryable: true });

    sandbox.setDown(null);
    const back = await app.request(`/v1/payments/mollie/${payment.id}/sync`, { method: 'POST', headers: auth });
    expect(back.status).toBe(200);
    expect((await back.json()).status).toBe('paid');
  });
});
