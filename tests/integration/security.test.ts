/**
 * Security properties, each with a test that could fail:
 * - /v1 and the console compare the admin token in constant time (timingSafeEqual on
 *   equal-length digests, whatever the length of the guess);
 * - no secret reaches a log, through good and bad webhooks, provider errors (401, 429),
 *   /v1 calls, console sign-in and the background jobs;
 * - no stack trace in any response, even for an internal error;
 * - every response carries a request id;
 * - the webhook routes and the console sign-in are the only unauthenticated writes;
 * - personal data in provider snapshots (Mollie `details`) never reaches the stored
 *   snapshots, the outbox or the logs.
 */
import { timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBackgroundJobs, type BackgroundJobs } from '../../src/background.js';
import { tokenMatches } from '../../src/console/session.js';
import type { Deps } from '../../src/deps.js';
import { splitCredentials } from '../../src/events/http-sink.js';
import { createApp } from '../../src/http/app.js';
import { requireAdminToken, type AppEnv } from '../../src/http/middleware.js';
import { toErrorResponse } from '../../src/http/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { createProvidersFromEnv } from '../../src/providers/from-env.js';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import { signMollieBody } from '../../src/providers/mollie/signature.js';
import type { PaymentProvider } from '../../src/providers/types.js';
import { startDownstreamReceiver, type DownstreamReceiver } from '../../src/sandbox/downstream-receiver.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { buildMollieEvent } from '../../src/sandbox/mollie-webhook-sender.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually, testEnv } from '../helpers/deps.js';

// Spy on the comparison itself: the middleware and the console import it from here.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const spy = vi.fn(actual.timingSafeEqual);
  return { ...actual, timingSafeEqual: spy, default: { ...actual, timingSafeEqual: spy } };
});

// Distinctive secrets, so a leak is found by a plain substring search.
const ADMIN_TOKEN = 'adm-SECRET-7Qx2Lk9Vb4Nc8Zt1';
const MOLLIE_API_KEY = 'test_SECRETmollieKey4e7f0a9c2b';
const WRONG_MOLLIE_API_KEY = 'test_SECRETwrongMollieKey81d5e3';
const MOLLIE_WEBHOOK_SECRETS = ['SECRET-mollie-wh-current-5a1c', 'SECRET-mollie-wh-previous-9d0e'];
const GOCARDLESS_ACCESS_TOKEN = 'sandbox_SECRET_gc_token_6b2f81';
const WRONG_GOCARDLESS_ACCESS_TOKEN = 'sandbox_SECRET_gc_wrong_0c44e7';
const GOCARDLESS_WEBHOOK_SECRET = 'SECRET-gc-endpoint-secret-3e9a';
const EVENT_SINK_SECRET = 'whsec_U0VDUkVULXNpbmstc2lnbmluZy1rZXktMDAx';
const SINK_PASSWORD = 'SECRETsinkPassw0rd77';
const SINK_QUERY_TOKEN = 'SECRETsinkQueryToken42';

/** Fake personal data the Mollie sandbox puts in `details`. */
const PERSONAL = { consumerName: 'Janneke Persoonlijk', consumerAccount: 'NL91ABNA0417164300', consumerBic: 'ABNANL2A' };
const CARD = { cardHolder: 'Carla Kaarthouder', cardNumber: '4242', cardFingerprint: 'fp_SECRETfinger', cardCountryCode: 'NL', cardLabel: 'Visa' };
const PERSONAL_STRINGS = [PERSONAL.consumerName, PERSONAL.consumerAccount, CARD.cardHolder, CARD.cardFingerprint];

let database: TestDatabase;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let sink: DownstreamReceiver;
let sql: postgres.Sql;
const logLines: string[] = [];
const destination = { write: (line: string) => void logLines.push(line) };
let deps: Deps;
let wrongKeyDeps: Deps;
let app: ReturnType<typeof createApp>;
let wrongKeyApp: ReturnType<typeof createApp>;
const jobs: BackgroundJobs[] = [];
/** Every response any test here received, for the stack-trace and request-id checks. */
const responses: { label: string; status: number; requestId: string | null; body: string }[] = [];

