/**
 * packages/consumer against real Postgres: a storm of signed deliveries with duplicates
 * and out-of-order versions, delivered concurrently, ends with each event applied once
 * and no stale version applied; and the pull API paged from a stored cursor.
 */
import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, isRefundChange, type GatewayEvent, type Outcome } from '../../packages/consumer/src/index.js';
import { createPostgresStore } from '../../packages/consumer/src/postgres-store.js';
import type { Deps } from '../../src/deps.js';
import { billingFacts } from '../../src/events/billing-facts.js';
import { buildPaymentEvents, type TrackedState } from '../../src/events/payment-events.js';
import { buildRefundEvents, type AdjustmentChangeRow } from '../../src/events/refund-events.js';
import { forEachLimited } from '../../src/primitives/for-each-limited.js';
import { createApp } from '../../src/http/app.js';
import { seededRandom } from '../../src/sandbox/gocardless-webhook-sender.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually } from '../helpers/deps.js';
import { newPaymentId, SINK_SECRET, writePaymentHistory } from '../helpers/outbound-events.js';

let database: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 10, onnotice: () => {} });
  await sql`create table billing_applied (seq bigserial primary key, event_id text not null, payment text not null, version int not null, type text not null)`;
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

const PAYMENTS = 25;
const VERSIONS = 6;

/** A payment's history as the gateway writes it: each change one or two events of one version. */
function historyOf(paymentId: string): GatewayEvent[] {
  const statuses: TrackedState['status'][] = ['open', 'pending', 'paid', 'paid', 'paid', 'charged_back'];
  let previous: TrackedState | null = null;
  const events: GatewayEvent[] = [];
  for (let version = 1; version <= VERSIONS; version++) {
    const status = statuses[version - 1]!;
    // Version 4 is first seen paid and partly refunded: two events of one version.
    const refunded = version >= 4 ? 500 : 0;
    const next: TrackedState = { status, providerStatus: status, amountMinor: 2000, currency: 'EUR', refundedMinor: version === 4 ? refunded : version > 4 ? 700 : 0, chargedBackMinor: status === 'charged_back' ? 2000 : 0 };
    const rows = buildPaymentEvents({
      provider: 'mollie',
      account: 'default',
      providerPaymentId: paymentId,
      version,
      source: 'webhook',
      previous,
      next,
      mode: 'test',
      metadata: { invoiceId: `INV-${paymentId}` },
      billing: billingFacts('mollie', { description: 'storm', method: 'ideal', sequenceType: 'oneoff' }),
      changedAt: new Date(Date.UTC(2026, 0, 1, 0, version)),
    });
    events.push(...rows.map((row) => row.payload as GatewayEvent));
    previous = next;
  }
  return events;
}

