/**
 * Anonymous memory exhaustion, tried on a real gateway process: 300 sockets each
 * announce a large webhook body and send all of it but the last byte. Before the body
 * guard the gateway buffered every one of them (0.54 → 1.36 GB of RSS in seconds);
 * now each body reserves its size from WEBHOOK_BODY_BUDGET_BYTES before a byte is read,
 * so the held bytes stay under the budget, /healthz keeps answering, and the held
 * bodies are cut at WEBHOOK_BODY_TIMEOUT_MS.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const SOCKETS = 300;
/** Under the GoCardless route's 2 MiB limit, so only the budget stands between these bodies and the heap. */
const DECLARED = 2_000_000;
const BUDGET = 32 * 1024 * 1024;
const BODY_TIMEOUT_MS = 4000;
/**
 * The documented bound: the budget, plus what 300 open sockets and their parsers cost
 * (a few hundred kB), plus the allocator's slack. Without the guard the growth is ~600 MB.
 */
const RSS_GROWTH_BOUND = 160 * 1024 * 1024;

let database: TestDatabase;
let gateway: GatewayProcess;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
  return kb * 1024;
}

interface HeldSocket {
  /** The status line the gateway answered with, or null while it has not. */
  status: number | null;
  /** All but the last byte has been handed to the kernel, or the socket ended. */
  settled: boolean;
  /** The gateway reset the connection (it closed with our unread bytes pending; a write after that fails with EPIPE). */
  reset: boolean;
  socket: net.Socket;
}

function holdPartialBody(port: number, chunk: Buffer): HeldSocket {
  const held: HeldSocket = { status: null, settled: false, reset: false, socket: net.connect(port, '127.0.0.1') };
  const { socket } = held;
  let response = '';
  socket.on('data', (data) => {
    response += data.toString('latin1');
    const match = /^HTTP\/1\.1 (\d{3})/.exec(response);
    if (match) held.status = Number(match[1]);
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    held.settled = true;
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE') held.reset = true;
  });
  socket.on('close', () => (held.settled = true));
  socket.on('connect', () => {
    socket.write(
      `POST /webhooks/gocardless HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nWebhook-Signature: ${'0'.repeat(64)}\r\nContent-Length: ${DECLARED}\r\n\r\n`,
    );
    // Everything but the last byte: the request can never complete.
    socket.write(chunk, () => (held.settled = true));
  });
  return held;
}

async function until(condition: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 30_000, onEachPoll?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    onEachPoll?.();
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  database = await createTestDatabase();
  gateway = await startGatewayProcess({
    DATABASE_URL: database.url,
    REDIS_URL: '',
    GOCARDLESS_ACCESS_TOKEN: 'gc_token',
    GOCARDLESS_API_URL: 'http://127.0.0.1:9',
    GOCARDLESS_WEBHOOK_SECRETS: 'a-webhook-secret',
    WEBHOOK_BODY_BUDGET_BYTES: String(BUDGET),
    WEBHOOK_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    GOCARDLESS_EVENTS_INTERVAL_MS: '0',
    MOLLIE_SWEEP_INTERVAL_MS: '0',
  });
}, 60_000);

afterAll(async () => {
  await gateway?.kill();
  await database?.drop();
});

