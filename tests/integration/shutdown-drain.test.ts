/**
 * SIGTERM on a real gateway process, seen from its clients.
 * - Under load on keep-alive connections: every request sent on a connection the gateway
 *   had accepted gets an answer (processed, or 503 with Connection: close and
 *   Retry-After); none is reset, and every acknowledged webhook is kept.
 * - A client whose body never finishes does not hold the process past the grace.
 */
import http from 'node:http';
import { connect } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0 });
});

afterAll(async () => {
  await mollie?.close();
  await sql?.end();
  await database?.drop();
});

const gatewayEnv = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: database.url,
  REDIS_URL: undefined,
  ADMIN_TOKEN: TEST_ADMIN_TOKEN,
  MOLLIE_API_KEY: 'test_sandbox',
  MOLLIE_API_URL: mollie.url,
  ...extra,
});

interface Answer {
  status: number;
  connection: string | undefined;
  retryAfter: string | undefined;
  paymentId: string;
}

function post(agent: http.Agent, port: number, paymentId: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = `id=${paymentId}`;
    const request = http.request(
      { agent, host: '127.0.0.1', port, method: 'POST', path: '/webhooks/mollie', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
      (response) => {
        response.resume();
        response.on('end', () =>
          resolve({ status: response.statusCode!, connection: response.headers.connection, retryAfter: response.headers['retry-after'], paymentId }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

describe('SIGTERM', () => {
  it('under load on keep-alive connections: every request is answered (processed or 503 + Connection: close + Retry-After), none reset', async () => {
    const gateway = await startGatewayProcess(gatewayEnv({ SHUTDOWN_GRACE_MS: '3000' }), { timeoutMs: 90_000 });
    const lanes = 24;
    const agent = new http.Agent({ keepAlive: true, maxSockets: lanes });
    try {
      // Every webhook's sync takes a while, so SIGTERM lands with many of them in flight.
      mollie.setLatency(150);
      const answers: Answer[] = [];
      const resets: string[] = [];
      let sent = 0;
      let terminated = false;
      const lane = async () => {
        for (;;) {
          const payment = mollie.createPayment({ status: 'paid' });
          sent++;
          try {
            const answer = await post(agent, gateway.port, payment.id);
            answers.push(answer);
            // The gateway said it closes this connection: a well-behaved client stops using it
            // (a new one would find the listener gone, which is not a request that reached us).
            if (answer.connection === 'close') return;
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
            if (code === 'ECONNREFUSED' && terminated) return;
            resets.push(code);
            return;
          }
        }
      };
      const running = Array.from({ length: lanes }, lane);
      await eventually(async () => answers.length >= 3 * lanes, { what: 'load running on every connection', timeoutMs: 30_000, intervalMs: 10 });
      terminated = true;
      gateway.child.kill('SIGTERM');
      await Promise.all(running);
      const exitCode = await gateway.stop();

      expect(resets).toEqual([]);
      expect(exitCode).toBe(0);
      const refused = answers.filter((a) => a.status === 503);
      const processed = answers.filter((a) => a.status === 200);
      expect(processed.length + refused.length).toBe(answers.length);
      expect(answers.length).toBe(sent);
      // The drain was exercised: requests in flight at SIGTERM were answered with the connection closing.
      expect(answers.filter((a) => a.status === 200 && a.connection === 'close').length).toBeGreaterThan(0);
      for (const answer of refused) {
        expect(answer.connection).toBe('close');
        expect(Number(answer.retryAfter)).toBeGreaterThan(0);
      }
      // Nothing acknowledged is lost: every 200 left its receipt.
      const ids = processed.map((a) => a.paymentId);
      const [stored] = await sql<{ n: number }[]>`select count(distinct resource_id)::int as n from webhook_receipts where resource_id = any(${ids})`;
      expect(stored!.n).toBe(ids.length);
    } finally {
      mollie.setLatency(0);
      agent.destroy();
      await gateway.kill();
    }
  }, 240_000);

  it('a client whose body never finishes does not hold the process past the grace', async () => {
    const graceMs = 1500;
    const gateway = await startGatewayProcess(gatewayEnv({ SHUTDOWN_GRACE_MS: String(graceMs) }), { timeoutMs: 90_000 });
    const socket = connect(gateway.port, '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (chunk) => (received += chunk));
      const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // A first, complete request on the connection proves the gateway is serving it.
      socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n');
      await eventually(async () => received.includes('"status":"ok"'), { what: 'the first answer', timeoutMs: 10_000, intervalMs: 10 });
      // Then a webhook whose body stops half-way and never finishes.
      socket.write('POST /webhooks/mollie HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 64\r\n\r\nid=tr_');

      const signalledAt = performance.now();
      gateway.child.kill('SIGTERM');
      const exitCode = await gateway.stop();
      const tookMs = performance.now() - signalledAt;
      expect(exitCode).toBe(0);
      // The grace, plus stopping the loops and pools (slow on a loaded machine); the client alone
      // would hold it open for as long as it kept the socket.
      expect(tookMs).toBeLessThan(graceMs + 15_000);
      await socketClosed;
    } finally {
      socket.destroy();
      await gateway.kill();
    }
  }, 180_000);
});
