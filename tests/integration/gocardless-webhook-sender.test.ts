/**
 * The GoCardless webhook sender (batching, signing, retries) against a real receiving
 * server, alone and as the sandbox uses it to push its events.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyGoCardlessSignature } from '../../src/providers/gocardless/signature.js';
import { parseGoCardlessBatch, type GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { seededRandom, sendGoCardlessWebhooks, webhookRetryDelays } from '../../src/sandbox/gocardless-webhook-sender.js';
import { waitFor } from '../helpers/gocardless-client.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** A real HTTP receiver that answers with whatever `respond` says. */
async function startReceiver(respond: (request: Received, index: number) => number | { status: number; headers?: Record<string, string> }) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
      received.push(request);
      const answer = respond(request, received.length - 1);
      const { status, headers = {} } = typeof answer === 'number' ? { status: answer } : answer;
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/gocardless`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function fakeEvents(count: number): GoCardlessEvent[] {
  const base = Date.parse('2024-03-22T17:05:25.000Z');
  return Array.from({ length: count }, (_, i) => ({
    id: `EV${String(i).padStart(12, '0')}`,
    created_at: new Date(base + i * 1000).toISOString(),
    resource_type: 'payments',
    action: 'confirmed',
    links: { payment: `PM${String(i).padStart(12, '0')}` },
    details: { origin: 'gocardless', cause: 'payment_confirmed' },
    metadata: {},
  }));
}

describe('GoCardless webhook sender', () => {
  const secret = 'endpoint-secret-1';
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  it('batches, signs and sends GoCardless\'s headers and envelope', async () => {
    receiver = await startReceiver(() => 204);
    const events = fakeEvents(7);
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events, batchSize: 3, retry: false });
    expect(report.delivered).toBe(true);
    expect(report.batches.map((batch) => batch.eventIds.length)).toEqual([3, 3, 1]);
    expect(report.batches.map((batch) => batch.status)).toEqual([204, 204, 204]);
    expect(receiver.received).toHaveLength(3);

    const seen: string[] = [];
    const webhookIds = new Set<string>();
    for (const request of receiver.received) {
      expect(request.headers['user-agent']).toBe('gocardless-webhook-service/1.2');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers.origin).toBe('https://api-sandbox.gocardless.com');
      expect(verifyGoCardlessSignature(request.body, request.headers['webhook-signature'] as string, [secret])).toBe('valid');
      const parsed = parseGoCardlessBatch(request.body);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) continue;
      expect(parsed.webhookId).toMatch(/^WB[0-9A-F]{12}$/);
      webhookIds.add(parsed.webhookId!);
      seen.push(...parsed.events.map((event) => event.id));
    }
    expect(webhookIds.size).toBe(3);
    expect(seen).toEqual(events.map((event) => event.id));
  });

  it('caps batches at 250 events by default', async () => {
    receiver = await startReceiver(() => 200);
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(251), retry: false });
    expect(report.batches.map((batch) => batch.eventIds.length)).toEqual([250, 1]);
    await expect(sendGoCardlessWebhooks({ url: receiver.url, secret, events: [], batchSize: 251 })).rejects.toThrow(RangeError);
  });

  it('retries non-2xx on the scaled schedule until it succeeds', async () => {
    receiver = await startReceiver((_request, index) => (index < 2 ? 500 : 204));
    const retry = { delaysMs: [60_000, 120_000, 600_000], scale: 0.001 };
    expect(webhookRetryDelays(retry)).toEqual([60, 120, 600]);
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(2), retry });
    const [batch] = report.batches;
    expect(batch!.attempts.map((attempt) => attempt.status)).toEqual([500, 500, 204]);
    expect(batch!.delivered).toBe(true);
    // The same webhook (id, body, signature) is retried.
    expect(new Set(receiver.received.map((request) => request.body.toString()))).toHaveProperty('size', 1);
    const [first, second, third] = receiver.received.map((request) => request.at);
    expect(second! - first!).toBeGreaterThanOrEqual(55);
    expect(third! - second!).toBeGreaterThanOrEqual(115);
  });

  it('gives up after the last retry, and counts redirects and timeouts as failures', async () => {
    receiver = await startReceiver((_request, index) => (index === 0 ? { status: 302, headers: { location: '/elsewhere' } } : 503));
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(1), retry: { delaysMs: [5, 5], scale: 1 } });
    expect(report.delivered).toBe(false);
    expect(report.batches[0]!.attempts.map((attempt) => attempt.status)).toEqual([302, 503, 503]);
    expect(receiver.received).toHaveLength(3);

    const silent = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
      const timedOut = await sendGoCardlessWebhooks({ url, secret, events: fakeEvents(1), retry: false, timeoutMs: 100 });
      expect(timedOut.batches[0]!.attempts[0]).toMatchObject({ status: null, error: 'no response within 100 ms' });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('reorders and duplicates deterministically with a seeded random', async () => {
    receiver = await startReceiver(() => 204);
    const events = fakeEvents(20);
    const run = () =>
      sendGoCardlessWebhooks({
        url: receiver!.url,
        secret,
        events,
        batchSize: 5,
        order: 'shuffle',
        duplicateRate: 0.3,
        duplicateEventIds: [events[0]!.id],
        random: seededRandom(42),
        retry: false,
      });
    const first = await run();
    const second = await run();
    const ids = (report: typeof first) => report.batches.map((batch) => batch.eventIds);
    expect(ids(first)).toEqual(ids(second));

    const originals = first.batches.filter((batch) => !batch.duplicate).flatMap((batch) => batch.eventIds);
    expect([...originals].sort()).toEqual(events.map((event) => event.id));
    expect(originals).not.toEqual(events.map((event) => event.id));
    const duplicates = first.batches.filter((batch) => batch.duplicate).flatMap((batch) => batch.eventIds);
    expect(duplicates).toContain(events[0]!.id);
    expect(duplicates.length).toBeGreaterThan(1);
    expect(new Set(duplicates).size).toBe(duplicates.length);
  });

  it('can sign wrongly, omit the signature or tamper with the body', async () => {
    receiver = await startReceiver(() => 498);
    const events = fakeEvents(1);
    await sendGoCardlessWebhooks({ url: receiver.url, secret, events, retry: false, signWith: 'another-secret' });
    await sendGoCardlessWebhooks({ url: receiver.url, secret, events, retry: false, omitSignature: true });
    await sendGoCardlessWebhooks({ url: receiver.url, secret, events, retry: false, tamperBody: (body) => body.replace('confirmed', 'failed') });
    const [wrong, missing, tampered] = receiver.received;
    expect(verifyGoCardlessSignature(wrong!.body, wrong!.headers['webhook-signature'] as string, [secret])).toBe('invalid');
    expect(verifyGoCardlessSignature(missing!.body, missing!.headers['webhook-signature'] as string | undefined, [secret])).toBe('absent');
    expect(tampered!.body.toString()).toContain('"failed"');
    expect(verifyGoCardlessSignature(tampered!.body, tampered!.headers['webhook-signature'] as string, [secret])).toBe('invalid');
  });

  it('stops retrying when aborted', async () => {
    receiver = await startReceiver(() => 500);
    const controller = new AbortController();
    const sending = sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(1), retry: { delaysMs: [60_000], scale: 1 }, signal: controller.signal });
    await waitFor(() => (receiver!.received.length === 1 ? true : undefined), 'the first attempt');
    controller.abort();
    const report = await sending;
    expect(report.delivered).toBe(false);
    expect(report.batches[0]!.attempts).toHaveLength(1);
  });

  describe('from the sandbox', () => {
    let sandbox: GoCardlessSandbox;
    beforeEach(async () => {
      sandbox = await startGoCardlessSandbox({ webhookSecret: secret });
    });
    afterEach(async () => {
      await sandbox.close();
    });

    it('pushes new events to a configured endpoint, batched, signed and retried', async () => {
      receiver = await startReceiver((_request, index) => (index === 0 ? 500 : 200));
      sandbox.setWebhookEndpoint({ url: receiver.url, debounceMs: 20, batchSize: 2, retry: { delaysMs: [10, 10], scale: 1 } });
      const payment = sandbox.createPayment();
      sandbox.setPaymentStatus(payment.id, 'submitted');
      sandbox.setPaymentStatus(payment.id, 'confirmed');
      await waitFor(() => (sandbox.state.webhookDeliveries.length === 2 && sandbox.state.webhookDeliveries.every((batch) => batch.delivered) ? true : undefined), 'two delivered batches');
      await sandbox.webhooksIdle();

      const delivered = new Set<string>();
      for (const request of receiver.received) {
        expect(verifyGoCardlessSignature(request.body, request.headers['webhook-signature'] as string, [secret])).toBe('valid');
        const parsed = parseGoCardlessBatch(request.body);
        if (parsed.ok) parsed.events.forEach((event) => delivered.add(event.id));
      }
      expect([...delivered].sort()).toEqual(sandbox.state.events.map((event) => event.id).sort());
      expect(sandbox.state.webhookDeliveries[0]!.attempts.map((attempt) => attempt.status)).toEqual([500, 200]);

      // Later events go out in a later webhook; earlier ones are not resent.
      const before = receiver.received.length;
      sandbox.setPaymentStatus(payment.id, 'paid_out');
      await waitFor(() => (receiver!.received.length > before ? true : undefined), 'the next webhook');
      await sandbox.webhooksIdle();
      const last = parseGoCardlessBatch(receiver.received.at(-1)!.body);
      expect(last.ok && last.events.map((event) => event.action)).toEqual(['paid_out']);
    });

    it('delivers on request through the control API', async () => {
      receiver = await startReceiver(() => 204);
      const payment = sandbox.createPayment();
      sandbox.setPaymentStatus(payment.id, 'failed');
      const response = await fetch(`${sandbox.url}/__sandbox/webhooks/deliver`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: receiver.url, order: 'reverse' }),
      });
      expect(response.status).toBe(200);
      const report = (await response.json()) as { delivered: boolean; batches: Array<{ eventIds: string[] }> };
      expect(report.delivered).toBe(true);
      expect(report.batches[0]!.eventIds).toEqual(sandbox.state.events.map((event) => event.id).reverse());

      // Nothing new: an empty delivery sends nothing.
      const again = await sandbox.deliverWebhooks({ url: receiver.url });
      expect(again.batches).toHaveLength(0);
      // Explicit ids are sent again (a GoCardless "retry webhook").
      const resent = await sandbox.deliverWebhooks({ url: receiver.url, eventIds: [sandbox.state.events[0]!.id] });
      expect(resent.batches[0]!.status).toBe(204);
      expect(receiver.received).toHaveLength(2);
    });
  });
});
