/**
 * Recovering GoCardless events whose webhooks never came: GET /events from a stored
 * watermark, through the same receipts path, against the sandbox (which lists newest
 * first), real Postgres and real Redis.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createGoCardlessProvider } from '../../src/providers/gocardless/client.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { buildGoCardlessWebhook } from '../../src/sandbox/gocardless-webhook-sender.js';
import { recoverGoCardlessEvents, runGoCardlessEventRecovery } from '../../src/reconciliation/gocardless-recovery.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually } from '../helpers/deps.js';

let database: TestDatabase;
let sql: postgres.Sql;
let sandbox: GoCardlessSandbox;
let deps: Deps;
/** When set, the next GET /events answer is rewritten to say the rate limit is nearly spent. */
let squeezeNextEventsPage: { remaining: string; reset: string } | null = null;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startGoCardlessSandbox();
  const provider = createGoCardlessProvider({
    accounts: { default: { accessToken: sandbox.accessToken } },
    apiUrl: sandbox.url,
    fetcher: async (input, init) => {
      const response = await fetch(input, init);
      if (!squeezeNextEventsPage || !String(input).includes('/events')) return response;
      const { remaining, reset } = squeezeNextEventsPage;
      squeezeNextEventsPage = null;
      const headers = new Headers(response.headers);
      headers.set('ratelimit-remaining', remaining);
      headers.set('ratelimit-reset', reset);
      return new Response(await response.text(), { status: response.status, headers });
    },
  });
  deps = buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, GOCARDLESS_WEBHOOK_SECRETS: sandbox.webhookSecret },
    { providers: { gocardless: provider }, lockKeyPrefix: redisPrefix('gc-recovery') },
  );
});

afterAll(async () => {
  await deps?.close();
  await sandbox?.close();
  await sql?.end();
  await database?.drop();
});

// Registered after the cleanup above, so it runs first (hooks run as a stack): every event
// this file's scenarios produced must match its published JSON Schema.
afterAll(() => expectOutboxMatchesSchemas(database.url));

beforeEach(async () => {
  sandbox.reset();
  squeezeNextEventsPage = null;
  await sql`delete from provider_cursors`;
});

async function cursorRow() {
  const [row] = await sql<{ cursor: string | null; state: { pass: { gt: string; after: string | null } | null; resumeAt: string | null } }[]>`
    select cursor, state from provider_cursors where provider = 'gocardless' and account = 'default' and name = 'events'`;
  return row;
}

async function receiptsFor(eventIds: string[]) {
  if (eventIds.length === 0) return [];
  return sql<{ event_id: string; signature: string; state: string }[]>`
    select event_id, signature, state from webhook_receipts where provider = 'gocardless' and event_id in ${sql(eventIds)}`;
}

function eventsRequests() {
  return sandbox.state.requests.filter((request) => request.path.startsWith('/events'));
}