function gatewayEnv(overrides: Record<string, string> = {}) {
  return {
    DATABASE_URL: database.url,
    LOG_LEVEL: 'debug',
    ADMIN_TOKEN,
    MOLLIE_API_KEY,
    MOLLIE_API_URL: mollie.url,
    MOLLIE_WEBHOOK_SECRETS: MOLLIE_WEBHOOK_SECRETS.join(','),
    MOLLIE_WEBHOOK_DEADLINE_MS: '4000',
    GOCARDLESS_ACCESS_TOKEN,
    GOCARDLESS_API_URL: gocardless.url,
    GOCARDLESS_WEBHOOK_SECRETS: GOCARDLESS_WEBHOOK_SECRET,
    GOCARDLESS_EVENTS_INTERVAL_MS: '600000',
    MOLLIE_SWEEP_INTERVAL_MS: '600000',
    EVENT_SINK_URLS: `http://sinkuser:${SINK_PASSWORD}@127.0.0.1:${sink.port}/events?token=${SINK_QUERY_TOKEN}`,
    EVENT_SINK_SECRET,
    POLLER_IDLE_MS: '100',
    ...overrides,
  };
}

function gateway(env: Record<string, string>): Deps {
  return buildTestDeps(env, { providers: createProvidersFromEnv(testEnv(env)), logger: createLogger('debug', destination) });
}

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ apiKeys: [MOLLIE_API_KEY] });
  gocardless = await startGoCardlessSandbox({ accessTokens: [GOCARDLESS_ACCESS_TOKEN], webhookSecret: GOCARDLESS_WEBHOOK_SECRET });
  sink = await startDownstreamReceiver({ secret: EVENT_SINK_SECRET });
  deps = gateway(gatewayEnv());
  wrongKeyDeps = gateway(gatewayEnv({ MOLLIE_API_KEY: WRONG_MOLLIE_API_KEY, GOCARDLESS_ACCESS_TOKEN: WRONG_GOCARDLESS_ACCESS_TOKEN }));
  app = createApp(deps);
  wrongKeyApp = createApp(wrongKeyDeps);
  jobs.push(startBackgroundJobs(deps), startBackgroundJobs(wrongKeyDeps));
});

afterAll(async () => {
  await Promise.all(jobs.map((j) => j.stop()));
  await deps?.close();
  await wrongKeyDeps?.close();
  await sql?.end();
  await mollie?.close();
  await gocardless?.close();
  await sink?.close();
  await database?.drop();
}, 30_000);

async function call(target: { request: ReturnType<typeof createApp>['request'] }, label: string, path: string, init: RequestInit = {}) {
  const res = await target.request(path, init);
  const body = await res.text();
  responses.push({ label, status: res.status, requestId: res.headers.get('x-request-id'), body });
  return { res, body, status: res.status };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const form = (body: string, extra: Record<string, string> = {}) => ({
  method: 'POST',
  body,
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...extra },
});

