/**
 * Brute force on the admin token: wrong bearers on /v1 and wrong tokens at the console's
 * sign-in are throttled per source and overall, with a Retry-After, and the right token
 * always passes, however many wrong ones came before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';

let database: TestDatabase;
let deps: Deps;

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url });
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

/** What @hono/node-server hands the app: the socket, whose peer address is the source. */
const from = (address: string) => ({ incoming: { socket: { remoteAddress: address } } });

function bearer(app: ReturnType<typeof createApp>, token: string, address: string) {
  return app.request('/v1/payments', { headers: { authorization: `Bearer ${token}` } }, from(address));
}

function signIn(app: ReturnType<typeof createApp>, token: string, address: string) {
  return app.request(
    'http://localhost/console/sign-in',
    { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' }, body: new URLSearchParams({ token }).toString() },
    from(address),
  );
}

describe('failed admin-token attempts', () => {
  it('/v1: past 10 wrong bearers a minute from one source, 429 + Retry-After; the right token still passes, other sources are not affected', async () => {
    const app = createApp(deps);
    for (let i = 0; i < 10; i++) expect((await bearer(app, `wrong-token-${i}-0123456789`, '10.0.0.1')).status).toBe(401);
    const throttled = await bearer(app, 'wrong-token-x-0123456789', '10.0.0.1');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await throttled.json()).error.code).toBe('too_many_failed_attempts');
    expect((await bearer(app, TEST_ADMIN_TOKEN, '10.0.0.1')).status).toBe(200);
    expect((await bearer(app, 'wrong-token-y-0123456789', '10.0.0.2')).status).toBe(401);
  });

  it('/v1: past 100 wrong bearers a minute overall (many sources), 429 everywhere for wrong ones; the right token still passes', async () => {
    const app = createApp(deps);
    for (let i = 0; i < 100; i++) expect((await bearer(app, 'wrong-token-0123456789', `10.1.${i}.1`)).status).toBe(401);
    const throttled = await bearer(app, 'wrong-token-0123456789', '10.2.0.1');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await bearer(app, TEST_ADMIN_TOKEN, '10.2.0.1')).status).toBe(200);
  });

  it('console sign-in: past 10 wrong tokens a minute, 429 + Retry-After; the right token signs in', async () => {
    const app = createApp(deps);
    for (let i = 0; i < 10; i++) expect((await signIn(app, `not-the-token-${i}`, '10.3.0.1')).status).toBe(401);
    const throttled = await signIn(app, 'not-the-token-x', '10.3.0.1');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await throttled.text()).toMatch(/Too many wrong tokens/);
    const right = await signIn(app, TEST_ADMIN_TOKEN, '10.3.0.1');
    expect(right.status).toBe(303);
    expect(right.headers.get("set-cookie")).toMatch(/^gw_console=/);
  });
});
