/**
 * The operator console over app.request(): sign-in, the session cookie, CSRF, what the
 * pages show and what they must never show. Real Postgres; no Redis (in-process lock).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionValue, SESSION_COOKIE, verifySessionValue } from '../../src/console/session.js';
import { getWebhookVolume } from '../../src/console/queries.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { applySnapshot, takeFetchFence } from '../../src/payments/apply-snapshot.js';
import type { PaymentSnapshot } from '../../src/providers/types.js';
import { recordReceipts } from '../../src/webhooks/receipts.js';
import { createAmqpSink } from '../../src/events/amqp-sink.js';
import { disableSinkAfterGone, enableSink, registerSinks } from '../../src/events/deliveries.js';
import { createNatsSink } from '../../src/events/nats-sink.js';
import { acceptingSink, deadLetterIds, deliveryState, failingSink, relayUntilSettled } from '../helpers/console-fixtures.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';

let database: TestDatabase;
let deps: Deps;
let app: ReturnType<typeof createApp>;

const ORIGIN = 'http://localhost';
const PAYMENT = 'tr_console1';
const EMAIL = 'jane.doe@example.com';

function snapshot(status: 'open' | 'paid'): PaymentSnapshot {
  return {
    provider: 'mollie',
    account: 'default',
    providerPaymentId: PAYMENT,
    providerStatus: status,
    status,
    amount: { minor: 4995, currency: 'EUR' },
    refundedMinor: 0,
    chargedBackMinor: 0,
    mode: 'test',
    method: 'ideal',
    // Personal data the console must never render.
    metadata: { customerEmail: EMAIL },
    providerCreatedAt: new Date(),
    raw: { id: PAYMENT, status, consumerName: 'Jane Doe' },
  };
}

function form(fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

function cookieValue(response: Response): string | undefined {
  const header = response.headers.get('set-cookie') ?? '';
  return new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(header)?.[1];
}

async function signIn(): Promise<string> {
  const res = await app.request('/console/sign-in', form({ token: TEST_ADMIN_TOKEN }));
  expect(res.status).toBe(303);
  return `${SESSION_COOKIE}=${cookieValue(res)}`;
}

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url });
  app = createApp(deps);

  // A payment's life through the real write path, a webhook receipt about it with a
  // hostile error text, and its events relayed to one sink that accepts and one that fails.
  const [receipt] = await recordReceipts(deps.db, [
    {
      provider: 'mollie',
      account: 'default',
      resourceType: 'payment',
      resourceId: PAYMENT,
      body: new TextEncoder().encode(`id=${PAYMENT}&email=${EMAIL}`),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-customer': EMAIL },
      signature: 'absent',
    },
  ]);
  await deps.db.execute(sql`update webhook_receipts set last_error = '<script>alert(1)</script>' where id = ${receipt!.id}`);
  await applySnapshot(deps.db, { snapshot: snapshot('open'), fence: await takeFetchFence(deps.db), source: 'sync' });
  await applySnapshot(deps.db, { snapshot: snapshot('paid'), fence: await takeFetchFence(deps.db), source: 'webhook', receiptId: receipt!.id });
  await relayUntilSettled(deps, [acceptingSink(), failingSink()]);
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

describe('console sign-in and session', () => {
  const pages = ['/console', '/console/payments', `/console/payments/mollie/${PAYMENT}`, '/console/pollers', '/console/accounts', '/console/outbox'];

  it('sends every page to sign-in without a cookie, remembering where it was going', async () => {
    for (const path of pages) {
      const res = await app.request(path);
      expect(res.status, path).toBe(302);
      expect(res.headers.get('location'), path).toBe(`/console/sign-in?next=${encodeURIComponent(path)}`);
    }
    const post = await app.request('/console/dead-letters/1/redrive', form({ back: '/console/outbox' }));
    expect(post.status).toBe(303);
    expect(post.headers.get('location')).toMatch(/^\/console\/sign-in\?next=/);
  });

  it('refuses forged, foreign, expired, tampered and raw-token cookies', async () => {
    const now = new Date();
    const valid = createSessionValue(TEST_ADMIN_TOKEN, now);
    const [expiry, mac] = valid.split('.');
    const bad = [
      'garbage',
      TEST_ADMIN_TOKEN, // the bearer token itself is not a session
      createSessionValue('some-other-admin-token-value', now),
      createSessionValue(TEST_ADMIN_TOKEN, new Date(now.getTime() - 13 * 3600_000)),
      `${Number(expiry) + 3600}.${mac}`,
      `${expiry}.${mac!.slice(0, -1)}${mac!.endsWith('A') ? 'B' : 'A'}`,
    ];
    for (const value of bad) {
      const res = await app.request('/console/payments', { headers: { cookie: `${SESSION_COOKIE}=${value}` } });
      expect(res.status, value).toBe(302);
    }
    const good = await app.request('/console/payments', { headers: { cookie: `${SESSION_COOKIE}=${valid}` } });
    expect(good.status).toBe(200);
  });

  it('shows an error for a wrong token and sets no cookie', async () => {
    const res = await app.request('/console/sign-in', form({ token: 'not-the-admin-token-at-all' }));
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(await res.text()).toContain('That is not the admin token.');
  });

  it('signs in with the right token: an HMAC-derived, HttpOnly, SameSite=Strict cookie scoped to /console', async () => {
    const res = await app.request('/console/sign-in', form({ token: TEST_ADMIN_TOKEN, next: '/console/pollers' }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/pollers');
    const header = res.headers.get('set-cookie')!;
    expect(header).toMatch(/HttpOnly/);
    expect(header).toMatch(/SameSite=Strict/);
    expect(header).toMatch(/Path=\/console(;|$)/);
    expect(header).toMatch(/Max-Age=43200/);
    expect(header).not.toMatch(/Secure/); // plain http: a Secure cookie would never come back
    const value = cookieValue(res)!;
    expect(value).not.toContain(TEST_ADMIN_TOKEN);
    expect(verifySessionValue(value, TEST_ADMIN_TOKEN, new Date())).toBe(true);

    const page = await app.request('/console/pollers', { headers: { cookie: `${SESSION_COOKIE}=${value}` } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('Poller health');
  });

  it('marks the cookie Secure when the browser came over https (directly or through a proxy)', async () => {
    const direct = await app.request('https://gw.example/console/sign-in', form({ token: TEST_ADMIN_TOKEN }, { origin: 'https://gw.example' }));
    expect(direct.status).toBe(303);
    expect(direct.headers.get('set-cookie')).toMatch(/Secure/);
    const proxied = await app.request('/console/sign-in', form({ token: TEST_ADMIN_TOKEN }, { 'x-forwarded-proto': 'https' }));
    expect(proxied.headers.get('set-cookie')).toMatch(/Secure/);
  });

  it('only ever redirects to a console path after sign-in', async () => {
    for (const next of ['https://evil.example/', '//evil.example/console', '/v1/payments', '/console/../v1', '/console/sign-out']) {
      const res = await app.request('/console/sign-in', form({ token: TEST_ADMIN_TOKEN, next }));
      expect(res.headers.get('location'), next).toBe('/console');
    }
  });

  it('signs out by expiring the cookie', async () => {
    const cookie = await signIn();
    const res = await app.request('/console/sign-out', form({}, { cookie }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/sign-in?signed-out');
    expect(res.headers.get('set-cookie')).toMatch(new RegExp(`${SESSION_COOKIE}=;.*Max-Age=0`));
  });

  it('is disabled, not open, when ADMIN_TOKEN is unset', async () => {
    const bare = buildTestDeps({ DATABASE_URL: database.url, ADMIN_TOKEN: undefined });
    try {
      const open = createApp(bare);
      expect((await open.request('/console/sign-in')).status).toBe(503);
      expect((await open.request('/console/payments')).status).toBe(503);
      expect((await open.request('/console/sign-in', form({ token: '' }))).status).toBe(503);
    } finally {
      await bare.close();
    }
  });
});

describe('console CSRF protection', () => {
  it('refuses a POST whose Origin is missing or foreign, even with a valid session', async () => {
    const cookie = await signIn();
    const [dead] = await deadLetterIds(deps, PAYMENT);
    expect(dead).toBeDefined();
    for (const origin of [undefined, 'null', 'http://evil.example', 'http://localhost.evil.example']) {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', cookie };
      if (origin) headers.origin = origin;
      const res = await app.request(`/console/dead-letters/${dead}/redrive`, { method: 'POST', headers, body: 'back=%2Fconsole%2Foutbox' });
      expect(res.status, String(origin)).toBe(403);
      expect(await res.text()).toContain('not sent from the console itself');
    }
    expect((await deliveryState(deps, dead!))?.state).toBe('dead');
    // Login CSRF too: a foreign page cannot sign a browser in.
    expect((await app.request('/console/sign-in', form({ token: TEST_ADMIN_TOKEN }, { origin: 'http://evil.example' }))).status).toBe(403);
  });
});

describe('console pages', () => {
  it("renders a payment's timeline: receipt, transitions, events and deliveries, escaped and without personal data", async () => {
    const cookie = await signIn();
    const res = await app.request(`/console/payments/mollie/${PAYMENT}`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html.match(/data-kind="receipt"/g)).toHaveLength(1);
    expect(html.match(/data-kind="transition"/g)).toHaveLength(2);
    expect(html).toContain('data-type="payment.open"');
    expect(html).toContain('data-type="payment.paid"');
    // Two events, two sinks each.
    expect(html.match(/data-kind="delivery"/g)).toHaveLength(4);
    expect(html.match(/data-kind="delivery" data-state="dead"/g)).toHaveLength(2);
    // The second transition names its cause.
    expect(html).toMatch(/after <a href="#receipt-\d+">receipt #\d+<\/a>/);
    // Escaped, never executed.
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>alert(1)');
    // No metadata, snapshot, raw body or headers.
    expect(html).not.toContain(EMAIL);
    expect(html).not.toContain('Jane Doe');
    expect(html).not.toContain('<script');
  });

  it('searches payments by provider, status and id prefix', async () => {
    const cookie = await signIn();
    const hit = await (await app.request(`/console/payments?provider=mollie&status=paid&id=tr_cons`, { headers: { cookie } })).text();
    expect(hit).toContain(`/console/payments/mollie/${PAYMENT}`);
    const miss = await (await app.request(`/console/payments?status=open`, { headers: { cookie } })).text();
    expect(miss).not.toContain(`/console/payments/mollie/${PAYMENT}`);
    expect(miss).toContain('No payments match.');
    // LIKE wildcards in the search are literal.
    const wildcard = await (await app.request(`/console/payments?id=tr_%25`, { headers: { cookie } })).text();
    expect(wildcard).toContain('Ignored: a payment id is');
    const underscore = await (await app.request(`/console/payments?id=t_`, { headers: { cookie } })).text();
    expect(underscore).not.toContain(`/console/payments/mollie/${PAYMENT}`);
    const unknown = await app.request('/console/payments/mollie/tr_nowhere', { headers: { cookie } });
    expect(unknown.status).toBe(404);
  });

  it('searches payments by amount, currency, dates, method, account and metadata key, with a count; metadata is never shown', async () => {
    const cookie = await signIn();
    const count = async (query: string) => {
      const html = await (await app.request(`/console/payments?${query}`, { headers: { cookie } })).text();
      expect(html).not.toContain(EMAIL);
      return { n: Number(/data-testid="payments-count">(\d+) payment/.exec(html)?.[1] ?? -1), html };
    };
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect((await count('')).n).toBe(1);
    expect((await count('min=49.95&max=49.95&currency=eur')).n).toBe(1);
    expect((await count('min=50')).n).toBe(0);
    expect((await count('max=49.94')).n).toBe(0);
    expect((await count('currency=GBP')).n).toBe(0);
    expect((await count('method=ideal&account=default')).n).toBe(1);
    expect((await count('method=creditcard')).n).toBe(0);
    expect((await count('account=other')).n).toBe(0);
    expect((await count(`from=${today}&to=${today}`)).n).toBe(1);
    expect((await count(`from=${tomorrow}`)).n).toBe(0);
    expect((await count('meta=customerEmail')).n).toBe(1);
    expect((await count('meta=orderId')).n).toBe(0);
    expect((await count('meta=customerEmail%3Dsomeone%40example.org')).n).toBe(0);
    const bad = await count('min=lots&from=yesterday&meta=%24bad');
    expect(bad.html).toContain('Ignored: min is an amount such as 49.95; from is a date, YYYY-MM-DD; metadata is a key');
    expect(bad.n).toBe(1);
  });

  it('offers chart ranges and a reload without script', async () => {
    const cookie = await signIn();
    const day = await app.request('/console?range=24h&refresh=30', { headers: { cookie } });
    const html = await day.text();
    expect(html).toContain('<meta http-equiv="refresh" content="30"/>');
    expect(html).toContain('Webhook volume and outcomes, last 24 hours');
    expect(html).toContain('per 15 min, last 24 h, UTC');
    expect([...html.matchAll(/<g data-minute=/g)]).toHaveLength(96);
    expect(html).toContain('href="/console/deliveries?state=dead"');
    expect(html).not.toMatch(/<script/i);
    expect(day.headers.get('content-security-policy')).toContain("default-src 'none'");
    const plain = await (await app.request('/console?range=forever&refresh=1', { headers: { cookie } })).text();
    expect(plain).not.toContain('http-equiv="refresh"');
    expect([...plain.matchAll(/<g data-minute=/g)]).toHaveLength(60);
  });

  it('re-drives a dead letter from the outbox page', async () => {
    const cookie = await signIn();
    const before = await deadLetterIds(deps, PAYMENT);
    const outbox = await (await app.request('/console/outbox', { headers: { cookie } })).text();
    for (const id of before) expect(outbox).toContain(`data-testid="redrive-${id}"`);
    const target = before.at(-1)!;
    const res = await app.request(`/console/dead-letters/${target}/redrive`, form({ back: '/console/outbox' }, { cookie }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/console/outbox?redriven=${target}`);
    expect(await deliveryState(deps, target)).toEqual({ state: 'pending', attempts: 0 });
    // Twice is a no-op that says so.
    const again = await app.request(`/console/dead-letters/${target}/redrive`, form({ back: '/console/outbox' }, { cookie }));
    expect(again.headers.get('location')).toBe(`/console/outbox?not-dead=${target}`);
  });

  it('counts webhook receipts per minute and state for the chart', async () => {
    const now = new Date((await deps.db.execute<{ now: string }>(sql`select date_trunc('minute', now()) as now`))[0]!.now);
    const ids = await recordReceipts(
      deps.db,
      ['a', 'b', 'c', 'd'].map((label) => ({
        provider: 'gocardless' as const,
        account: 'default',
        eventId: `EV_volume_${label}`,
        resourceType: 'payments',
        resourceId: `PM_volume_${label}`,
        body: new TextEncoder().encode('{}'),
        headers: {},
        signature: 'valid' as const,
      })),
    );
    // Two in the current minute (one failed), one five minutes ago, one outside the hour.
    const [, b, c, d] = ids.map((r) => r.id);
    await deps.db.execute(sql`update webhook_receipts set state = 'failed' where id = ${b}`);
    await deps.db.execute(sql`update webhook_receipts set received_at = now() - interval '5 minutes', state = 'processed' where id = ${c}`);
    await deps.db.execute(sql`update webhook_receipts set received_at = now() - interval '2 hours' where id = ${d}`);
    const volume = await getWebhookVolume(deps.db, { minutes: 60, provider: 'gocardless' });
    expect(volume.buckets).toHaveLength(60);
    expect(volume.until.getTime()).toBe(now.getTime());
    const last = volume.buckets.at(-1)!;
    expect(last.counts).toEqual({ processed: 0, ignored: 0, pending: 1, failed: 1 });
    const total = volume.buckets.reduce((sum, bucket) => sum + bucket.counts.processed + bucket.counts.pending + bucket.counts.failed + bucket.counts.ignored, 0);
    expect(total).toBe(3);
    expect(volume.buckets.find((bucket) => bucket.counts.processed === 1)?.minute.getTime()).toBeLessThan(now.getTime());

    const cookie = await signIn();
    const html = await (await app.request('/console', { headers: { cookie } })).text();
    expect(html).toContain('data-testid="volume-chart"');
    expect(html).toMatch(/<rect [^>]*data-state="failed"/);
  });

  it('lists the broker sinks on the sinks page and warns on the overview while a sink is disabled', async () => {
    const secrets = ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'];
    const nats = createNatsSink({ servers: ['nats://user:secret@127.0.0.1:4222'], subjectPrefix: 'billing.events', secrets, timeoutMs: 1000 });
    const amqp = createAmqpSink({ url: 'amqp://guest:guest@127.0.0.1:5672/', exchange: 'payment-events', secrets, timeoutMs: 1000 });
    await registerSinks(deps.db, [nats, amqp]);
    const cookie = await signIn();
    const outbox = await (await app.request('/console/outbox', { headers: { cookie } })).text();
    const table = outbox.slice(outbox.indexOf('data-testid="sinks-table"'));
    expect(table).toContain('<td>nats</td>');
    expect(table).toContain('nats://127.0.0.1:4222 billing.events.&gt;');
    expect(table).toContain('<td>amqp</td>');
    expect(table).toContain('amqp://127.0.0.1:5672/ exchange payment-events');
    expect(outbox).not.toContain('secret@');

    expect(await (await app.request('/console', { headers: { cookie } })).text()).not.toContain('data-testid="sink-disabled"');
    // Disabled as a 410 disables it (no delivery of it is in flight here).
    await disableSinkAfterGone(deps.db, { id: -1, attempts: 0, sinkId: amqp.id }, { status: 410, error: '410 Gone: consumer retired' }, amqp);
    const overview = await (await app.request('/console', { headers: { cookie } })).text();
    expect(overview).toContain('data-testid="sink-disabled"');
    expect(overview).toContain('amqp://127.0.0.1:5672/ exchange payment-events');
    expect(overview).toContain('410 Gone: consumer retired');
    await enableSink(deps.db, amqp.id);
    expect(await (await app.request('/console', { headers: { cookie } })).text()).not.toContain('data-testid="sink-disabled"');
  });
});