describe('300 sockets holding partial webhook bodies', () => {
  it('keep the gateway RSS within the budget bound and /healthz answering; the held bodies are cut at the body timeout', async () => {
    const pid = gateway.child.pid!;
    // Warm up the path once, so the baseline includes what any first request allocates.
    await fetch(`${gateway.url}/webhooks/gocardless`, { method: 'POST', body: '{}', headers: { 'webhook-signature': 'x' } });
    const baseline = rssBytes(pid);

    const chunk = Buffer.alloc(DECLARED - 1, 0x20);
    const sockets = Array.from({ length: SOCKETS }, () => holdPartialBody(gateway.port, chunk));
    let peak = baseline;
    const sample = () => (peak = Math.max(peak, rssBytes(pid)));
    try {
      // Every socket the gateway admitted has pushed its bytes out (or been closed), and all
      // but what the budget admits (16 bodies of 2 MB in 32 MiB) have been answered. A refused
      // socket is done once answered: the gateway never reads its body, so whether the kernel
      // still takes its bytes (it may not, when other sockets hold its TCP memory) says nothing
      // about the gateway's memory. A socket the gateway closed with our bytes unread is reset by
      // the kernel, and a reset can discard the answer before this client reads it: such a
      // socket is done too (answered or not, the gateway holds nothing for it).
      const fits = Math.floor(BUDGET / DECLARED);
      const tally = () => {
        const count = (predicate: (s: HeldSocket) => boolean) => sockets.filter(predicate).length;
        return JSON.stringify({
          answered: count((s) => s.status !== null),
          resetUnanswered: count((s) => s.status === null && s.reset),
          settledOnly: count((s) => s.status === null && !s.reset && s.settled),
          waiting: count((s) => s.status === null && !s.settled),
          statuses: sockets.reduce<Record<string, number>>((all, s) => ({ ...all, [String(s.status)]: (all[String(s.status)] ?? 0) + 1 }), {}),
        });
      };
      await until(
        () => sockets.every((s) => s.settled || s.status !== null) && sockets.filter((s) => s.status !== null || s.reset).length >= SOCKETS - fits,
        () => `every socket to send its partial body, and the refusals: ${tally()}`,
        60_000,
        sample,
      );
      // Admitted: held now, or already cut at the body timeout (on a slow machine the wait can
      // outlast it, and the budget it frees admits a late socket or two).
      const admitted = sockets.filter((s) => s.status !== 503);
      const held = admitted.filter((s) => s.status === null && !s.socket.destroyed);
      const busy = sockets.filter((s) => s.status === 503);
      // Never more held at once than the budget fits; every other socket was refused unread,
      // with 503 and a Retry-After. A cut one is answered 408, or reset before the client read
      // the answer (closing with its unread bytes pending makes the kernel send a reset).
      expect(held.length).toBeLessThanOrEqual(fits);
      expect(admitted.every((s) => s.status === null || s.status === 408), JSON.stringify(admitted.map((s) => s.status))).toBe(true);
      expect(busy.length).toBe(SOCKETS - admitted.length);

      // While the admitted bodies are held: the process answers, and holds no more than the bound.
      const health = await fetch(`${gateway.url}/healthz`);
      expect(health.status).toBe(200);
      sample();
      process.stdout.write(`RSS baseline ${Math.round(baseline / 2 ** 20)} MiB, peak ${Math.round(peak / 2 ** 20)} MiB\n`);
      expect(peak - baseline, `RSS ${Math.round(baseline / 2 ** 20)} → ${Math.round(peak / 2 ** 20)} MiB`).toBeLessThan(RSS_GROWTH_BOUND);

      // At the body timeout the held requests are answered 408 and their sockets closed.
      await until(() => admitted.every((s) => s.status === 408 || s.socket.destroyed), 'the held bodies to time out', BODY_TIMEOUT_MS + 10_000, sample);
      // Each one answered 408, or reset by the gateway before this client read that answer
      // (closing a socket with the client's bytes unread makes the kernel send a reset).
      expect(admitted.every((s) => s.status === 408 || s.reset), JSON.stringify(admitted.map((s) => [s.status, s.reset]))).toBe(true);
      expect(admitted.filter((s) => s.status === 408).length).toBeGreaterThan(0);
      // The budget is whole again: a webhook is read and judged (498: not signed by GoCardless).
      const after = await fetch(`${gateway.url}/webhooks/gocardless`, { method: 'POST', body: '{"events":[]}', headers: { 'webhook-signature': '00' } });
      expect(after.status).toBe(498);
      expect(peak - baseline).toBeLessThan(RSS_GROWTH_BOUND);
      expect(gateway.child.exitCode).toBeNull();
    } finally {
      for (const s of sockets) s.socket.destroy();
    }
  }, 120_000);

  it('refuses a body announced past the route limit from its Content-Length, unread', async () => {
    const socket = net.connect(gateway.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (data) => (answer += data.toString('latin1')));
    socket.write('POST /webhooks/gocardless HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194204\r\n\r\n{');
    await until(() => /^HTTP\/1\.1 \d{3}/.test(answer), 'the 413');
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toMatch(/payload_too_large/);
  });
});
