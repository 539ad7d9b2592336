/**
 * HTTP_KEEP_ALIVE_TIMEOUT_MS: how long the gateway keeps an idle keep-alive connection.
 * Behind a load balancer it must outlast the balancer's own idle timeout, or the balancer
 * reuses a connection the gateway is closing and answers the provider 502. Two real
 * processes: the default (Node's 5 s) and a short setting, read through the `Keep-Alive`
 * header and through the server closing an idle socket.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

let database: TestDatabase;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.kill()));
  await database?.drop();
});

async function start(env: Record<string, string> = {}): Promise<GatewayProcess> {
  const gateway = await startGatewayProcess({ DATABASE_URL: database.url, REDIS_URL: '', ...env });
  gateways.push(gateway);
  return gateway;
}

/**
 * One request on a raw keep-alive socket: the answer's `Keep-Alive` header, and how long
 * after the answer the server closed the idle socket (null: still open after `waitMs`).
 */
async function idleSocket(url: string, waitMs: number): Promise<{ keepAlive: string | undefined; closedAfterMs: number | null }> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let received = '';
  let answeredAt = 0;
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now())));
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    received += chunk.toString('latin1');
    if (!answeredAt && received.includes('\r\n\r\n')) answeredAt = performance.now();
  });
  socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
  const outcome = await Promise.race([closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), waitMs))]);
  socket.destroy();
  expect(received).toMatch(/^HTTP\/1\.1 200 /);
  const keepAlive = /\r\nkeep-alive: ([^\r]*)/i.exec(received)?.[1];
  return { keepAlive, closedAfterMs: outcome === null ? null : Math.round(outcome - answeredAt) };
}

describe('HTTP keep-alive', () => {
  it('keeps idle connections for HTTP_KEEP_ALIVE_TIMEOUT_MS (Node\'s 5 s by default), and says so in Keep-Alive', async () => {
    const [standard, short] = await Promise.all([start(), start({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '1500' })]);
    const [atDefault, atShort] = await Promise.all([idleSocket(standard.url, 3000), idleSocket(short.url, 4500)]);
    expect(atDefault.keepAlive).toBe('timeout=5');
    expect(atDefault.closedAfterMs).toBeNull();
    expect(atShort.keepAlive).toBe('timeout=1');
    expect(atShort.closedAfterMs).not.toBeNull();
    expect(atShort.closedAfterMs!).toBeGreaterThanOrEqual(1000);
  }, 60_000);

  it('refuses a keep-alive timeout out of range at start-up, naming the variable', async () => {
    await expect(start({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '50' })).rejects.toThrow(/HTTP_KEEP_ALIVE_TIMEOUT_MS/);
  }, 60_000);
});
