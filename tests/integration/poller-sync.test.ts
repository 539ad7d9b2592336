import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { LockBusyError } from '../../src/lock/locker.js';
import { syncPayment } from '../../src/payments/sync-payment.js';
import { markPaymentDue } from '../../src/poller/leases.js';
import { pollOnce } from '../../src/poller/poller.js';
import { createScriptedProvider, type ScriptedProvider } from '../../src/sandbox/scripted-provider.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually } from '../helpers/deps.js';

/**
 * The poller inside one gateway: a webhook that loses the lock to a poll is not lost,
 * tracking a payment starts polling it, and a payment that outlives its expected life
 * is escalated exactly once.
 */

let database: TestDatabase;
let sql: postgres.Sql;
let deps: Deps;
let provider: ScriptedProvider;
const slow = new Map<string, number>();

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  provider = createScriptedProvider({ name: 'mollie', latencyMs: (id) => slow.get(id) ?? 0 });
  deps = buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, POLLER_RATE_PER_SECOND: '1000', POLLER_RATE_BURST: '1000' },
    { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('poller-sync') },
  );
});

beforeEach(async () => {
  // Each test polls only its own payments.
  await sql`update payments set next_poll_at = null`;
});

afterAll(async () => {
  await deps?.close();
  await sql?.end();
  await database?.drop();
});

async function row(id: string) {
  const [payment] = await sql<{ status: string; next_poll_at: Date | null; poll_lease_owner: string | null; stuck_notified_at: Date | null; version: number }[]>`
    select status, next_poll_at, poll_lease_owner, stuck_notified_at, version from payments where provider_payment_id = ${id}`;
  return payment!;
}

async function track(id: string) {
  return syncPayment(deps, { provider: 'mollie', account: 'default', providerPaymentId: id, source: 'track' });
}

const makeDue = (id: string) => sql`update payments set next_poll_at = now() where provider_payment_id = ${id}`;

describe('a webhook that arrives while a poll holds the payment', () => {
  it('is not lost: the payment is polled again right after and ends in the provider’s latest status', async () => {
    const id = 'tr_during';
    const startedAt = Date.now() - 1000;
    provider.script({ id, startedAt, steps: [{ atMs: 0, providerStatus: 'open' }] });
    await track(id);
    await makeDue(id);

    // The poll's fetch reads "open" as it starts and takes 1.5 s to answer...
    slow.set(id, 1500);
    const firstPass = pollOnce(deps, { limit: 10 });
    await eventually(async () => provider.fetchCount(id) === 2, { what: 'the poll to start fetching' });
    // ...meanwhile the customer pays, and the provider's webhook comes in.
    provider.script({ id, startedAt, steps: [{ atMs: 0, providerStatus: 'open' }, { atMs: Date.now() - startedAt, providerStatus: 'paid' }] });
    const webhook = syncPayment(deps, { provider: 'mollie', account: 'default', providerPaymentId: id, source: 'webhook', lockWaitMs: 100 });
    await expect(webhook).rejects.toBeInstanceOf(LockBusyError);
    // What the webhook path does on LockBusyError (besides leaving its receipt pending).
    expect(await markPaymentDue(deps.db, 'mollie', id)).toBe(true);

    const first = await firstPass;
    expect(first).toMatchObject({ leased: 1, polled: 1, changed: 0 });
    // The poll wrote what it saw when it started: the change the webhook announced is not in yet.
    const afterPoll = await row(id);
    expect(afterPoll.status).toBe('open');
    expect(afterPoll.poll_lease_owner).toBeNull();
    // The release kept the webhook's request: due now, not at the poll's own backoff.
    expect(afterPoll.next_poll_at!.getTime()).toBeLessThanOrEqual(Date.now());

    slow.delete(id);
    const second = await pollOnce(deps, { limit: 10 });
    expect(second).toMatchObject({ leased: 1, polled: 1, changed: 1 });
    const final = await row(id);
    expect(final.status).toBe('paid');
    expect(final.next_poll_at).toBeNull();
    // The webhook never fetched (it lost the lock); the poll fetched twice after tracking.
    expect(provider.fetchCount(id)).toBe(3);
    const events = await sql<{ type: string }[]>`select type from outbox where provider_payment_id = ${id} order by id`;
    expect(events.map((e) => e.type)).toEqual(['payment.open', 'payment.paid']);
  });

  it('markPaymentDue says so when the gateway does not know the payment (the receipt must stay pending)', async () => {
    expect(await markPaymentDue(deps.db, 'mollie', 'tr_never_seen')).toBe(false);
  });
});

