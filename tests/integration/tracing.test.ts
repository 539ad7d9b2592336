/**
 * OpenTelemetry: a Mollie webhook makes one trace, from the server span through the
 * receipt, the sync, the lock, the provider fetch and the write, every payment span
 * carrying the payment id. Read from an in-memory exporter behind the real SDK set-up.
 */
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForRedis, type Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { tracesExporterKind } from '../../src/observability/tracing.js';
import { startTracing, type Tracing } from '../../src/observability/tracing-setup.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, testEnv } from '../helpers/deps.js';
import { drainRelay, SINK_SECRET } from '../helpers/outbound-events.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

let database: TestDatabase;
let sandbox: MollieSandbox;
let deps: Deps;
let tracing: Tracing;
const exporter = new InMemorySpanExporter();

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = await startMollieSandbox();
  const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url, retryConfig: { strategy: 'none' } });
  deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL }, { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('tracing') });
  // The first webhook's lock must find Redis connected (a busy machine can take longer than the first request to connect).
  expect(await waitForRedis(deps, 10_000)).toBe(true);
  tracing = startTracing(testEnv({}), { exporter })!;
});

afterAll(async () => {
  await tracing?.shutdown();
  await deps?.close();
  await sandbox?.close();
  await database?.drop();
});

describe('tracing', () => {
  it('is off unless the OTEL_* variables configure it', () => {
    expect(tracesExporterKind(testEnv({}))).toBeNull();
    expect(tracesExporterKind(testEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }))).toBe('otlp');
    expect(tracesExporterKind(testEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }))).toBe('otlp');
    expect(tracesExporterKind(testEnv({ OTEL_TRACES_EXPORTER: 'console' }))).toBe('console');
    expect(tracesExporterKind(testEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }))).toBeNull();
    expect(tracesExporterKind(testEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }))).toBeNull();
    expect(startTracing(testEnv({}))).toBeNull();
  });

  it('follows a webhook through receipt, sync, lock, provider fetch and write in one trace', async () => {
    const payment = sandbox.createPayment();
    sandbox.setStatus(payment.id, 'paid');
    const response = await createApp(deps).request('/webhooks/mollie', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ id: payment.id }).toString(),
    });
    expect(response.status).toBe(200);
    await deps.background.drain();
    await tracing.flush();

    const spans = exporter.getFinishedSpans();
    const server = spans.find((span) => span.name === 'POST /webhooks/mollie');
    expect(server, spans.map((span) => span.name).join(', ')).toBeDefined();
    const trace = spans.filter((span) => span.spanContext().traceId === server!.spanContext().traceId);
    const one = (name: string): ReadableSpan => {
      const found = trace.filter((span) => span.name === name);
      expect(found.map((span) => span.name), `${name} in ${trace.map((span) => span.name).join(', ')}`).toEqual([name]);
      return found[0]!;
    };
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
    const receipt = one('webhook.receipt');
    const sync = one('payment.sync');
    const lock = one('payment.lock');
    const fetch = one('provider.fetch_payment');
    const write = one('payment.write');

    expect(parentOf(receipt)).toBe(server!.spanContext().spanId);
    expect(trace.map((span) => span.spanContext().spanId)).toContain(parentOf(sync));
    expect(parentOf(lock)).toBe(sync.spanContext().spanId);
    expect(parentOf(fetch)).toBe(lock.spanContext().spanId);
    expect(parentOf(write)).toBe(lock.spanContext().spanId);
    for (const span of [sync, lock, fetch, write]) expect(span.attributes['payment.id'], span.name).toBe(payment.id);
    expect(server!.attributes['http.route']).toBe('/webhooks/mollie');
    expect(server!.attributes['http.response.status_code']).toBe(200);
    expect(sync.attributes['gateway.outcome']).toBe('changed');
    expect(lock.attributes['lock.outcome']).toBe('held');
    expect(write.attributes['payment.changed']).toBe(true);
    // In order: the receipt is durable before the fetch, the write after it.
    const start = (span: ReadableSpan) => span.startTime[0] * 1e9 + span.startTime[1];
    expect(start(receipt)).toBeLessThan(start(fetch));
    expect(start(fetch)).toBeLessThan(start(write));
  });

  it('gives every delivery attempt a span of its own, named by event, sink and payment, in the trace of the webhook that made the event', async () => {
    const payment = sandbox.createPayment();
    sandbox.setStatus(payment.id, 'paid');
    const app = createApp(deps);
    const posted = await app.request('/webhooks/mollie', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ id: payment.id }).toString(),
    });
    expect(posted.status).toBe(200);
    // A sink that fails this payment's event once: two attempts, two spans.
    const failedOnce = new Set<string>();
    const receiver = await startReceiver((request) => {
      if (request.json?.data.paymentId !== payment.id || failedOnce.has(request.id)) return { status: 200 };
      failedOnce.add(request.id);
      return { status: 503 };
    });
    const relaying = buildTestDeps({ DATABASE_URL: database.url, EVENT_SINK_URLS: receiver.url, EVENT_SINK_SECRET: SINK_SECRET });
    try {
      await drainRelay(relaying, { retryDelaysMs: [10, 10, 10] });
      await tracing.flush();
      const [event] = receiver.accepted().filter((r) => r.json?.data.paymentId === payment.id);
      expect(event).toBeDefined();
      const spans = exporter.getFinishedSpans().filter((span) => span.name === 'event.deliver' && span.attributes['event.id'] === event!.id);
      expect(spans.map((span) => [span.attributes['gateway.outcome'], span.attributes['http.response.status_code']])).toEqual([
        ['failed', 503],
        ['delivered', 200],
      ]);
      // The webhook's trace goes on to every delivery: each attempt is a child of the write that made the event.
      const [write] = exporter.getFinishedSpans().filter((span) => span.name === 'payment.write' && span.attributes['payment.id'] === payment.id);
      expect(write).toBeDefined();
      const server = exporter.getFinishedSpans().find((span) => span.name === 'POST /webhooks/mollie' && span.spanContext().traceId === write!.spanContext().traceId);
      expect(server, 'the write belongs to the webhook request\'s trace').toBeDefined();
      for (const span of spans) {
        expect(span.attributes).toMatchObject({ 'payment.id': payment.id, 'event.type': event!.json!.type, 'sink.kind': 'http' });
        expect(span.spanContext().traceId).toBe(write!.spanContext().traceId);
        expect(span.parentSpanContext?.spanId).toBe(write!.spanContext().spanId);
      }
    } finally {
      await relaying.close();
      await receiver.close();
    }
  });
});