describe('the consumer package', () => {
  it('a replayed storm with duplicates and out-of-order deliveries: each event applied once, no stale version applied', async () => {
    const store = createPostgresStore(sql);
    await store.migrate();
    const consumer = createConsumer({
      secret: SINK_SECRET,
      store,
      handle: async (event, tx) => {
        if (!event.type.startsWith('payment.') || event.type === 'payment.stuck') return;
        const data = event.data as { paymentId: string; version: number };
        await tx`insert into billing_applied (event_id, payment, version, type) values (${event.id}, ${data.paymentId}, ${data.version}, ${event.type})`;
      },
    });

    const events = Array.from({ length: PAYMENTS }, () => historyOf(newPaymentId())).flat();
    const random = seededRandom(21);
    // Every event one to three times, then the whole storm shuffled.
    const deliveries = events.flatMap((event) => Array.from({ length: 1 + Math.floor(random() * 3) }, () => event));
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
    }
    const signer = new Webhook(SINK_SECRET);
    const outcomes: Record<Outcome, number> = { applied: 0, duplicate: 0, stale: 0, unknown_type: 0 };
    await forEachLimited(deliveries, 16, async (event) => {
      const body = JSON.stringify(event);
      const timestamp = new Date();
      const headers = { 'webhook-id': event.id, 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': signer.sign(event.id, timestamp, body) };
      outcomes[await consumer.receive(body, headers)]++;
    });

    const applied = await sql<{ event_id: string; payment: string; version: number }[]>`select event_id, payment, version from billing_applied order by seq`;
    // Each event applied at most once, and every delivery accounted for.
    expect(new Set(applied.map((row) => row.event_id)).size).toBe(applied.length);
    expect(outcomes.applied).toBe(applied.length);
    expect(outcomes.applied + outcomes.stale).toBe(events.length);
    expect(outcomes.duplicate).toBe(deliveries.length - events.length);
    expect(outcomes.stale).toBeGreaterThan(0);
    // No stale version applied: per payment, the versions applied never go down.
    const byPayment = new Map<string, number[]>();
    for (const row of applied) byPayment.set(row.payment, [...(byPayment.get(row.payment) ?? []), row.version]);
    expect(byPayment.size).toBe(PAYMENTS);
    for (const [payment, versions] of byPayment) {
      expect(versions, payment).toEqual([...versions].sort((a, b) => a - b));
      expect(versions.at(-1), payment).toBe(VERSIONS);
    }
    // Replaying the whole storm again changes nothing.
    for (const event of events) expect(await consumer.apply(event)).toBe('duplicate');
    expect((await sql`select count(*)::int as n from billing_applied`)[0]!.n).toBe(applied.length);

    // A forged delivery is refused before anything is recorded.
    await expect(consumer.receive(JSON.stringify(events[0]), { 'webhook-id': 'x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' })).rejects.toThrow();
  });

  it('pages the pull API from a stored cursor, and a second pull finds nothing new', async () => {
    const gatewayDatabase = await createTestDatabase();
    const deps: Deps = buildTestDeps({ DATABASE_URL: gatewayDatabase.url });
    try {
      const app = createApp(deps);
      const paymentId = newPaymentId();
      const types = await writePaymentHistory(deps.db, paymentId, 2);
      const seen: string[] = [];
      const consumer = createConsumer({ store: createPostgresStore(sql, { prefix: 'pull_' }), handle: async (event) => void seen.push(event.type) });
      await createPostgresStore(sql, { prefix: 'pull_' }).migrate();
      const viaApp = ((url: URL, init?: RequestInit) => app.request(`${url.pathname}${url.search}`, init)) as unknown as typeof fetch;

      // The feed serves an event once every transaction older than it has ended, on the whole
      // server: under a parallel test run that can take a moment, so pull until it is all there.
      const token = auth.Authorization.slice(7);
      let applied = 0;
      let pages = 0;
      await eventually(async () => {
        const pass = await consumer.pull({ baseUrl: 'http://gateway', token, limit: 2, fetch: viaApp });
        applied += pass.outcomes.applied;
        pages += pass.pages;
        expect(pass.outcomes).toMatchObject({ duplicate: 0, stale: 0, unknown_type: 0 });
        return seen.length >= types.length;
      }, { timeoutMs: 30_000, intervalMs: 200, what: 'every event pulled' });
      expect(seen).toEqual(types);
      expect(applied).toBe(types.length);
      expect(pages).toBeGreaterThan(2);
      const second = await consumer.pull({ baseUrl: 'http://gateway', token, fetch: viaApp });
      expect(second).toEqual({ pages: 1, outcomes: { applied: 0, duplicate: 0, stale: 0, unknown_type: 0 } });
    } finally {
      await deps.close();
      await gatewayDatabase.drop();
    }
  });

  it('refund events: typed, each applied once, and a stale refund version dropped per refund id', async () => {
    const store = createPostgresStore(sql);
    await store.migrate();
    const applied: string[] = [];
    const consumer = createConsumer({
      store,
      handle: async (event) => {
        if (isRefundChange(event)) applied.push(`${event.data.refund.id}:${event.data.refund.status}:v${event.data.refund.version}`);
      },
    });
    const paymentId = newPaymentId('tr_refunds');
    const change = (refundId: string, status: string, previous: string | null, version: number): AdjustmentChangeRow => ({
      kind: 'refund', provider_item_id: refundId, status, provider_status: status, previous_status: previous, previous_provider_status: previous,
      amount_minor: 500, currency: 'EUR', version, inserted: version === 1, provider_created_at: new Date('2026-01-01T00:00:00Z'), updated_at: new Date(Date.UTC(2026, 0, 1, 0, version)),
      payment_id: 7, payment_version: 2, payment_status: 'paid', payment_provider_status: 'paid', payment_amount_minor: 2000, payment_currency: 'EUR', payment_refunded_minor: 500, payment_charged_back_minor: 0,
    });
    const events = (changes: AdjustmentChangeRow[]) =>
      buildRefundEvents({ provider: 'mollie', account: 'default', providerPaymentId: paymentId, source: 'webhook', changes }).map((row) => row.payload as GatewayEvent);
    const [queued, pending, refunded] = events([change('re_a1', 'queued', null, 1), change('re_a1', 'pending', 'queued', 2), change('re_a1', 'refunded', 'pending', 3)]);
    const [other] = events([change('re_b1', 'pending', null, 1)]);

    // Newest first, then the older ones (stale), a duplicate, and another refund of the same payment.
    const outcomes: Outcome[] = [];
    for (const event of [refunded!, queued!, pending!, refunded!, other!]) outcomes.push(await consumer.apply(event));
    expect(outcomes).toEqual(['applied', 'stale', 'stale', 'duplicate', 'applied']);
    expect(applied).toEqual(['re_a1:refunded:v3', 're_b1:pending:v1']);
  });
});