describe('tracking a payment created elsewhere', () => {
  it('POST /v1/payments schedules its first poll through the schedulePoll hook, and the poller takes it', async () => {
    const app = createApp(deps);
    provider.script({ id: 'tr_tracked', startedAt: Date.now() - 1000, steps: [{ atMs: 0, providerStatus: 'open' }] });
    provider.script({ id: 'tr_tracked_paid', startedAt: Date.now() - 1000, steps: [{ atMs: 0, providerStatus: 'paid' }] });
    const before = Date.now();
    const res = await app.request('/v1/payments', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'mollie', id: 'tr_tracked' }),
    });
    expect(res.status).toBe(201);
    const tracked = await row('tr_tracked');
    // The scripted provider says iDEAL: first poll after 30 s ± 20%.
    expect(tracked.next_poll_at!.getTime()).toBeGreaterThanOrEqual(before + 24_000);
    expect(tracked.next_poll_at!.getTime()).toBeLessThanOrEqual(Date.now() + 36_000);
    expect((await res.json()).nextPollAt).toBe(tracked.next_poll_at!.toISOString());

    const paid = await app.request('/v1/payments', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'mollie', id: 'tr_tracked_paid' }),
    });
    expect(paid.status).toBe(201);
    expect((await row('tr_tracked_paid')).next_poll_at).toBeNull();

    // Time passes (the due time moves back), and the poller picks it up.
    await sql`update payments set next_poll_at = next_poll_at - interval '1 minute' where provider_payment_id = 'tr_tracked'`;
    const pass = await pollOnce(deps, { limit: 10 });
    expect(pass).toMatchObject({ leased: 1, polled: 1 });
    const polled = await row('tr_tracked');
    expect(polled.next_poll_at!.getTime()).toBeGreaterThan(Date.now());
  });
});

describe('a payment past its expected life', () => {
  it('is escalated once: two poll passes, one payment.stuck event', async () => {
    const id = 'tr_stuck';
    // An iDEAL payment Mollie should have expired 15 minutes after creation, still open after two hours.
    const createdAt = Date.now() - 2 * 60 * 60_000;
    provider.script({ id, startedAt: createdAt, steps: [{ atMs: 0, providerStatus: 'open' }] });
    provider.script({ id: 'tr_fresh', startedAt: Date.now() - 60_000, steps: [{ atMs: 0, providerStatus: 'open' }] });
    await track(id);
    await track('tr_fresh');

    for (let pass = 0; pass < 2; pass++) {
      await makeDue(id);
      await makeDue('tr_fresh');
      const summary = await pollOnce(deps, { limit: 10 });
      expect(summary).toMatchObject({ leased: 2, polled: 2, stuck: pass === 0 ? 1 : 0 });
    }

    const events = await sql<{ type: string; provider_payment_id: string; payload: { data: Record<string, unknown> } }[]>`
      select type, provider_payment_id, payload from outbox where type = 'payment.stuck'`;
    expect(events).toHaveLength(1);
    expect(events[0]!.provider_payment_id).toBe(id);
    expect(events[0]!.payload.data).toMatchObject({
      provider: 'mollie',
      paymentId: id,
      status: 'open',
      method: 'ideal',
      expectedFinalBy: new Date(createdAt + 15 * 60_000).toISOString(),
    });
    expect((await row(id)).stuck_notified_at).not.toBeNull();
    expect((await row('tr_fresh')).stuck_notified_at).toBeNull();
    // Still polled: stuck is a warning, not giving up.
    expect((await row(id)).next_poll_at).not.toBeNull();
  });
});
