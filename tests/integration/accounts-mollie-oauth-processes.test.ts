/**
 * OAuth access tokens expiring under load in two OS processes: each keeps many calls in
 * flight, each call asking usableMollieAccessToken for a token and using it against the
 * Mollie sandbox, while tokens last 3 s. Exactly one refresh per expiry at the token
 * endpoint (no refresh while the newest token still had more than the margin, no refresh
 * token presented twice), and every call succeeds.
 *
 * The workers call usableMollieAccessToken directly, as the provider clients do for every
 * Mollie call of an OAuth account (accounts-mollie-oauth-gateways.test.ts goes through them).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps } from '../helpers/deps.js';
import type { OAuthWorkerConfig } from '../helpers/oauth-token-worker.js';
import { startTsWorker } from '../helpers/processes.js';

const LIFETIME_MS = 3000;
const MARGIN_MS = 1200;
const DURATION_MS = 10_000;

let database: TestDatabase;
let mollie: MollieSandbox;
let deps: Deps;
let env: Record<string, string>;

beforeAll(async () => {
  database = await createTestDatabase();
  mollie = await startMollieSandbox({ port: 0, oauth: { accessTokenLifetimeMs: LIFETIME_MS } });
  env = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    MOLLIE_API_URL: mollie.url,
    MOLLIE_OAUTH_CLIENT_ID: SANDBOX_OAUTH_CLIENT_ID,
    MOLLIE_OAUTH_CLIENT_SECRET: SANDBOX_OAUTH_CLIENT_SECRET,
    MOLLIE_OAUTH_URL: mollie.url,
    MOLLIE_OAUTH_REFRESH_MARGIN_MS: String(MARGIN_MS),
    DATABASE_POOL_SIZE: '5',
  };
  deps = buildTestDeps({ ...env, REDIS_URL: '' });
}, 60_000);

afterAll(async () => {
  await deps?.close();
  await mollie?.close();
  await database?.drop();
});

async function onboard(name: string): Promise<void> {
  const app = createApp(deps);
  const start = (await (await app.request(`/v1/accounts/mollie/connect?name=${name}`, { headers: auth })).json()) as { authorizeUrl: string };
  const back = new URL((await fetch(start.authorizeUrl, { redirect: 'manual' })).headers.get('location')!);
  const res = await app.request(`${back.pathname}${back.search}`);
  expect(res.status).toBe(201);
}

describe('OAuth tokens expiring under load in two processes', () => {
  it('one refresh per expiry at the token endpoint, and every call succeeds', { timeout: 120_000 }, async () => {
    await onboard('shop-busy');
    const payment = mollie.createPayment({ status: 'paid' });
    mollie.oauth.resetStats();
    const config: OAuthWorkerConfig = {
      env,
      lockPrefix: redisPrefix('oauth'),
      accountName: 'shop-busy',
      sandboxUrl: mollie.url,
      paymentId: payment.id,
      durationMs: DURATION_MS,
      concurrency: 12,
      pauseMs: 20,
    };
    const workers = [0, 1].map(() => startTsWorker('tests/helpers/oauth-token-worker.ts', { OAUTH_WORKER_CONFIG: JSON.stringify(config) }));
    await Promise.all(workers.map((worker) => worker.ready));
    const startAt = Date.now() + 200;
    for (const worker of workers) worker.go(String(startAt));
    const summaries = (await Promise.all(workers.map((worker) => worker.done))).map(
      (out) => JSON.parse(out.trim().split('\n').pop()!) as { outcomes: Record<string, number>; distinctTokens: number },
    );

    // Every call got a token and the sandbox accepted it.
    for (const summary of summaries) {
      expect(Object.keys(summary.outcomes)).toEqual(['http:200']);
      expect(summary.outcomes['http:200']).toBeGreaterThan(50);
      // Both processes lived through several expiries.
      expect(summary.distinctTokens).toBeGreaterThanOrEqual(3);
    }
    const stats = mollie.oauth.stats();
    // Several expiries happened, each refreshed...
    expect(stats.refreshes).toBeGreaterThanOrEqual(3);
    // ...once: no refresh token presented after it was rotated (a second refresh of the
    // same token answers invalid_grant), and no refresh while the newest access token
    // still had more than the margin (a second refresh after the first one's success).
    expect(stats.invalidGrants).toBe(0);
    expect(stats.refreshLog.map((entry) => entry.outcome)).toEqual(Array(stats.refreshes).fill('refreshed'));
    for (const entry of stats.refreshLog) expect(entry.remainingMs!).toBeLessThanOrEqual(MARGIN_MS);
    expect(new Set(stats.refreshLog.map((entry) => entry.refreshToken)).size).toBe(stats.refreshes);
  });
});
