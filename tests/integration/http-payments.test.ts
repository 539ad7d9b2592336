import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForRedis, type Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createScriptedProvider, type ScriptedProvider } from '../../src/sandbox/scripted-provider.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps } from '../helpers/deps.js';

let database: TestDatabase;
let deps: Deps;
let provider: ScriptedProvider;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  provider = createScriptedProvider({ name: 'mollie' });
  deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL }, { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('http') });
  app = createApp(deps);
  await waitForRedis(deps);
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

const past = Date.now() - 60_000;

describe('the read side and the return-page sync', () => {
  it('GET /healthz and /readyz answer without a token', async () => {
    expect((await app.request('/healthz')).status).toBe(200);
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { postgres: { ok: true }, redis: { ok: true } }, lock: 'redlock' });
  });

  it('every /v1 route needs the bearer token, and says so', async () => {
    for (const [method, path] of [['GET', '/v1/payments'], ['GET', '/v1/payments/mollie/tr_x'], ['POST', '/v1/payments/mollie/tr_x/sync']] as const) {
      const res = await app.request(path, { method, headers: { Authorization: 'Bearer wrong-token-wrong-token' } });
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error).toMatchObject({ code: 'unauthorized', message: 'missing or wrong bearer token' });
      expect(body.error.requestId).toMatch(/^req_/);
      expect(res.headers.get('x-request-id')).toBe(body.error.requestId);
    }
  });

  it('POST /v1/payments/:provider/:id/sync fetches, stores and returns the contract shape', async () => {
    provider.script({ id: 'tr_http1', startedAt: past, steps: [{ atMs: 0, providerStatus: 'paid' }], amountMinor: 4995 });
    const res = await app.request('/v1/payments/mollie/tr_http1/sync', { method: 'POST', headers: auth });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      provider: 'mollie',
      id: 'tr_http1',
      status: 'paid',
      providerStatus: 'paid',
      amount: { value: '49.95', currency: 'EUR' },
      version: 1,
    });
    expect(typeof body.updatedAt).toBe('string');
    const get = await app.request('/v1/payments/mollie/tr_http1', { headers: auth });
    expect(await get.json()).toEqual(body);
  });

  it('answers 404 for a payment the provider does not know, and creates nothing', async () => {
    const res = await app.request('/v1/payments/mollie/tr_nowhere/sync', { method: 'POST', headers: auth });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('not_found');
    expect((await app.request('/v1/payments/mollie/tr_nowhere', { headers: auth })).status).toBe(404);
  });

  it('rejects bad input with a clear 4xx', async () => {
    const cases: [string, RequestInit, number, RegExp][] = [
      ['/v1/payments/paypal/x', {}, 404, /unknown provider "paypal"/],
      ['/v1/payments/mollie/bad%20id', {}, 400, /payment id/],
      ['/v1/payments?limit=0', {}, 400, /limit/],
      ['/v1/payments?status=lost', {}, 400, /status/],
      ['/v1/payments?cursor=%%%', {}, 400, /cursor/],
      ['/v1/payments', { method: 'POST', body: '{"provider":"mollie"}', headers: { 'content-type': 'application/json' } }, 400, /id/],
      ['/v1/payments', { method: 'POST', body: 'id=1', headers: { 'content-type': 'text/plain' } }, 415, /application\/json/],
    ];
    for (const [path, init, status, message] of cases) {
      const res = await app.request(path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
      expect(res.status, path).toBe(status);
      expect((await res.json()).error.message, path).toMatch(message);
    }
  });

  it('POST /v1/payments starts tracking a payment made elsewhere', async () => {
    provider.script({ id: 'tr_track1', startedAt: past, steps: [{ atMs: 0, providerStatus: 'open' }] });
    const res = await app.request('/v1/payments', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ provider: 'mollie', id: 'tr_track1' }) });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ id: 'tr_track1', status: 'open' });
    const again = await app.request('/v1/payments', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ provider: 'mollie', id: 'tr_track1' }) });
    expect(again.status).toBe(200);
  });

  it('GET /v1/payments pages by a stable cursor, newest first, with filters', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `tr_page${i}`);
    for (const [i, id] of ids.entries()) {
      provider.script({ id, startedAt: past, steps: [{ atMs: 0, providerStatus: i % 2 === 0 ? 'paid' : 'expired' }] });
      expect((await app.request(`/v1/payments/mollie/${id}/sync`, { method: 'POST', headers: auth })).status).toBe(200);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await app.request(`/v1/payments?provider=mollie&status=paid&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth });
      const body = (await res.json()) as { data: { id: string; status: string }[]; nextCursor: string | null };
      expect(body.data.every((p) => p.status === 'paid')).toBe(true);
      seen.push(...body.data.map((p) => p.id));
      cursor = body.nextCursor;
      pages++;
      // A payment inserted mid-paging lands before the cursor and does not shift later pages.
      if (pages === 1) {
        provider.script({ id: 'tr_late', startedAt: past, steps: [{ atMs: 0, providerStatus: 'paid' }] });
        await app.request('/v1/payments/mollie/tr_late/sync', { method: 'POST', headers: auth });
      }
    } while (cursor);
    const expected = ['tr_page6', 'tr_page4', 'tr_page2', 'tr_page0', 'tr_http1'];
    expect(seen).toEqual(expected);
    expect(pages).toBe(3);
  });
});
