/**
 * The small ones: /readyz shows codes, never a failed statement or its parameters;
 * EVENT_SINK_URLS takes http(s) only; the Bearer scheme is case-insensitive; a client
 * hanging up mid-request is logged at info without a stack (on a real gateway process).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/processes.js';

let database: TestDatabase;
const opened: Deps[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  for (const deps of opened) await deps.close();
  await database?.drop();
});

describe('/readyz with Postgres down', () => {
  it('shows codes, not SQL or parameters', async () => {
    // Nothing listens on this port: every query fails to connect.
    const port = await freePort();
    const deps = buildTestDeps({ DATABASE_URL: `postgres://postgres:secret-password@127.0.0.1:${port}/nowhere` });
    opened.push(deps);
    const res = await createApp(deps).request('/readyz');
    expect(res.status).toBe(503);
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body.checks.postgres).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
    expect(body.poller.error).toMatch(/^[A-Za-z0-9_ ]+$/);
    expect(text).not.toMatch(/select|insert|update|from |where|\$1|params|secret-password/i);
  });
});

describe('EVENT_SINK_URLS', () => {
  it.each(['file:///etc/passwd', 'gopher://127.0.0.1:70/', 'javascript:alert(1)', 'ftp://example.com/'])('refuses %s', (url) => {
    expect(() => parseEnv({ EVENT_SINK_URLS: url, EVENT_SINK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })).toThrow(ConfigError);
  });

  it('takes http and https', () => {
    const env = parseEnv({ EVENT_SINK_URLS: 'http://a.example/hook, https://b.example/hook', EVENT_SINK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
    expect(env.EVENT_SINK_URLS).toEqual(['http://a.example/hook', 'https://b.example/hook']);
  });
});

describe('the Bearer scheme', () => {
  it('is case-insensitive; a wrong token is still refused', async () => {
    const deps = buildTestDeps({ DATABASE_URL: database.url });
    opened.push(deps);
    const app = createApp(deps);
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await app.request('/v1/payments', { headers: { authorization: `${scheme} ${TEST_ADMIN_TOKEN}` } });
      expect(res.status, scheme).toBe(200);
    }
    expect((await app.request('/v1/payments', { headers: { authorization: 'bearer wrong-token-0123456789' } })).status).toBe(401);
    expect((await app.request('/v1/payments', { headers: { authorization: `Basic ${TEST_ADMIN_TOKEN}` } })).status).toBe(401);
  });
});

describe('a client hanging up mid-request', () => {
  let gateway: GatewayProcess;
  beforeAll(async () => {
    gateway = await startGatewayProcess({ DATABASE_URL: database.url, REDIS_URL: '', MOLLIE_API_KEY: 'test_x', MOLLIE_API_URL: 'http://127.0.0.1:9', LOG_LEVEL: 'info', MOLLIE_SWEEP_INTERVAL_MS: '0' });
  }, 60_000);
  afterAll(async () => {
    await gateway?.kill();
  });

  it('is logged at info, without a stack', async () => {
    const socket = net.connect(gateway.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('POST /webhooks/mollie HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Request-Id: hangup-test-1\r\nContent-Length: 100\r\n\r\nid=tr_');
    // The client goes a moment after the headers and part of the body: the scenario's
    // timing (the headers must have reached the server), not a wait for work.
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    const logged = () => gateway.output().split('\n').find((line) => line.includes('hangup-test-1') && line.includes('"msg":"request"'));
    const until = Date.now() + 10_000;
    while (!logged() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    const line = JSON.parse(logged()!);
    expect(line.level).toBe(30);
    expect(line.status).toBe(499);
    const related = gateway.output().split('\n').filter((l) => l.includes('hangup-test-1'));
    expect(related.join('\n')).not.toMatch(/"stack"|"level":50/);
  });
});
