/**
 * ADMIN_PORT splits the HTTP surface: the public port serves webhooks, /v1, /healthz and a
 * /readyz without detail; the admin port serves /metrics, /readyz with every check and the
 * console. Checked in process for each route, then on a real gateway process listening on both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/processes.js';

let database: TestDatabase;
let deps: Deps;
let gateway: GatewayProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url });
});

afterAll(async () => {
  await gateway?.kill();
  await deps?.close();
  await database?.drop();
});

describe('surfaces', () => {
  it('the public surface serves webhooks, /v1, /healthz and a plain /readyz; no metrics, no console', async () => {
    const app = createApp(deps, { surface: 'public' });
    expect((await app.request('/healthz')).status).toBe(200);
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect((await app.request('/metrics')).status).toBe(404);
    expect((await app.request('/console')).status).toBe(404);
    expect((await app.request('/console/sign-in')).status).toBe(404);
    expect((await app.request('/v1/payments', { headers: auth })).status).toBe(200);
    // Reaches the webhook route (Mollie is not configured here: its own 404 with its own code).
    const webhook = await app.request('/webhooks/mollie', { method: 'POST', body: 'id=tr_1' });
    expect(((await webhook.json()) as { error: { code: string } }).error.code).toBe('provider_not_configured');
  });

  it('the admin surface serves /metrics, /readyz with detail and the console; no webhooks, no /v1', async () => {
    const app = createApp(deps, { surface: 'admin' });
    expect((await app.request('/metrics')).status).toBe(200);
    const ready = (await (await app.request('/readyz')).json()) as { status: string; checks: { postgres: { ok: boolean } } };
    expect(ready.checks.postgres.ok).toBe(true);
    expect((await app.request('/console/sign-in')).status).toBe(200);
    expect((await app.request('/webhooks/mollie', { method: 'POST', body: 'id=tr_1' })).status).toBe(404);
    expect((await app.request('/v1/payments', { headers: auth })).status).toBe(404);
  });

  it('without ADMIN_PORT one surface serves everything, as before', async () => {
    const app = createApp(deps);
    expect((await app.request('/metrics')).status).toBe(200);
    expect(((await (await app.request('/readyz')).json()) as { checks?: unknown }).checks).toBeDefined();
    expect((await app.request('/console/sign-in')).status).toBe(200);
  });
});

describe('a gateway process with ADMIN_PORT', () => {
  it('listens on both ports, each with its own routes', async () => {
    const adminPort = await freePort();
    // A generous start-up bound: tsx compiles the gateway at start, slow on a loaded machine.
    gateway = await startGatewayProcess({ DATABASE_URL: database.url, ADMIN_TOKEN: TEST_ADMIN_TOKEN, ADMIN_PORT: String(adminPort), REDIS_URL: '' }, { timeoutMs: 90_000 });
    const admin = `http://127.0.0.1:${adminPort}`;
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(404);
    expect(await (await fetch(`${gateway.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const metrics = await fetch(`${admin}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('gateway_build_info');
    expect((await fetch(`${admin}/console/sign-in`)).status).toBe(200);
    expect(await gateway.stop()).toBe(0);
  }, 150_000);
});
