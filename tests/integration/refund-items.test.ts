/**
 * Refund and chargeback items on the write path, against real Postgres: each refund is one
 * row of payment_adjustments, moved only forward, one `refund.*` event per real change;
 * the payment's events name the refunds and chargebacks that moved its amounts. Through
 * applySnapshot (hand-built snapshots, the batched path), syncPayment against the Mollie
 * sandbox, and GoCardless webhooks against the GoCardless sandbox.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { applySnapshot, takeFetchFence } from '../../src/payments/apply-snapshot.js';
import { syncPayment } from '../../src/payments/sync-payment.js';
import { createGoCardlessProvider } from '../../src/providers/gocardless/client.js';
import type { GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import type { PaymentSnapshot, RefundItem, RefundStatus } from '../../src/providers/types.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { buildGoCardlessWebhook } from '../../src/sandbox/gocardless-webhook-sender.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';
import { testSnapshot } from '../helpers/snapshots.js';

const GC_SECRET = 'gc_refund_items_secret';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 4 });
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox();
  gocardless = await startGoCardlessSandbox({ webhookSecret: GC_SECRET });
  deps = buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, GOCARDLESS_WEBHOOK_SECRETS: GC_SECRET },
    {
      providers: {
        mollie: createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: mollie.url, retryConfig: { strategy: 'none' } }),
        gocardless: createGoCardlessProvider({ accounts: { default: { accessToken: gocardless.accessToken } }, apiUrl: gocardless.url }),
      },
      lockKeyPrefix: redisPrefix('refund-items'),
    },
  );
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await mollie?.close();
  await gocardless?.close();
  await sql?.end();
  await db?.close();
  await database?.drop();
});

// Registered after the cleanup above, so it runs first: every event here matches its schema.
afterAll(() =>
  expectOutboxMatchesSchemas(database.url, [
    'payment.refunded',
    'payment.charged_back',
    'payment.chargeback_reversed',
    'refund.queued',
    'refund.pending',
    'refund.processing',
    'refund.refunded',
    'refund.failed',
    'refund.updated',
  ]),
);

const newId = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

interface EventRow {
  type: string;
  dedupe_key: string;
  payment_version: number | null;
  data: Record<string, unknown> & { refund?: { id: string; status: string; version: number; previousStatus: string | null } };
}

async function eventsOf(paymentId: string): Promise<EventRow[]> {
  return sql<EventRow[]>`select type, dedupe_key, payment_version, payload->'data' as data from outbox where provider_payment_id = ${paymentId} order by id`;
}

async function refundEventsOf(paymentId: string) {
  return (await eventsOf(paymentId)).filter((event) => event.type.startsWith('refund.')).map((event) => `${event.data.refund!.id}:${event.type}:v${event.data.refund!.version}`);
}

async function adjustmentRows(paymentId: string) {
  return sql<{ kind: string; provider_item_id: string; status: string; provider_status: string; version: number; amount_minor: number }[]>`
    select kind, provider_item_id, status, provider_status, version, amount_minor::int as amount_minor
    from payment_adjustments where provider_payment_id = ${paymentId} order by provider_item_id`;
}

function refund(id: string, status: RefundStatus, minor = 500, providerStatus: string = status): RefundItem {
  return { id, amount: { minor, currency: 'EUR' }, status, providerStatus, createdAt: new Date('2026-11-02T10:00:00Z') };
}

function withRefunds(id: string, refunds: RefundItem[], refundedMinor = refunds.reduce((sum, r) => sum + r.amount.minor, 0)): PaymentSnapshot {
  return { ...testSnapshot(id, 'paid'), refundedMinor, refunds };
}

async function write(snapshot: PaymentSnapshot, fence?: number) {
  return applySnapshot(db.db, { snapshot, fence: fence ?? (await takeFetchFence(db.db)), source: 'poll' });
}

describe('the write path (applySnapshot)', () => {
  it('two refunds in one change: two rows, two refund events, and payment.refunded names both', async () => {
    const id = newId('tr_two');
    await write(testSnapshot(id, 'paid'));
    const [a, b] = [newId('re_a'), newId('re_b')];
    const result = await write(withRefunds(id, [refund(a, 'pending', 300), refund(b, 'queued', 200)]));
    expect(result).toMatchObject({ changed: true, version: 2 });
    expect(result.eventTypes.sort()).toEqual(['payment.refunded', 'refund.pending', 'refund.queued']);

    expect(await adjustmentRows(id)).toEqual(
      [
        { kind: 'refund', provider_item_id: a, status: 'pending', provider_status: 'pending', version: 1, amount_minor: 300 },
        { kind: 'refund', provider_item_id: b, status: 'queued', provider_status: 'queued', version: 1, amount_minor: 200 },
      ].sort((x, y) => (x.provider_item_id < y.provider_item_id ? -1 : 1)),
    );
    const refunded = (await eventsOf(id)).find((event) => event.type === 'payment.refunded')!;
    expect((refunded.data.refunds as Array<{ id: string }>).map((r) => r.id).sort()).toEqual([a, b].sort());
    expect((refunded.data.changedRefundIds as string[]).sort()).toEqual([a, b].sort());
    expect(refunded.data.refunds).toContainEqual({ id: a, amount: { value: '3.00', currency: 'EUR', minor: 300 }, status: 'pending', providerStatus: 'pending', createdAt: '2026-11-02T10:00:00.000Z' });
    const refundEvent = (await eventsOf(id)).find((event) => event.type === 'refund.pending')!;
    expect(refundEvent.dedupe_key).toBe(`mollie:refund:${a}:v1`);
    expect(refundEvent.payment_version).toBeNull();
    expect(refundEvent.data).toMatchObject({
      provider: 'mollie',
      refund: { id: a, paymentId: id, status: 'pending', previousStatus: null, version: 1, amount: { minor: 300 } },
      payment: { id, status: 'paid', version: 2, amountRefunded: { minor: 500 } },
      source: 'poll',
    });
  });

  it('a refund moving while its payment does not: one refund event per step, none for a repeat, and no payment event', async () => {
    const id = newId('tr_steps');
    const re = newId('re_');
    await write(withRefunds(id, [refund(re, 'queued')]));
    for (const status of ['pending', 'processing', 'refunded'] as const) {
      const first = await write(withRefunds(id, [refund(re, status)]));
      expect(first).toMatchObject({ changed: false, eventTypes: [`refund.${status}`] });
      // The same view again (a webhook and a poll a moment apart): nothing.
      expect(await write(withRefunds(id, [refund(re, status)]))).toMatchObject({ changed: false, eventTypes: [] });
    }
    expect(await refundEventsOf(id)).toEqual([`${re}:refund.queued:v1`, `${re}:refund.pending:v2`, `${re}:refund.processing:v3`, `${re}:refund.refunded:v4`]);
    expect((await eventsOf(id)).filter((event) => event.type.startsWith('payment.')).map((event) => event.type)).toEqual(['payment.paid', 'payment.refunded']);
    const events = (await eventsOf(id)).filter((event) => event.type.startsWith('refund.'));
    expect(events.map((event) => event.data.refund!.previousStatus)).toEqual([null, 'queued', 'pending', 'processing']);
  });

  it('an older snapshot written late never moves a refund back, nor a refunded refund to canceled', async () => {
    const id = newId('tr_stale');
    const re = newId('re_');
    const older = await takeFetchFence(db.db);
    const newer = await takeFetchFence(db.db);
    await write(withRefunds(id, [refund(re, 'refunded')]), newer);
    // Fetched before the refund went through, written after: refused, no event.
    expect(await write(withRefunds(id, [refund(re, 'pending')]), older)).toMatchObject({ changed: false, eventTypes: [] });
    // Even with a later fence: a refund once refunded does not turn canceled or back to processing.
    expect(await write(withRefunds(id, [refund(re, 'processing')]))).toMatchObject({ eventTypes: [] });
    expect(await write(withRefunds(id, [refund(re, 'canceled')]))).toMatchObject({ eventTypes: [] });
    expect(await adjustmentRows(id)).toMatchObject([{ provider_item_id: re, status: 'refunded', version: 1 }]);
    expect(await refundEventsOf(id)).toEqual([`${re}:refund.refunded:v1`]);
    // A refund can still fail after it was refunded (Mollie: the customer's account closed);
    // the stale `refunded` view never brings it back.
    expect(await write(withRefunds(id, [refund(re, 'failed')], 0))).toMatchObject({ eventTypes: ['payment.refund_reversed', 'refund.failed'] });
    const stale = await write(withRefunds(id, [refund(re, 'refunded')]), newer);
    expect(stale.eventTypes.filter((type) => type.startsWith('refund.'))).toEqual([]);
    expect(await refundEventsOf(id)).toEqual([`${re}:refund.refunded:v1`, `${re}:refund.failed:v2`]);
  });

  it('a snapshot without refund lists (GoCardless without refunded amounts) leaves stored refunds alone', async () => {
    const id = newId('tr_absent');
    const re = newId('re_');
    await write(withRefunds(id, [refund(re, 'pending')]));
    expect(await write({ ...testSnapshot(id, 'paid'), refundedMinor: 500 })).toMatchObject({ changed: false, eventTypes: [] });
    expect(await adjustmentRows(id)).toMatchObject([{ provider_item_id: re, status: 'pending', version: 1 }]);
  });

  it('batched: two snapshots of one payment in a flush are written in fence order, one event per real step', async () => {
    const id = newId('tr_batch');
    const re = newId('re_');
    await write(testSnapshot(id, 'paid'));
    const older = await takeFetchFence(db.db);
    const newer = await takeFetchFence(db.db);
    // Submitted in the same tick (one flush), newest first: still written older first.
    const [late, early] = await Promise.all([
      applySnapshot(db.db, { snapshot: withRefunds(id, [refund(re, 'refunded')]), fence: newer, source: 'webhook' }),
      applySnapshot(db.db, { snapshot: withRefunds(id, [refund(re, 'pending')]), fence: older, source: 'poll' }),
    ]);
    expect(early).toMatchObject({ changed: true, version: 2 });
    expect(early.eventTypes.sort()).toEqual(['payment.refunded', 'refund.pending']);
    expect(late).toMatchObject({ changed: false, eventTypes: ['refund.refunded'] });
    expect(await refundEventsOf(id)).toEqual([`${re}:refund.pending:v1`, `${re}:refund.refunded:v2`]);
    const txids = await sql<{ txid: string }[]>`select distinct tx_id::text as txid from outbox where provider_payment_id = ${id} and type like 'refund.%'`;
    expect(txids).toHaveLength(1);

    // And the other way round: the older fetch had seen more of the refund than the newer
    // one's stale replica. The refund stays where the older view put it.
    const other = newId('tr_batch');
    const re2 = newId('re_');
    await write(testSnapshot(other, 'paid'));
    const first = await takeFetchFence(db.db);
    const second = await takeFetchFence(db.db);
    await Promise.all([
      applySnapshot(db.db, { snapshot: withRefunds(other, [refund(re2, 'processing')]), fence: first, source: 'poll' }),
      applySnapshot(db.db, { snapshot: withRefunds(other, [refund(re2, 'pending')]), fence: second, source: 'webhook' }),
    ]);
    expect(await adjustmentRows(other)).toMatchObject([{ provider_item_id: re2, status: 'processing', version: 1 }]);
    expect(await refundEventsOf(other)).toEqual([`${re2}:refund.processing:v1`]);
  });

  it('writes of several payments with refunds in one flush each get their own events', async () => {
    const ids = Array.from({ length: 6 }, () => newId('tr_many'));
    const refunds = ids.map(() => newId('re_'));
    const fences = await Promise.all(ids.map(() => takeFetchFence(db.db)));
    const results = await Promise.all(ids.map((id, index) => applySnapshot(db.db, { snapshot: withRefunds(id, [refund(refunds[index]!, 'pending')]), fence: fences[index]!, source: 'webhook' })));
    for (const result of results) expect(result.eventTypes.sort()).toEqual(['payment.paid', 'payment.refunded', 'refund.pending']);
    for (const [index, id] of ids.entries()) expect(await refundEventsOf(id)).toEqual([`${refunds[index]}:refund.pending:v1`]);
  });
});

const syncMollie = (id: string) => syncPayment(deps, { provider: 'mollie', account: 'default', providerPaymentId: id, source: 'sync' });

describe('Mollie, through the sandbox', () => {
  it('a payment refunded partially twice: two re_ ids, named by payment.refunded, each status once', async () => {
    const payment = mollie.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '30.00' } });
    await syncMollie(payment.id);
    const first = mollie.addRefund(payment.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'pending' });
    await syncMollie(payment.id);
    const second = mollie.addRefund(payment.id, { amount: { currency: 'EUR', value: '5.00' }, status: 'queued' });
    await syncMollie(payment.id);
    await syncMollie(payment.id);

    const refundedEvents = (await eventsOf(payment.id)).filter((event) => event.type === 'payment.refunded');
    expect(refundedEvents).toHaveLength(2);
    expect(refundedEvents.map((event) => event.data.changedRefundIds)).toEqual([[first.id], [second.id]]);
    expect((refundedEvents[1]!.data.refunds as Array<{ id: string }>).map((r) => r.id).sort()).toEqual([first.id, second.id].sort());
    expect(refundedEvents[1]!.data.amountRefunded).toEqual({ value: '15.00', currency: 'EUR', minor: 1500 });

    mollie.setRefundStatus(first.id, 'processing');
    mollie.setRefundStatus(second.id, 'pending');
    await syncMollie(payment.id);
    mollie.setRefundStatus(first.id, 'refunded');
    mollie.setRefundStatus(second.id, 'failed');
    await syncMollie(payment.id);
    await syncMollie(payment.id);

    const byRefund = (refundId: string) => refundEventsOrdered(refundId);
    expect(await byRefund(first.id)).toEqual(['refund.pending:v1', 'refund.processing:v2', 'refund.refunded:v3']);
    expect(await byRefund(second.id)).toEqual(['refund.queued:v1', 'refund.pending:v2', 'refund.failed:v3']);
    // The failed refund gave the money back: the refunded amount went down, naming it.
    const reversed = (await eventsOf(payment.id)).find((event) => event.type === 'payment.refund_reversed')!;
    expect(reversed.data.changedRefundIds).toEqual(expect.arrayContaining([second.id]));
    expect(reversed.data.amountRefunded).toMatchObject({ minor: 1000 });
    expect(await adjustmentRows(payment.id)).toMatchObject(
      [
        { provider_item_id: first.id, status: 'refunded', version: 3, amount_minor: 1000 },
        { provider_item_id: second.id, status: 'failed', version: 3, amount_minor: 500 },
      ].sort((x, y) => (x.provider_item_id < y.provider_item_id ? -1 : 1)),
    );
  });

  it('a chargeback names its chb_ id on payment.charged_back, and its reversal on payment.chargeback_reversed', async () => {
    const payment = mollie.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '20.00' } });
    await syncMollie(payment.id);
    const chargeback = mollie.addChargeback(payment.id, { amount: { currency: 'EUR', value: '20.00' } });
    await syncMollie(payment.id);
    mollie.reverseChargeback(chargeback.id);
    await syncMollie(payment.id);

    const events = await eventsOf(payment.id);
    const chargedBack = events.find((event) => event.type === 'payment.charged_back')!;
    expect(chargedBack.data.changedChargebackIds).toEqual([chargeback.id]);
    expect(chargedBack.data.chargebacks).toEqual([
      { id: chargeback.id, amount: { value: '20.00', currency: 'EUR', minor: 2000 }, status: 'received', providerStatus: 'received', createdAt: expect.any(String), reversed: false },
    ]);
    const reversal = events.find((event) => event.type === 'payment.chargeback_reversed')!;
    expect(reversal.data.changedChargebackIds).toEqual([chargeback.id]);
    expect(reversal.data.chargebacks).toMatchObject([{ id: chargeback.id, status: 'reversed', reversed: true }]);
    expect(await adjustmentRows(payment.id)).toMatchObject([{ kind: 'chargeback', provider_item_id: chargeback.id, status: 'reversed', version: 2 }]);
    // Chargebacks have no events of their own.
    expect(events.filter((event) => !event.type.startsWith('payment.'))).toEqual([]);
  });

  it('the direct GET and the SDK path give the same refund and chargeback items', async () => {
    const payment = mollie.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '40.00' } });
    mollie.addRefund(payment.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'processing' });
    mollie.addRefund(payment.id, { amount: { currency: 'EUR', value: '2.50' }, status: 'canceled' });
    mollie.addChargeback(payment.id, { amount: { currency: 'EUR', value: '27.50' }, reversed: true });
    const options = { accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: mollie.url, retryConfig: { strategy: 'none' as const } };
    const direct = await createMollieProvider({ ...options, paymentFetch: 'direct' }).fetchPayment('default', payment.id);
    const sdk = await createMollieProvider({ ...options, paymentFetch: 'sdk' }).fetchPayment('default', payment.id);
    if (direct.kind !== 'found' || sdk.kind !== 'found') throw new Error('expected both to find the payment');
    expect(direct.snapshot.refunds).toHaveLength(2);
    expect(direct.snapshot.chargebacks).toMatchObject([{ status: 'reversed', reversed: true, amount: { minor: 2750 } }]);
    expect({ refunds: direct.snapshot.refunds, chargebacks: direct.snapshot.chargebacks }).toEqual({ refunds: sdk.snapshot.refunds, chargebacks: sdk.snapshot.chargebacks });
  });

  it('a payment without refunds or chargebacks still costs one request', async () => {
    const payment = mollie.createPayment({ status: 'paid' });
    const before = mollie.state.requests.length;
    await syncMollie(payment.id);
    expect(mollie.state.requests.slice(before).map((request) => request.path)).toEqual([`/v2/payments/${payment.id}`]);
  });
});

async function refundEventsOrdered(refundId: string): Promise<string[]> {
  const rows = await sql<{ type: string; version: number }[]>`
    select type, (payload->'data'->'refund'->>'version')::int as version from outbox
    where payload->'data'->'refund'->>'id' = ${refundId} order by (payload->'data'->'refund'->>'version')::int`;
  return rows.map((row) => `${row.type}:v${row.version}`);
}

describe('GoCardless refund events', () => {
  async function deliver(events: readonly (GoCardlessEvent | null)[]) {
    const webhook = buildGoCardlessWebhook(events.filter((event): event is GoCardlessEvent => event !== null), GC_SECRET);
    const res = await app.request('/webhooks/gocardless', { method: 'POST', body: webhook.body, headers: webhook.headers });
    expect(res.status).toBe(204);
    await deps.background.drain();
  }

  it('created, paid, then bounced: refund.pending, refund.refunded, refund.failed, once each, with the RF id on the payment events', async () => {
    const payment = gocardless.createPayment({ amount: 2500, currency: 'EUR', status: 'confirmed' });
    await deliver(gocardless.state.events.filter((event) => event.links.payment === payment.id));
    const { refundId, event: created } = gocardless.refundPayment(payment.id, { amount: 1000 });
    await deliver([created]);
    // A duplicate delivery of the same event, and a poll: nothing new.
    await deliver([created]);
    await syncPayment(deps, { provider: 'gocardless', account: 'default', providerPaymentId: payment.id, source: 'poll' });

    // GoCardless sends no event for these two steps; a poll sees them.
    gocardless.setRefundStatus(refundId, { status: 'pending_submission' });
    await syncPayment(deps, { provider: 'gocardless', account: 'default', providerPaymentId: payment.id, source: 'poll' });
    gocardless.setRefundStatus(refundId, { status: 'submitted' });
    await syncPayment(deps, { provider: 'gocardless', account: 'default', providerPaymentId: payment.id, source: 'poll' });
    await deliver([gocardless.setRefundStatus(refundId, { status: 'paid' }).event]);
    // Bounced: the amount is no longer refunded, so only the refund event says to list refunds.
    await deliver([gocardless.setRefundStatus(refundId, { status: 'bounced' }).event]);

    expect(await refundEventsOrdered(refundId)).toEqual(['refund.pending:v1', 'refund.updated:v2', 'refund.processing:v3', 'refund.refunded:v4', 'refund.failed:v5']);
    const events = await eventsOf(payment.id);
    const refunded = events.find((event) => event.type === 'payment.refunded')!;
    expect(refunded.data.changedRefundIds).toEqual([refundId]);
    expect(refunded.data.refunds).toMatchObject([{ id: refundId, amount: { minor: 1000, currency: 'EUR' }, status: 'pending', providerStatus: 'created' }]);
    const reversed = events.find((event) => event.type === 'payment.refund_reversed')!;
    expect(reversed.data.changedRefundIds).toEqual([refundId]);
    expect(reversed.data.refunds).toMatchObject([{ id: refundId, status: 'failed', providerStatus: 'bounced' }]);
    // The refund events are still forwarded as GoCardless events, as before.
    const forwarded = await sql<{ type: string }[]>`
      select type from outbox where type like 'gocardless.refunds.%' and payload->'data'->'event'->'links'->>'refund' = ${refundId} order by id`;
    expect(forwarded.map((event) => event.type)).toEqual([
      'gocardless.refunds.created',
      'gocardless.refunds.paid',
      'gocardless.refunds.failed',
    ]);
  });

  it('the sandbox lists a payment\'s refunds in GoCardless\'s envelope, page by page', async () => {
    const payment = gocardless.createPayment({ amount: 3000, currency: 'GBP', status: 'confirmed' });
    const ids = [100, 200, 300].map((amount) => gocardless.refundPayment(payment.id, { amount }).refundId);
    const get = async (query: string) => {
      const res = await fetch(`${gocardless.url}/refunds?${query}`, { headers: { Authorization: `Bearer ${gocardless.accessToken}`, 'GoCardless-Version': '2015-07-06' } });
      expect(res.status).toBe(200);
      return (await res.json()) as { refunds: Array<{ id: string; status: string; links: { payment: string } }>; meta: { cursors: { after: string | null } } };
    };
    const first = await get(`payment=${payment.id}&limit=2`);
    expect(first.refunds.map((r) => r.id)).toEqual(ids.slice(0, 2));
    expect(first.meta.cursors.after).toBe(ids[1]);
    const second = await get(`payment=${payment.id}&limit=2&after=${first.meta.cursors.after}`);
    expect(second.refunds.map((r) => r.id)).toEqual(ids.slice(2));
    expect(second.meta.cursors.after).toBeNull();
    expect(second.refunds[0]).toMatchObject({ status: 'created', links: { payment: payment.id } });
    // And the provider reads all three, with the payment's refunded amount.
    await syncPayment(deps, { provider: 'gocardless', account: 'default', providerPaymentId: payment.id, source: 'poll' });
    expect((await adjustmentRows(payment.id)).map((row) => row.provider_item_id).sort()).toEqual([...ids].sort());
  });

  it('a payment without refunded amounts is fetched with one request', async () => {
    const payment = gocardless.createPayment({ amount: 1200, currency: 'EUR', status: 'confirmed' });
    const before = gocardless.state.requests.length;
    await syncPayment(deps, { provider: 'gocardless', account: 'default', providerPaymentId: payment.id, source: 'poll' });
    expect(gocardless.state.requests.slice(before).map((request) => request.path)).toEqual([`/payments/${payment.id}`]);
  });
});
