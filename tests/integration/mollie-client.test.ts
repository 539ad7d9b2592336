/**
 * The real SDK-based Mollie client against the Mollie sandbox on a free port. No
 * database, no Redis: this file only needs the network stack.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMollieProvider, type MollieProviderConfig } from '../../src/providers/mollie/client.js';
import { verifyMollieSignature } from '../../src/providers/mollie/signature.js';
import { parseMollieWebhook } from '../../src/providers/mollie/webhook.js';
import { ProviderError, type PaymentSnapshot } from '../../src/providers/types.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { sendMollieClassicWebhook, sendMollieEventWebhook } from '../../src/sandbox/mollie-webhook-sender.js';

const NO_RETRIES = { strategy: 'none' } as const;

async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function collect(iterable: AsyncIterable<PaymentSnapshot>): Promise<PaymentSnapshot[]> {
  const out: PaymentSnapshot[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('Mollie client against the sandbox', () => {
  let sandbox: MollieSandbox;
  const provider = (overrides: Partial<MollieProviderConfig> = {}) =>
    createMollieProvider({
      accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } },
      apiUrl: sandbox.url,
      retryConfig: NO_RETRIES,
      ...overrides,
    });

  beforeAll(async () => {
    sandbox = await startMollieSandbox({ port: 0 });
  });
  afterAll(async () => {
    await sandbox.close();
  });

  it('fetches a paid payment once and maps amounts, refunds, chargebacks and metadata', async () => {
    const payment = sandbox.createPayment({
      status: 'paid',
      amount: { currency: 'EUR', value: '49.95' },
      method: 'ideal',
      metadata: { invoiceId: 'INV-1' },
      subscriptionId: 'sub_abc123',
    });
    sandbox.addRefund(payment.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'refunded' });
    sandbox.addRefund(payment.id, { amount: { currency: 'EUR', value: '5.00' }, status: 'failed' });
    sandbox.addChargeback(payment.id, { amount: { currency: 'EUR', value: '3.00' } });
    sandbox.addChargeback(payment.id, { amount: { currency: 'EUR', value: '7.00' }, reversed: true });

    const result = await provider().fetchPayment('default', payment.id);

    expect(result.kind).toBe('found');
    if (result.kind !== 'found') return;
    expect(result.snapshot).toMatchObject({
      provider: 'mollie',
      account: 'default',
      providerPaymentId: payment.id,
      status: 'paid',
      providerStatus: 'paid',
      amount: { minor: 4995, currency: 'EUR' },
      refundedMinor: 1000, // the failed refund does not count
      chargedBackMinor: 300, // nor does the reversed chargeback
      mode: 'test',
      method: 'ideal',
      metadata: { invoiceId: 'INV-1' },
    });
    expect(result.snapshot.raw).toMatchObject({ subscriptionId: 'sub_abc123', paidAt: expect.any(String) });
    // The sandbox sends fake consumer details; none of them may survive the mapping.
    expect(sandbox.paymentJson(payment.id)).toHaveProperty('details.consumerAccount');
    expect(result.snapshot.raw).not.toHaveProperty('details');
    expect(JSON.stringify(result.snapshot.raw)).not.toMatch(/T\. TEST|NL53INGB/);
    expect(sandbox.requestCount(payment.id)).toBe(1);
  });

  it('answers not_found for an unknown payment after one request, and skips non-payment ids entirely', async () => {
    const p = provider();
    await expect(p.fetchPayment('default', 'tr_doesNotExist')).resolves.toEqual({ kind: 'not_found' });
    expect(sandbox.requestCount('tr_doesNotExist')).toBe(1);
    await expect(p.fetchPayment('default', 're_notAPayment')).resolves.toEqual({ kind: 'not_found' });
    await expect(p.fetchPayment('default', '')).resolves.toEqual({ kind: 'not_found' });
    expect(sandbox.requestCount('re_notAPayment')).toBe(0);
  });

  it('never retries a 429 itself, even with retries on: one request, rate_limited with the Retry-After', async () => {
    // The SDK's own retry would send 4-7 requests into a 429 within seconds, ignoring a
    // long Retry-After; the 429 surfaces at once and the account is paused instead.
    const payment = sandbox.createPayment({ status: 'paid' });
    sandbox.failNext({ status: 429, count: 2, retryAfterS: 30, paymentId: payment.id });
    const error = await providerError(provider({ retryConfig: undefined }).fetchPayment('default', payment.id));
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: 30_000 });
    expect(sandbox.requestCount(payment.id)).toBe(1);
    sandbox.reset();
  });

  it('turns a 429 into rate_limited with retryAfterMs when retries are off', async () => {
    const payment = sandbox.createPayment();
    sandbox.failNext({ status: 429, count: 1, retryAfterS: 30, paymentId: payment.id });
    const error = await providerError(provider().fetchPayment('default', payment.id));
    expect(error).toMatchObject({ provider: 'mollie', code: 'rate_limited', retryable: true, retryAfterMs: 30_000 });
    expect(sandbox.requestCount(payment.id)).toBe(1);
  });

  it.each([500, 502, 503])('turns a %i into unavailable, retryable', async (status) => {
    const payment = sandbox.createPayment();
    sandbox.failNext({ status, count: 1, paymentId: payment.id });
    const error = await providerError(provider().fetchPayment('default', payment.id));
    expect(error).toMatchObject({ code: 'unavailable', retryable: true });
    expect(error.message).toContain(String(status));
  });

  it('recovers from a 503 when retries are on', async () => {
    const payment = sandbox.createPayment({ status: 'failed' });
    sandbox.failNext({ status: 503, count: 1, paymentId: payment.id });
    await expect(provider({ retryConfig: undefined }).fetchPayment('default', payment.id)).resolves.toMatchObject({
      kind: 'found',
      snapshot: { status: 'failed' },
    });
    expect(sandbox.requestCount(payment.id)).toBe(2);
  });

  it('turns a wrong API key into unauthorized, not retryable, without retrying', async () => {
    const payment = sandbox.createPayment();
    const wrongKey = provider({ accounts: { default: { apiKey: 'test_wrong' } }, retryConfig: undefined });
    const error = await providerError(wrongKey.fetchPayment('default', payment.id));
    expect(error).toMatchObject({ code: 'unauthorized', retryable: false });
    expect(error.message).not.toContain('test_wrong');
    expect(sandbox.requestCount(payment.id)).toBe(1);
  });

  it('times out a slow answer per attempt', async () => {
    const payment = sandbox.createPayment();
    sandbox.setLatency(2000, payment.id);
    const started = Date.now();
    const error = await providerError(provider({ timeoutMs: 200 }).fetchPayment('default', payment.id));
    expect(error).toMatchObject({ code: 'timeout', retryable: true });
    expect(Date.now() - started).toBeLessThan(1500);
    sandbox.setLatency(0, payment.id);
  });

  it('keeps the per-attempt timeout when the caller also passes a signal', async () => {
    const payment = sandbox.createPayment();
    sandbox.setLatency(2000, payment.id);
    const started = Date.now();
    const caller = new AbortController();
    const error = await providerError(provider({ timeoutMs: 200 }).fetchPayment('default', payment.id, { signal: caller.signal }));
    expect(error.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
    sandbox.setLatency(0, payment.id);
  });

  it('stops when the caller aborts', async () => {
    const payment = sandbox.createPayment();
    sandbox.setLatency(2000, payment.id);
    const error = await providerError(provider().fetchPayment('default', payment.id, { signal: AbortSignal.timeout(100) }));
    expect(error).toMatchObject({ code: 'timeout', message: expect.stringMatching(/aborted by the caller/) });
    sandbox.setLatency(0, payment.id);
  });

  it('turns a dropped connection into unavailable', async () => {
    const payment = sandbox.createPayment();
    sandbox.setDown('reset');
    try {
      const error = await providerError(provider().fetchPayment('default', payment.id));
      expect(error).toMatchObject({ code: 'unavailable', retryable: true });
    } finally {
      sandbox.setDown(null);
    }
  });

  it('rejects an account it was not configured for', async () => {
    const error = await providerError(provider().fetchPayment('acme', 'tr_abc'));
    expect(error).toMatchObject({ code: 'unknown_account', retryable: false });
    expect(provider().hasAccount('default')).toBe(true);
    expect(provider().hasAccount('acme')).toBe(false);
  });

  it('resolves refund and chargeback ids to their payment', async () => {
    const first = sandbox.createPayment({ status: 'paid' });
    const second = sandbox.createPayment({ status: 'paid' });
    const refund = sandbox.addRefund(first.id, { amount: { currency: 'EUR', value: '1.00' } });
    sandbox.addRefund(second.id, { amount: { currency: 'EUR', value: '1.00' } }); // newer, listed before the first
    const chargeback = sandbox.addChargeback(second.id);
    const p = provider();

    expect(await p.resolvePaymentId('default', refund.id)).toBe(first.id);
    expect(await p.resolvePaymentId('default', chargeback.id)).toBe(second.id);
    expect(await p.resolvePaymentId('default', first.id)).toBe(first.id);
    expect(await p.resolvePaymentId('default', 're_unknown1')).toBeNull();
    expect(await p.resolvePaymentId('default', 'chb_unknown1')).toBeNull();
    expect(await p.resolvePaymentId('default', 'ord_abc')).toBeNull();
    expect(sandbox.state.requests.filter((r) => r.path === '/v2/refunds' || r.path === '/v2/chargebacks')).toHaveLength(4);
  });

  it('surfaces provider trouble while resolving instead of answering null', async () => {
    const refund = sandbox.addRefund(sandbox.createPayment({ status: 'paid' }).id);
    sandbox.failNext({ status: 500, count: 1 });
    const error = await providerError(provider().resolvePaymentId('default', refund.id));
    expect(error.code).toBe('unavailable');
  });

  it('is scriptable over the JSON control API from another process', async () => {
    const control = (path: string, body?: unknown) =>
      fetch(`${sandbox.url}/__sandbox${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const created = await control('/payments', { id: 'tr_controlApi1', amount: { currency: 'EUR', value: '12.34' } });
    expect(created.status).toBe(201);
    expect(await (await control('/payments/tr_controlApi1/status', { status: 'paid' })).json()).toMatchObject({ status: 'paid' });
    expect((await control('/payments/tr_controlApi1/refunds', { amount: { currency: 'EUR', value: '2.00' }, status: 'refunded' })).status).toBe(201);
    expect((await control('/faults', { status: 503, count: 1, paymentId: 'tr_controlApi1' })).status).toBe(200);

    const p = provider();
    await expect(p.fetchPayment('default', 'tr_controlApi1')).rejects.toMatchObject({ code: 'unavailable' });
    await expect(p.fetchPayment('default', 'tr_controlApi1')).resolves.toMatchObject({
      kind: 'found',
      snapshot: { status: 'paid', amount: { minor: 1234 }, refundedMinor: 200 },
    });
    expect(await (await control('/requests/tr_controlApi1')).json()).toEqual({ id: 'tr_controlApi1', count: 2 });

    const bad = await control('/payments', { amount: { currency: 'EUR', value: '1.5' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: expect.stringMatching(/exactly 2 decimals/) });
    expect((await control('/payments', { id: 'tr_controlApi1' })).status).toBe(409);
  });

  it('moves a payment along a scripted timeline with wall-clock time', async () => {
    const payment = sandbox.createPayment({ timeline: [{ atMs: 150, status: 'pending' }, { atMs: 300, status: 'paid' }] });
    const p = provider();
    await expect(p.fetchPayment('default', payment.id)).resolves.toMatchObject({ snapshot: { status: 'open' } });
    const paid = await waitFor(async () => {
      const result = await p.fetchPayment('default', payment.id);
      return result.kind === 'found' && result.snapshot.status === 'paid' ? result.snapshot : undefined;
    });
    expect(paid.raw).toHaveProperty('paidAt');
  });
});

describe('Mollie client listing recent payments', () => {
  let sandbox: MollieSandbox;
  const now = Date.now();
  const minutesAgo = (m: number) => new Date(now - m * 60_000);
  let ids: string[];

  beforeAll(async () => {
    sandbox = await startMollieSandbox();
    // Created out of order on purpose: the sandbox sorts like Mollie, newest first.
    ids = [3, 0, 6, 1, 5, 2, 4].map((m) => sandbox.createPayment({ id: `tr_ago${m}min`, createdAt: minutesAgo(m), status: 'paid', method: 'ideal' }).id);
  });
  afterAll(async () => {
    await sandbox.close();
  });

  const listRequests = () => sandbox.state.requests.filter((r) => r.path === '/v2/payments');

  it('pages newest first, follows next links, and stops at the cutoff', async () => {
    const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: `${sandbox.url}/v2/` });
    const before = listRequests().length;
    const listed = await collect(provider.listRecentPayments('default', { cutoff: minutesAgo(4.5), limit: 2 }));
    expect(listed.map((s) => s.providerPaymentId)).toEqual(['tr_ago0min', 'tr_ago1min', 'tr_ago2min', 'tr_ago3min', 'tr_ago4min']);
    // Pages [0,1], [2,3], [4,5]: the third page holds the first payment past the cutoff.
    expect(listRequests().length - before).toBe(3);
    for (const snapshot of listed) {
      expect(snapshot.status).toBe('paid');
      expect(snapshot.raw).not.toHaveProperty('details');
    }
    expect(ids).toHaveLength(7);
  });

  it('does not fetch another page once the cutoff is reached', async () => {
    const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url });
    const before = listRequests().length;
    const listed = await collect(provider.listRecentPayments('default', { cutoff: minutesAgo(0.5), limit: 2 }));
    expect(listed.map((s) => s.providerPaymentId)).toEqual(['tr_ago0min']);
    expect(listRequests().length - before).toBe(1);
  });

  it('lists everything when the cutoff is older than every payment', async () => {
    const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url });
    const listed = await collect(provider.listRecentPayments('default', { cutoff: minutesAgo(60), limit: 3 }));
    expect(listed).toHaveLength(7);
  });

  it('raises a ProviderError when a page fails midway', async () => {
    const provider = createMollieProvider({
      accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } },
      apiUrl: sandbox.url,
      retryConfig: NO_RETRIES,
    });
    const seen: string[] = [];
    const consume = async () => {
      let first = true;
      for await (const snapshot of provider.listRecentPayments('default', { cutoff: minutesAgo(60), limit: 2 })) {
        seen.push(snapshot.providerPaymentId);
        // Break the next page request, after the first page arrived.
        if (first) sandbox.failNext({ status: 500, count: 1 });
        first = false;
      }
    };
    await expect(consume()).rejects.toMatchObject({ code: 'unavailable' });
    expect(seen).toEqual(['tr_ago0min', 'tr_ago1min']);
  });
});

describe('Mollie webhook sender', () => {
  interface Received {
    headers: IncomingMessage['headers'];
    body: Buffer;
  }
  let server: Server;
  let url: string;
  const received: Received[] = [];
  let answers: number[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.statusCode = answers.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/mollie`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts id=tr_... like Mollie and retries on the scaled schedule until a 200', async () => {
    received.length = 0;
    answers = [500, 204, 200];
    const result = await sendMollieClassicWebhook(url, 'tr_webhook1', { schedule: [0, 1000, 2000, 4000], scale: 0.01 });
    expect(result.delivered).toBe(true);
    // A 204 is not Mollie's 200 OK: it is retried too.
    expect(result.attempts.map((a) => a.status)).toEqual([500, 204, 200]);
    expect(result.attempts[2]!.startedAt.getTime() - result.attempts[0]!.startedAt.getTime()).toBeGreaterThanOrEqual(25);
    expect(received).toHaveLength(3);
    expect(received[0]!.headers['user-agent']).toBe('Mollie HTTP client/1.0');
    expect(received[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const parsed = parseMollieWebhook(received[0]!.headers['content-type'], received[0]!.body);
    expect(parsed).toEqual({ kind: 'classic', id: 'tr_webhook1' });
  });

  it('gives up after the last attempt of the schedule', async () => {
    received.length = 0;
    answers = [503, 503, 503];
    const result = await sendMollieClassicWebhook(url, 'tr_webhook2', { schedule: [0, 100, 100], scale: 0.01 });
    expect(result.delivered).toBe(false);
    expect(result.attempts).toHaveLength(3);
  });

  it('sends signed next-gen events the gateway can verify and parse', async () => {
    received.length = 0;
    answers = [];
    const result = await sendMollieEventWebhook(
      url,
      { type: 'payment.paid', entityId: 'tr_event1', entity: { resource: 'payment', id: 'tr_event1' }, mode: 'snapshot' },
      { secret: 'whsec_test', prefixSignature: true, scale: 0.01 },
    );
    expect(result.delivered).toBe(true);
    const [delivery] = received;
    const signature = delivery!.headers['x-mollie-signature'] as string;
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifyMollieSignature(delivery!.body, signature, ['whsec_test'])).toBe('valid');
    expect(verifyMollieSignature(delivery!.body, signature, ['whsec_other'])).toBe('invalid');
    expect(parseMollieWebhook(delivery!.headers['content-type'], delivery!.body)).toMatchObject({
      kind: 'event',
      type: 'payment.paid',
      entityId: 'tr_event1',
      entity: { id: 'tr_event1' },
    });
  });

  it('sends a timeline step’s webhook when its timer fires before Date.now() reaches the step', async () => {
    received.length = 0;
    answers = [];
    const sandbox = await startMollieSandbox({ autoWebhooks: { scale: 0.01 } });
    // Timers run on the event loop's monotonic clock, the step's time is wall-clock: the
    // timer can fire while Date.now() is still a little short of it. Made certain here by
    // holding the wall clock 5 ms back once the step is scheduled.
    const wallClock = Date.now.bind(Date);
    let behind: { mockRestore(): void } | undefined;
    try {
      const payment = sandbox.createPayment({ webhookUrl: url, timeline: [{ atMs: 40, status: 'paid' }] });
      behind = vi.spyOn(Date, 'now').mockImplementation(() => wallClock() - 5);
      const delivery = await waitFor(async () => sandbox.state.deliveries.find((d) => d.paymentId === payment.id));
      expect(delivery.result.delivered).toBe(true);
      expect(received.map((r) => r.body.toString())).toEqual([`id=${payment.id}`]);
    } finally {
      behind?.mockRestore();
      await sandbox.close();
    }
  });

  it('lets the sandbox send a payment’s webhook itself when its status changes (autoWebhooks)', async () => {
    received.length = 0;
    answers = [];
    const sandbox = await startMollieSandbox({ autoWebhooks: { scale: 0.01 } });
    try {
      const payment = sandbox.createPayment({ webhookUrl: url, timeline: [{ atMs: 50, status: 'paid' }] });
      sandbox.setStatus(sandbox.createPayment({ webhookUrl: url }).id, 'pending'); // open → pending: Mollie sends nothing
      const delivery = await waitFor(async () => sandbox.state.deliveries.find((d) => d.paymentId === payment.id));
      expect(delivery.result.delivered).toBe(true);
      expect(received.map((r) => r.body.toString())).toEqual([`id=${payment.id}`]);
    } finally {
      await sandbox.close();
    }
  });
});