describe('the admin token is compared in constant time', () => {
  const spy = vi.mocked(timingSafeEqual);
  const wrongTokens = ['', 'x', ADMIN_TOKEN.slice(0, -1), `${ADMIN_TOKEN.slice(0, -1)}X`, `${ADMIN_TOKEN}x`, 'a'.repeat(64), 'b'.repeat(5000)];

  it('the /v1 middleware hashes both sides and compares equal-length digests, whatever the guess', async () => {
    const unit = new Hono<AppEnv>();
    unit.onError((error, c) => toErrorResponse(error, c));
    unit.use('*', requireAdminToken(ADMIN_TOKEN));
    unit.get('/', (c) => c.text('ok'));
    for (const token of wrongTokens) {
      spy.mockClear();
      const res = await unit.request('/', { headers: bearer(token) });
      expect(res.status, JSON.stringify(token.slice(0, 20))).toBe(401);
      // An empty "Bearer " has no token to compare; every other guess is compared once, as 32-byte digests.
      if (token !== '') {
        expect(spy).toHaveBeenCalledTimes(1);
        const [a, b] = spy.mock.calls[0]! as [Uint8Array, Uint8Array];
        expect([a.length, b.length]).toEqual([32, 32]);
      }
    }
    spy.mockClear();
    expect((await unit.request('/', { headers: bearer(ADMIN_TOKEN) })).status).toBe(200);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('the console sign-in does the same', () => {
    for (const token of wrongTokens) {
      spy.mockClear();
      expect(tokenMatches(token, ADMIN_TOKEN)).toBe(false);
      expect(spy).toHaveBeenCalledTimes(1);
      expect((spy.mock.calls[0]! as [Uint8Array, Uint8Array]).map((x) => x.length)).toEqual([32, 32]);
    }
    expect(tokenMatches(ADMIN_TOKEN, ADMIN_TOKEN)).toBe(true);
  });

  it('over HTTP, wrong tokens of every length get the same 401', async () => {
    // An app of its own: wrong tokens are throttled per app past 10 a minute (hardening-throttle.test.ts).
    const app = createApp(deps);
    const answers = new Set<string>();
    for (const token of wrongTokens) {
      const { res, body } = await call(app, 'v1 wrong token', '/v1/payments', { headers: bearer(token) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const error = (JSON.parse(body) as { error: Record<string, unknown> }).error;
      answers.add(JSON.stringify({ ...error, requestId: undefined }));
    }
    // The scheme is case-insensitive (`bearer` is Bearer); anything else is refused.
    expect((await call(app, 'v1 lower-case scheme', '/v1/payments', { headers: { authorization: `bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    for (const header of [`Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN, `Bearer  ${ADMIN_TOKEN}`]) {
      expect((await call(app, 'v1 malformed auth', '/v1/payments', { headers: { authorization: header } })).status).toBe(401);
    }
    expect((await call(app, 'v1 no auth', '/v1/payments')).status).toBe(401);
    // One answer for every wrong token: nothing in it tells a near miss from a wild guess.
    expect(answers.size).toBe(1);
    expect((await call(app, 'v1 right token', '/v1/payments', { headers: bearer(ADMIN_TOKEN) })).status).toBe(200);
  });
});

describe('no secret reaches a log', () => {
  it('through webhooks, provider errors, /v1, the console and the background jobs', async () => {
    // Mollie: a classic webhook, good and bad next-gen signatures, a payment with personal data.
    const ideal = mollie.createPayment({ method: 'ideal', details: PERSONAL, status: 'paid' });
    const card = mollie.createPayment({ method: 'creditcard', details: CARD, status: 'authorized' });
    expect((await call(app, 'mollie classic', '/webhooks/mollie', form(`id=${ideal.id}`))).status).toBe(200);
    const event = JSON.stringify(buildMollieEvent({ type: 'payment.authorized', entityId: card.id, mode: 'snapshot', entity: mollie.paymentJson(card.id) }));
    for (const [label, signature, status] of [
      ['mollie event, current secret', signMollieBody(event, MOLLIE_WEBHOOK_SECRETS[0]!), 200],
      ['mollie event, previous secret', `sha256=${signMollieBody(event, MOLLIE_WEBHOOK_SECRETS[1]!)}`, 200],
      ['mollie event, forged', signMollieBody(event, 'not-the-secret'), 401],
    ] as const) {
      const res = await call(app, label, '/webhooks/mollie', { method: 'POST', body: event, headers: { 'content-type': 'application/json', 'x-mollie-signature': signature } });
      expect(res.status, label).toBe(status);
    }

    // GoCardless: a signed batch, a forged one, one without a signature.
    const gcPayment = gocardless.createPayment({ amount: 2500, currency: 'EUR', description: 'Invoice 7' });
    gocardless.setPaymentStatus(gcPayment.id, 'confirmed');
    const batch = JSON.stringify({ events: gocardless.state.events, meta: { webhook_id: 'WB_SECURITY' } });
    expect((await call(app, 'gc signed', '/webhooks/gocardless', { method: 'POST', body: batch, headers: { 'content-type': 'application/json', 'webhook-signature': signGoCardlessBody(batch, GOCARDLESS_WEBHOOK_SECRET) } })).status).toBe(204);
    expect((await call(app, 'gc forged', '/webhooks/gocardless', { method: 'POST', body: batch, headers: { 'content-type': 'application/json', 'webhook-signature': signGoCardlessBody(batch, 'nope') } })).status).toBe(498);
    expect((await call(app, 'gc unsigned', '/webhooks/gocardless', { method: 'POST', body: batch, headers: { 'content-type': 'application/json' } })).status).toBe(498);

    // Provider errors: a key the provider refuses (401), then rate limits (429).
    expect((await call(wrongKeyApp, 'mollie 401', `/v1/payments/mollie/${ideal.id}/sync`, { method: 'POST', headers: bearer(ADMIN_TOKEN) })).status).toBe(502);
    expect((await call(wrongKeyApp, 'gc 401', `/v1/payments/gocardless/${gcPayment.id}/sync`, { method: 'POST', headers: bearer(ADMIN_TOKEN) })).status).toBe(502);
    expect((await call(wrongKeyApp, 'mollie webhook, 401 behind it', '/webhooks/mollie', form(`id=${card.id}`))).status).toBe(200);
    mollie.failNext({ status: 429, count: 50, retryAfterS: 1 });
    expect((await call(app, 'mollie 429', `/v1/payments/mollie/${card.id}/sync`, { method: 'POST', headers: bearer(ADMIN_TOKEN) })).status).toBe(503);
    mollie.state.faults.length = 0;
    gocardless.rateLimitNext(20, { resetMs: 1000 });
    expect((await call(app, 'gc 429', `/v1/payments/gocardless/${gcPayment.id}/sync`, { method: 'POST', headers: bearer(ADMIN_TOKEN) })).status).toBe(503);
    gocardless.clearFaults();
    // The 429s paused both accounts; the rest of this test is about logs, not waiting them out.
    await deps.rateLimitPauses.resume('mollie', 'default');
    await deps.rateLimitPauses.resume('gocardless', 'default');

    // /v1 with the token.
    expect((await call(app, 'v1 track', '/v1/payments', { method: 'POST', body: JSON.stringify({ provider: 'mollie', id: card.id }), headers: { ...bearer(ADMIN_TOKEN), 'content-type': 'application/json' } })).status).toBeLessThan(300);
    expect((await call(app, 'v1 get', `/v1/payments/mollie/${ideal.id}`, { headers: bearer(ADMIN_TOKEN) })).status).toBe(200);
    expect((await call(app, 'v1 events', '/v1/events', { headers: bearer(ADMIN_TOKEN) })).status).toBe(200);

    // Console sign-in, wrong then right, and a page with the session.
    const origin = { origin: 'http://localhost' };
    expect((await call(app, 'console wrong token', '/console/sign-in', form('token=not-the-admin-token&next=/console', origin))).status).toBe(401);
    const signIn = await call(app, 'console sign-in', '/console/sign-in', form(`token=${encodeURIComponent(ADMIN_TOKEN)}&next=/console`, origin));
    expect(signIn.status).toBe(303);
    const cookie = signIn.res.headers.get('set-cookie')!.split(';')[0]!;
    expect(cookie).not.toContain(ADMIN_TOKEN);
    expect((await call(app, 'console page', '/console', { headers: { cookie } })).status).toBe(200);
    expect((await call(app, 'console payment', `/console/payments/mollie/${ideal.id}`, { headers: { cookie } })).status).toBe(200);

    // Let the background jobs work: the receipt worker retries what the wrong key left
    // pending, the relay delivers to the sink (credentials in its URL), the poller and
    // the recovery and sweep passes run into the refused key.
    await sql`update webhook_receipts set next_attempt_at = now() where state = 'pending'`;
    await sql`update payments set next_poll_at = now() where next_poll_at is not null`;
    await eventually(async () => sink.events.length > 0 && logLines.some((l) => l.includes('"job":"poller"')), {
      what: 'events delivered and a poller pass logged',
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    await Promise.all(jobs.splice(0).map((j) => j.stop()));
    await deps.background.drain();
    await wrongKeyDeps.background.drain();

    const log = logLines.join('');
    // The test saw what it meant to: refusals, provider failures, jobs.
    expect(log).toMatch(/"outcome":"bad_signature"/);
    expect(log).toMatch(/unauthorized|401/);
    expect(log).toMatch(/rate/i);
    expect(log).toMatch(/"job":"event-relay"/);
    const secrets = {
      ADMIN_TOKEN,
      MOLLIE_API_KEY,
      WRONG_MOLLIE_API_KEY,
      GOCARDLESS_ACCESS_TOKEN,
      WRONG_GOCARDLESS_ACCESS_TOKEN,
      MOLLIE_WEBHOOK_SECRET_0: MOLLIE_WEBHOOK_SECRETS[0]!,
      MOLLIE_WEBHOOK_SECRET_1: MOLLIE_WEBHOOK_SECRETS[1]!,
      GOCARDLESS_WEBHOOK_SECRET,
      EVENT_SINK_SECRET,
      EVENT_SINK_KEY: EVENT_SINK_SECRET.slice('whsec_'.length),
      SINK_PASSWORD,
      SINK_QUERY_TOKEN,
    };
    const leaked = Object.entries(secrets).filter(([, secret]) => log.includes(secret) || log.includes(encodeURIComponent(secret)));
    expect(leaked.map(([name]) => name)).toEqual([]);
    // Nor personal data from the provider's snapshots.
    expect(PERSONAL_STRINGS.filter((text) => log.includes(text))).toEqual([]);
    // The sink got signed events although its URL carries credentials: they travel as Basic auth.
    expect(sink.rejected).toBe(0);
    expect(splitCredentials('https://hook%40user:p%3Ass@billing.example/in?token=t')).toEqual({
      url: 'https://billing.example/in?token=t',
      authorization: `Basic ${Buffer.from('hook@user:p:ss').toString('base64')}`,
    });
  }, 60_000);
});

describe('personal data', () => {
  it('Mollie consumer names, IBANs and card holders never reach snapshots, transitions or the outbox', async () => {
    const ids = [
      mollie.createPayment({ method: 'ideal', details: PERSONAL, status: 'paid' }).id,
      mollie.createPayment({ method: 'creditcard', details: CARD, status: 'paid' }).id,
      mollie.createPayment({ method: 'banktransfer', details: { bankName: 'Stichting Mollie Payments', bankAccount: 'NL53INGB0618365937', transferReference: 'RF12-3456', consumerName: PERSONAL.consumerName, consumerAccount: PERSONAL.consumerAccount }, status: 'paid' }).id,
    ];
    for (const id of ids) {
      // The wire payload does carry the data: the test would notice if the sandbox stopped sending it.
      expect(JSON.stringify(mollie.paymentJson(id))).toMatch(/Persoonlijk|Kaarthouder/);
      expect((await call(app, 'mollie pii webhook', '/webhooks/mollie', form(`id=${id}`))).status).toBe(200);
    }
    const stored = await sql<{ text: string }[]>`
      select snapshot::text as text from payments
      union all select snapshot::text from payment_transitions
      union all select payload::text from outbox
      union all select coalesce(metadata::text, '') from payments`;
    expect(stored.length).toBeGreaterThanOrEqual(ids.length * 3);
    const found = PERSONAL_STRINGS.filter((text) => stored.some((row) => row.text.includes(text)));
    expect(found).toEqual([]);
    // What is kept is what billing needs.
    const [row] = await sql<{ snapshot: Record<string, unknown> }[]>`select snapshot from payments where provider_payment_id = ${ids[0]!}`;
    expect(row!.snapshot).toMatchObject({ id: ids[0], status: 'paid', amount: { currency: 'EUR' } });
    expect(row!.snapshot).not.toHaveProperty('details');
  });

  it('GoCardless snapshots keep only the payment resource: ids, amounts and the merchant’s own text', async () => {
    const payment = gocardless.createPayment({ amount: 990, currency: 'GBP', description: 'Order 42', reference: 'REF42' });
    expect((await call(app, 'gc sync', `/v1/payments/gocardless/${payment.id}/sync`, { method: 'POST', headers: bearer(ADMIN_TOKEN) })).status).toBe(200);
    const [row] = await sql<{ snapshot: Record<string, unknown> }[]>`select snapshot from payments where provider_payment_id = ${payment.id}`;
    const documented = ['id', 'created_at', 'charge_date', 'amount', 'amount_refunded', 'currency', 'description', 'reference', 'status', 'scheme', 'metadata', 'retry_if_possible', 'faster_ach', 'fx', 'links'];
    expect(Object.keys(row!.snapshot).filter((key) => !documented.includes(key))).toEqual([]);
    expect(Object.keys(row!.snapshot.links as object).every((key) => ['mandate', 'creditor', 'payout', 'subscription', 'instalment_schedule'].includes(key))).toBe(true);
  });
});

describe('responses', () => {
  it('never carry a stack trace, even for an internal error', async () => {
    const throwing: PaymentProvider = {
      name: 'mollie',
      hasAccount: () => true,
      fetchPayment: async () => {
        throw new Error(`kaboom in ${import.meta.filename}`);
      },
    };
    const brokenDeps = buildTestDeps({ DATABASE_URL: database.url, ADMIN_TOKEN }, { providers: { mollie: throwing }, logger: createLogger('debug', destination) });
    const broken = createApp(brokenDeps);
    try {
      const sync = await call(broken, 'internal error', '/v1/payments/mollie/tr_kaboom/sync', { method: 'POST', headers: bearer(ADMIN_TOKEN) });
      expect(sync.status).toBe(500);
      expect(JSON.parse(sync.body)).toMatchObject({ error: { code: 'internal', message: 'internal error' } });
      // The webhook path keeps the receipt and answers as always.
      expect((await call(broken, 'webhook, provider throws', '/webhooks/mollie', form('id=tr_kaboom'))).status).toBe(200);
      // A console page whose database is gone, and /v1 on the same.
      const signIn = await call(broken, 'console sign-in (broken)', '/console/sign-in', form(`token=${encodeURIComponent(ADMIN_TOKEN)}`, { origin: 'http://localhost' }));
      const cookie = signIn.res.headers.get('set-cookie')!.split(';')[0]!;
      await brokenDeps.database.close();
      expect((await call(broken, 'console, database gone', '/console', { headers: { cookie } })).status).toBe(500);
      expect((await call(broken, 'v1, database gone', '/v1/payments', { headers: bearer(ADMIN_TOKEN) })).status).toBe(503);
    } finally {
      await brokenDeps.close().catch(() => {});
    }
    // Every response this file received, whatever its status.
    expect(responses.length).toBeGreaterThan(20);
    const traced = responses.filter((r) => /\n\s+at |\bat [\w.<>]+ \(|[\w/.-]+\.(?:ts|js|tsx):\d+|node_modules|\/work\/|kaboom/.test(r.body));
    expect(traced.map((r) => `${r.label} ${r.status}: ${r.body.slice(0, 200)}`)).toEqual([]);
  });

  it('every response carries a request id, the caller’s own when it is sane', async () => {
    const disabled = buildTestDeps({ DATABASE_URL: database.url, ADMIN_TOKEN: undefined }, { logger: createLogger('silent') });
    const disabledApp = createApp(disabled);
    try {
      const cases: [string, Promise<{ status: number }>, number][] = [
        ['404', call(app, '404', '/nope'), 404],
        ['404 webhook account', call(app, '404 account', '/webhooks/mollie/nope', form('id=tr_x')), 404],
        ['413', call(app, '413', '/webhooks/mollie', form(`id=tr_${'a'.repeat(300 * 1024)}`)), 413],
        ['498', call(app, '498', '/webhooks/gocardless', { method: 'POST', body: '{}', headers: { 'webhook-signature': 'f'.repeat(64) } }), 498],
        ['401', call(app, '401', '/v1/payments'), 401],
        ['400', call(app, '400', '/webhooks/mollie', form('nothing=here')), 400],
        ['415', call(app, '415', '/v1/payments', { method: 'POST', body: 'x', headers: bearer(ADMIN_TOKEN) }), 415],
        ['healthz', call(app, 'healthz', '/healthz'), 200],
        ['readyz', call(app, 'readyz', '/readyz'), 200],
        ['metrics', call(app, 'metrics', '/metrics'), 200],
        ['console sign-in page', call(app, 'console sign-in page', '/console/sign-in'), 200],
        ['console redirect', call(app, 'console redirect', '/console/payments'), 302],
        ['console 403', call(app, 'console csrf', '/console/sign-out', { method: 'POST' }), 403],
        ['console 401', call(app, 'console 401', '/console/sign-in', form('token=wrong', { origin: 'http://localhost' })), 401],
        ['console 503', call(disabledApp, 'console disabled', '/console'), 503],
        ['v1 503', call(disabledApp, 'v1 disabled', '/v1/payments'), 503],
      ];
      for (const [label, pending, status] of cases) expect((await pending).status, label).toBe(status);
      const ids = responses.map((r) => r.requestId);
      expect(ids.filter((id) => !/^req_[0-9a-f]{32}$/.test(id ?? ''))).toEqual([]);
      expect(new Set(ids).size).toBe(ids.length);

      const own = await app.request('/healthz', { headers: { 'x-request-id': 'lb-1234.abc:5' } });
      expect(own.headers.get('x-request-id')).toBe('lb-1234.abc:5');
      for (const insane of ['has space', 'x'.repeat(200), 'new\tline', '"quoted"']) {
        const res = await app.request('/healthz', { headers: { 'x-request-id': insane } });
        expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
      }
    } finally {
      await disabled.close();
    }
  });
});

describe('the only unauthenticated writes are the webhooks and the console sign-in', () => {
  const PUBLIC_WRITES = ['/webhooks/mollie', '/webhooks/mollie/:account', '/webhooks/gocardless', '/webhooks/gocardless/:account', '/console/sign-in'];
  const concrete = (path: string) =>
    path
      .replace(':provider', 'mollie')
      .replace(':account', 'default')
      .replace(':id', '1')
      .replace(/:\w+/g, 'x');

  it('every other non-GET route refuses a caller without credentials', async () => {
    const writes = app.routes.filter((r) => !['GET', 'HEAD', 'ALL', 'OPTIONS'].includes(r.method));
    const paths = [...new Set(writes.map((r) => `${r.method} ${r.path}`))];
    // The enumeration found the surface (a typo in it would make this test vacuous).
    expect(paths).toEqual(expect.arrayContaining(['POST /v1/payments', 'POST /v1/payments/:provider/:id/sync', 'POST /console/sign-out']));
    const protectedWrites = writes.filter((r) => !PUBLIC_WRITES.includes(r.path));
    expect(protectedWrites.length).toBeGreaterThanOrEqual(5);
    // Catch-all handlers (app.all) would be writes too: there must be none outside the console's disabled mode.
    expect(app.routes.filter((r) => r.method === 'ALL' && !r.path.endsWith('*'))).toEqual([]);

    const before = await sql<{ n: number }[]>`select (select count(*) from payments) + (select count(*) from event_deliveries where state <> 'pending') as n`;
    for (const route of protectedWrites) {
      const path = concrete(route.path);
      const init = { method: route.method, body: JSON.stringify({ provider: 'mollie', id: 'tr_unauth' }), headers: { 'content-type': 'application/json' } };
      const { status } = await call(app, `unauthenticated ${route.method} ${route.path}`, path, init);
      expect([401, 403, 503], `${route.method} ${route.path} answered ${status}`).toContain(status);
      // A browser-like POST from the console's own origin but without a session is sent to sign in, never served.
      if (route.path.startsWith('/console')) {
        const res = await app.request(path, { ...init, headers: { ...init.headers, origin: 'http://localhost' } });
        if (res.status >= 300 && res.status < 400) expect(res.headers.get('location')).toMatch(/^\/console\/sign-in/);
        else expect(res.status).toBeGreaterThanOrEqual(400);
      }
    }
    const after = await sql<{ n: number }[]>`select (select count(*) from payments) + (select count(*) from event_deliveries where state <> 'pending') as n`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });
});
