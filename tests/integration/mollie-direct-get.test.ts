/**
 * The direct GET (src/providers/mollie/direct-get.ts), over both of its transports
 * (`fetch`, and Node's own http as the Node entry runs it), against the SDK path, on the
 * same sandbox payloads: every payment maps to the same snapshot, and every failure to
 * the same ProviderError (code, retryable, Retry-After). Only the network stack is needed.
 */
import { createServer, type Server } from 'node:net';
import { PaymentResponse$inboundSchema } from 'mollie-api-typescript/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMollieProvider, type MollieProviderConfig } from '../../src/providers/mollie/client.js';
import { mapMolliePayment, type MolliePayment } from '../../src/providers/mollie/mapping.js';
import { nodePlainGet } from '../../src/providers/plain-get-node.js';
import { ProviderError, type FetchResult } from '../../src/providers/types.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { SANDBOX_PAYMENT_STATUSES } from '../../src/sandbox/mollie/state.js';

const NO_RETRIES = { strategy: 'none' } as const;

type Outcome = { result: FetchResult } | { error: { code: string; retryable: boolean; retryAfterMs: number | undefined; message: string } };

describe('Mollie payment fetch: direct GET and SDK give the same answer', () => {
  let sandbox: MollieSandbox;
  /** `direct`: over fetch; `direct-node`: over Node's http (src/providers/plain-get-node.ts). */
  type Path = 'direct' | 'direct-node' | 'sdk';
  const DIRECT_PATHS = ['direct', 'direct-node'] as const;
  const provider = (path: Path, overrides: Partial<MollieProviderConfig> = {}) =>
    createMollieProvider({
      accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } },
      apiUrl: sandbox.url,
      retryConfig: NO_RETRIES,
      paymentFetch: path === 'sdk' ? 'sdk' : 'direct',
      ...(path === 'direct-node' ? { plainGet: nodePlainGet() } : {}),
      ...overrides,
    });

  async function outcome(paymentFetch: Path, id: string, overrides: Partial<MollieProviderConfig> = {}): Promise<Outcome> {
    try {
      return { result: await provider(paymentFetch, overrides).fetchPayment('default', id) };
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      return { error: { code: error.code, retryable: error.retryable, retryAfterMs: error.retryAfterMs, message: error.message } };
    }
  }

  beforeAll(async () => {
    sandbox = await startMollieSandbox({ port: 0 });
  });
  afterAll(async () => {
    await sandbox.close();
  });

  it('maps every status, amount shape, metadata shape, refund and chargeback to the same snapshot', async () => {
    const ids: string[] = [];
    const metadatas: unknown[] = [{ invoiceId: 'INV-1', nested: { a: [1, 2] } }, 'order-42', null, ['a', 'b']];
    for (const [index, status] of SANDBOX_PAYMENT_STATUSES.entries()) {
      const payment = sandbox.createPayment({
        status,
        amount: index % 3 === 0 ? { currency: 'JPY', value: '1200' } : { currency: 'EUR', value: '49.95' },
        method: index % 2 === 0 ? 'ideal' : null,
        metadata: metadatas[index % metadatas.length],
        sequenceType: index % 2 === 0 ? 'oneoff' : 'recurring',
        customerId: 'cst_8wmqcHMN4U',
        mandateId: index % 2 === 0 ? 'mdt_h3gAaD5zP' : null,
        subscriptionId: index % 2 === 0 ? 'sub_rVKGtNd6s3' : null,
        settlementId: 'stl_jDk30akdN',
        details: { consumerName: 'Piet Mondriaan', consumerAccount: 'NL53INGB0618365937', failureReason: 'insufficient_funds', bankReasonCode: 'AM04' },
      });
      ids.push(payment.id);
    }
    const refunded = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '100.00' } });
    sandbox.addRefund(refunded.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'refunded' });
    sandbox.addRefund(refunded.id, { amount: { currency: 'EUR', value: '5.00' }, status: 'pending' });
    sandbox.addChargeback(refunded.id, { amount: { currency: 'EUR', value: '3.00' } });
    sandbox.addChargeback(refunded.id, { amount: { currency: 'EUR', value: '7.00' }, reversed: true });
    ids.push(refunded.id);

    for (const id of ids) {
      const sdk = await outcome('sdk', id);
      for (const path of DIRECT_PATHS) {
        const direct = await outcome(path, id);
        expect(direct, `${path} ${id}`).toEqual(sdk);
        expect('result' in direct && direct.result.kind, id).toBe('found');
      }
    }
  });

  it('maps the documented wire payload the same way whether the SDK parsed it or not', () => {
    const wire = sandbox.paymentJson(sandbox.createPayment({ status: 'paid', metadata: { a: 1 }, details: { consumerName: 'x', failureReason: 'y' } }).id);
    const viaSdk = mapMolliePayment(PaymentResponse$inboundSchema.parse(wire), 'acme');
    const direct = mapMolliePayment(wire as unknown as MolliePayment, 'acme');
    expect(direct).toEqual(viaSdk);
  });

  it('answers unknown, refused, rate-limited, failing and malformed the same way', async () => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const cases: Array<[string, () => void, string, Partial<MollieProviderConfig>?]> = [
      ['unknown payment', () => {}, 'tr_unknown1234'],
      ['refused key', () => {}, payment.id, { accounts: { default: { apiKey: 'test_revokedkey' } } }],
      ['429 with Retry-After', () => sandbox.failNext({ status: 429, count: 1, retryAfterS: 7, paymentId: payment.id }), payment.id],
      ['500', () => sandbox.failNext({ status: 500, count: 1, paymentId: payment.id }), payment.id],
      ['503', () => sandbox.failNext({ status: 503, count: 1, paymentId: payment.id }), payment.id],
      ['connection reset', () => sandbox.setDown('reset'), payment.id],
    ];
    for (const [name, arrange, id, overrides] of cases) {
      arrange();
      const sdk = await outcome('sdk', id, overrides);
      sandbox.setDown(null);
      for (const path of DIRECT_PATHS) {
        arrange();
        const direct = await outcome(path, id, overrides);
        sandbox.setDown(null);
        if ('error' in direct && 'error' in sdk) {
          // The transport's own words may differ ("fetch failed" vs the SDK's wrapping); the meaning may not.
          expect({ ...direct.error, message: undefined }, `${path} ${name}`).toEqual({ ...sdk.error, message: undefined });
          expect(direct.error.message.split(':')[0], `${path} ${name}`).toBe(sdk.error.message.split(':')[0]);
        } else {
          expect(direct, `${path} ${name}`).toEqual(sdk);
        }
      }
    }
  });

  it.each(DIRECT_PATHS)('%s retries a 5xx on the SDK schedule, then gives up as unavailable', async (path) => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const retry = { strategy: 'backoff', backoff: { initialInterval: 10, maxInterval: 50, exponent: 2, maxElapsedTime: 200 }, retryConnectionErrors: true } as const;
    sandbox.failNext({ status: 503, count: 2, paymentId: payment.id });
    const before = sandbox.requestCount(payment.id);
    const recovered = await provider(path, { retryConfig: retry }).fetchPayment('default', payment.id);
    expect(recovered.kind).toBe('found');
    expect(sandbox.requestCount(payment.id) - before).toBe(3);

    sandbox.failNext({ status: 503, count: 1000, paymentId: payment.id });
    const error = await provider(path, { retryConfig: retry }).fetchPayment('default', payment.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).code).toBe('unavailable');
    sandbox.reset();
  });

  it.each(DIRECT_PATHS)('%s gives up on an answer slower than the per-attempt limit as a timeout, and lets the next call through', async (path) => {
    const payment = sandbox.createPayment({ status: 'paid' });
    const mollie = provider(path, { timeoutMs: 150 });
    sandbox.setLatency(1_000, payment.id);
    const started = Date.now();
    const error = await mollie.fetchPayment('default', payment.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(900);
    sandbox.setLatency(0, payment.id);
    expect((await mollie.fetchPayment('default', payment.id)).kind).toBe('found');
  });
});

describe('Node http transport: a kept-alive socket the server closed', () => {
  /**
   * A bare HTTP/1.1 server over TCP that answers each connection's first request (keep-alive)
   * and resets the connection at its second, so the client's next request on that idle
   * socket dies before any byte comes back, as with a server that dropped an idle socket.
   */
  let server: Server;
  let origin: string;
  let requests = 0;
  let connections = 0;
  beforeAll(async () => {
    server = createServer((socket) => {
      connections++;
      let served = 0;
      socket.on('data', () => {
        requests++;
        if (served++ > 0) {
          socket.resetAndDestroy();
          return;
        }
        const body = JSON.stringify({ ok: true });
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the request again on a fresh socket, once, and only then', async () => {
    const get = nodePlainGet();
    const signal = new AbortController().signal;
    expect((await get(`${origin}/a`, {}, signal)).body).toBe('{"ok":true}');
    expect([requests, connections]).toEqual([1, 1]);
    // The idle socket is reused, reset by the server, and the request goes again on a new one.
    const again = await get(`${origin}/b`, {}, signal);
    expect(again.status).toBe(200);
    expect(again.body).toBe('{"ok":true}');
    expect([requests, connections]).toEqual([3, 2]);
  });
});