describe('recovering missed GoCardless webhooks from GET /events', () => {
  it('applies events whose webhook never came, and the late webhook is then a no-op', async () => {
    const payment = sandbox.createPayment({ amount: 1234, currency: 'GBP' });
    sandbox.setPaymentStatus(payment.id, 'submitted');
    const confirmed = sandbox.setPaymentStatus(payment.id, 'confirmed').event!;
    const events = [...sandbox.state.events];

    const result = await recoverGoCardlessEvents(deps, { account: 'default' });
    expect(result).toMatchObject({ outcome: 'completed', pages: 1, events: 3, newEvents: 3, duplicates: 0, watermark: confirmed.created_at });

    const [row] = await sql<{ status: string; provider_status: string; version: number }[]>`
      select status, provider_status, version from payments where provider = 'gocardless' and provider_payment_id = ${payment.id}`;
    expect(row).toMatchObject({ status: 'paid', provider_status: 'confirmed', version: 1 });
    // Three events about one payment cost one fetch.
    expect(sandbox.fetchCount(payment.id)).toBe(1);
    const receipts = await receiptsFor(events.map((event) => event.id));
    expect(receipts).toHaveLength(3);
    for (const receipt of receipts) expect(receipt).toMatchObject({ signature: 'fetched', state: 'processed' });
    const [transition] = await sql<{ source: string }[]>`
      select t.source from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id = ${payment.id}`;
    expect(transition!.source).toBe('sweep');
    expect((await cursorRow())!.cursor).toBe(confirmed.created_at);

    // The webhook finally arrives: acknowledged, nothing stored or fetched again.
    const webhook = buildGoCardlessWebhook(events, sandbox.webhookSecret);
    const res = await createApp(deps).request('/webhooks/gocardless', { method: 'POST', body: webhook.body, headers: webhook.headers });
    expect(res.status).toBe(204);
    await deps.background.drain();
    expect(await receiptsFor(events.map((event) => event.id))).toHaveLength(3);
    expect(sandbox.fetchCount(payment.id)).toBe(1);
    const duplicates = (await deps.metrics.providerEvents.get()).values.find((v) => v.labels.origin === 'webhook' && v.labels.outcome === 'duplicate');
    expect(duplicates?.value).toBe(3);

    // The next pass starts a little before the watermark and finds nothing new.
    const again = await recoverGoCardlessEvents(deps, { account: 'default' });
    expect(again).toMatchObject({ outcome: 'completed', newEvents: 0, duplicates: 3, watermark: confirmed.created_at });
    const gt = new URL(`http://x${eventsRequests().at(-1)!.path}`).searchParams.get('created_at[gt]')!;
    expect(Date.parse(confirmed.created_at) - Date.parse(gt)).toBe(5 * 60_000);
  });

  it('pages through a newest-first list and moves the watermark only when the pass is complete', async () => {
    const created = Array.from({ length: 120 }, () => sandbox.createEvent({ resourceType: 'mandates', action: 'created' }));
    const result = await recoverGoCardlessEvents(deps, { account: 'default', pageLimit: 50 });
    expect(result).toMatchObject({ outcome: 'completed', pages: 3, events: 120, newEvents: 120, watermark: created.at(-1)!.created_at });
    // Newest first: the first page held the newest events.
    const pages = eventsRequests();
    expect(pages.map((request) => new URL(`http://x${request.path}`).searchParams.get('after'))).toEqual([null, created[70]!.id, created[20]!.id]);
    expect(await receiptsFor(created.map((event) => event.id))).toHaveLength(120);
    const [forwarded] = await sql<{ n: number }[]>`
      select count(*)::int as n from outbox where type = 'gocardless.mandates.created' and dedupe_key in ${sql(created.map((e) => `gocardless:event:${e.id}`))}`;
    expect(forwarded!.n).toBe(120);
  });

  it('stops at a 429 and resumes only after the reset', async () => {
    const created = Array.from({ length: 3 }, () => sandbox.createEvent({ resourceType: 'subscriptions', action: 'cancelled' }));
    sandbox.rateLimitNext(1, { resetMs: 1500 });
    const limited = await recoverGoCardlessEvents(deps, { account: 'default' });
    expect(limited.outcome).toBe('rate_limited');
    expect(limited.nextAt.getTime() - Date.now()).toBeGreaterThan(500);
    expect(await receiptsFor(created.map((event) => event.id))).toHaveLength(0);
    expect((await cursorRow())!.state.resumeAt).toBe(limited.nextAt.toISOString());

    // Before the reset no request is made at all.
    const requests = sandbox.state.requests.length;
    expect((await recoverGoCardlessEvents(deps, { account: 'default' })).outcome).toBe('deferred');
    expect(sandbox.state.requests.length).toBe(requests);

    const done = await eventually(
      async () => {
        const result = await recoverGoCardlessEvents(deps, { account: 'default' });
        return result.outcome === 'completed' ? result : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'the pass after the reset' },
    );
    expect(Date.now()).toBeGreaterThanOrEqual(limited.nextAt.getTime());
    expect(done.newEvents).toBe(3);
    expect(await receiptsFor(created.map((event) => event.id))).toHaveLength(3);
  });

  it('stops when the rate limit is nearly spent and resumes the same pass from its page cursor', async () => {
    const created = Array.from({ length: 120 }, () => sandbox.createEvent({ resourceType: 'payouts', action: 'paid' }));
    squeezeNextEventsPage = { remaining: '3', reset: '1' };
    const first = await recoverGoCardlessEvents(deps, { account: 'default', pageLimit: 50 });
    expect(first).toMatchObject({ outcome: 'rate_limited', pages: 1, newEvents: 50, watermark: null });
    const saved = (await cursorRow())!;
    expect(saved.state.pass?.after).toBe(created[70]!.id);

    const rest = await eventually(
      async () => {
        const result = await recoverGoCardlessEvents(deps, { account: 'default', pageLimit: 50 });
        return result.outcome === 'completed' ? result : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'the resumed pass' },
    );
    // Resumed at page 2 under the same filter, not from the start.
    expect(rest).toMatchObject({ pages: 2, newEvents: 70, duplicates: 0, watermark: created.at(-1)!.created_at });
    const resumed = new URL(`http://x${eventsRequests().at(-2)!.path}`).searchParams;
    expect(resumed.get('after')).toBe(created[70]!.id);
    expect(resumed.get('created_at[gt]')).toBe(saved.state.pass!.gt);
    expect(await receiptsFor(created.map((event) => event.id))).toHaveLength(120);
  });

  it('drops a page cursor GoCardless refuses and starts the pass again', async () => {
    const created = sandbox.createEvent({ resourceType: 'mandates', action: 'cancelled' });
    await sql`
      insert into provider_cursors (provider, account, name, cursor, state)
      values ('gocardless', 'default', 'events', null,
              ${sql.json({ pass: { gt: new Date(Date.now() - 60_000).toISOString(), after: 'EV000GONE', maxSeen: null }, resumeAt: null, completedAt: null, floor: null })})`;
    const failed = await recoverGoCardlessEvents(deps, { account: 'default' });
    expect(failed.outcome).toBe('failed');
    expect(failed.error).toMatch(/400 invalid_api_usage/);
    expect((await cursorRow())!.state.pass).toBeNull();
    expect(await recoverGoCardlessEvents(deps, { account: 'default' })).toMatchObject({ outcome: 'completed', newEvents: 1 });
    expect(await receiptsFor([created.id])).toHaveLength(1);
  });

  it('lets one process page at a time', async () => {
    sandbox.createEvent({ resourceType: 'mandates', action: 'created' });
    sandbox.setLatency(100);
    const outcomes = await Promise.all([recoverGoCardlessEvents(deps, { account: 'default' }), recoverGoCardlessEvents(deps, { account: 'default' })]);
    sandbox.setLatency(0);
    expect(outcomes.map((result) => result.outcome).sort()).toEqual(['busy', 'completed']);
  });

  it('runs by itself in the background loop', async () => {
    const loopDeps = { ...deps, env: { ...deps.env, GOCARDLESS_EVENTS_INTERVAL_MS: 200 } };
    const controller = new AbortController();
    const loop = runGoCardlessEventRecovery(loopDeps, { signal: controller.signal });
    try {
      const payment = sandbox.createPayment();
      sandbox.setPaymentStatus(payment.id, 'failed');
      await eventually(async () => {
        const [row] = await sql<{ status: string }[]>`select status from payments where provider_payment_id = ${payment.id}`;
        return row?.status === 'failed';
      }, { what: 'the background pass to apply the missed events' });
    } finally {
      controller.abort();
      await loop;
    }
  });
});
