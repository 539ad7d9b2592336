/**
 * Retention deletes exactly what the policy says (settled receipts and delivered attempts
 * past 30 days, outbox events every sink is done with past 90) and nothing still needed:
 * pending and failed receipts, pending deliveries, dead letters and their events, events
 * not yet relayed, payments and their transitions. It runs once per interval across the fleet.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { pruneExpiredRows, retentionPolicy, runDueRetention } from '../../src/retention/retention.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';
import { opsRows } from '../helpers/ops-rows.js';

let database: TestDatabase;
let sql: postgres.Sql;
let deps: Deps;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  deps = buildTestDeps({ DATABASE_URL: database.url });
});

afterAll(async () => {
  await deps?.close();
  await sql?.end();
  await database?.drop();
});

beforeEach(async () => {
  await sql`truncate webhook_receipts, event_deliveries, outbox, event_sinks, payment_transitions, payments, provider_cursors, audit_log, webhook_requests restart identity cascade`;
});

const ids = async (table: 'webhook_receipts' | 'event_deliveries' | 'outbox') =>
  (await sql<{ id: string }[]>`select id from ${sql(table)} order by id`).map((row) => Number(row.id));

describe('retention', () => {
  it('deletes exactly what the policy says, and nothing pending', async () => {
    const rows = opsRows(sql);
    // Receipts: only settled ones past 30 days go.
    const keptReceipts = [
      await rows.receipt({ state: 'processed', ageDays: 29 }),
      await rows.receipt({ state: 'ignored', ageDays: 5 }),
      await rows.receipt({ state: 'pending', ageDays: 200 }),
      await rows.receipt({ state: 'failed', ageDays: 200 }),
    ];
    const goneReceipts = [];
    for (let i = 0; i < 5; i++) goneReceipts.push(await rows.receipt({ state: 'processed', ageDays: 31 + i }));
    goneReceipts.push(await rows.receipt({ state: 'ignored', ageDays: 45 }));

    await rows.sink('snk_a');
    await rows.sink('snk_b');
    // An event past 90 days whose every delivery was delivered: it and its attempts go.
    const doneEvent = await rows.event({ ageDays: 100, relayed: true });
    const doneAttempts = [
      await rows.delivery({ outboxId: doneEvent, sinkId: 'snk_a', state: 'delivered', ageDays: 100 }),
      await rows.delivery({ outboxId: doneEvent, sinkId: 'snk_b', state: 'delivered', ageDays: 100 }),
    ];
    // Past 90 days but a dead letter waits for a re-drive: the event and the dead letter stay;
    // its delivered attempt (past 30 days) goes.
    const deadEvent = await rows.event({ ageDays: 100, relayed: true });
    const deadLetter = await rows.delivery({ outboxId: deadEvent, sinkId: 'snk_a', state: 'dead', ageDays: 100 });
    const deadEventsDelivered = await rows.delivery({ outboxId: deadEvent, sinkId: 'snk_b', state: 'delivered', ageDays: 100 });
    // Past 90 days with a delivery still pending: stays whole.
    const pendingEvent = await rows.event({ ageDays: 100, relayed: true });
    const pendingDelivery = await rows.delivery({ outboxId: pendingEvent, sinkId: 'snk_a', state: 'pending', ageDays: 100 });
    // Past 90 days, never relayed (the relay has not fanned it out): stays.
    const unrelayedEvent = await rows.event({ ageDays: 100, relayed: false });
    // 50 days old: inside the pull API's horizon; its 50-day delivered attempt goes.
    const recentEvent = await rows.event({ ageDays: 50, relayed: true });
    const recentAttempt = await rows.delivery({ outboxId: recentEvent, sinkId: 'snk_a', state: 'delivered', ageDays: 50 });
    const freshAttempt = await rows.delivery({ outboxId: recentEvent, sinkId: 'snk_b', state: 'delivered', ageDays: 10 });

    // The inbound log: 30 days.
    await sql`insert into webhook_requests (provider, account, status, outcome, source, duration_ms, request_id, received_at)
      values ('mollie', 'default', 401, 'bad_signature', '10.0.0.1', 1, 'req_a', now() - interval '31 days'),
             ('mollie', 'default', 200, 'accepted', '10.0.0.1', 1, 'req_b', now() - interval '29 days')`;
    // Audit entries: a year is kept.
    await sql`insert into audit_log (actor, action, outcome, at) values ('api:x', 'sink.enable', 'applied', now() - interval '366 days'), ('api:x', 'sink.enable', 'applied', now() - interval '300 days')`;
    await rows.payment({ id: 'tr_old', nextPollAgoSeconds: null });
    await sql`
      insert into payment_transitions (payment_id, version, source, new_status, new_provider_status, fence, snapshot, created_at)
      select id, 1, 'webhook', 'paid', 'paid', 1, '{}'::jsonb, now() - interval '400 days' from payments`;

    // Batches of 2: several statements per rule, as a large backlog would take.
    const summary = await pruneExpiredRows(deps, { policy: retentionPolicy(deps.env), batchSize: 2 });

    expect(summary).toMatchObject({ receipts: goneReceipts.length, deliveries: 4, attempts: 0, outbox: 1, audit: 1, requests: 1, complete: true });
    expect((await sql`select request_id from webhook_requests`).map((row) => row.request_id)).toEqual(['req_b']);
    expect((await sql`select count(*)::int as n from audit_log`)[0]!.n).toBe(1);
    expect(await ids('webhook_receipts')).toEqual(keptReceipts.sort((a, b) => a - b));
    expect(await ids('event_deliveries')).toEqual([deadLetter, pendingDelivery, freshAttempt].sort((a, b) => a - b));
    expect(await ids('outbox')).toEqual([deadEvent, pendingEvent, unrelayedEvent, recentEvent]);
    expect([...doneAttempts, deadEventsDelivered, recentAttempt].every((id) => id > 0)).toBe(true);
    expect(doneEvent).toBeGreaterThan(0);
    expect((await sql`select count(*)::int as n from payments`)[0]!.n).toBe(1);
    expect((await sql`select count(*)::int as n from payment_transitions`)[0]!.n).toBe(1);

    // Nothing left to do: a second pass deletes nothing.
    expect(await pruneExpiredRows(deps, { policy: retentionPolicy(deps.env), batchSize: 2 })).toMatchObject({ receipts: 0, deliveries: 0, outbox: 0 });
  });

  it('deletes delivery attempts past the delivered deliveries\' policy, whatever their delivery\'s state', async () => {
    const rows = opsRows(sql);
    await rows.sink('snk_a');
    const event = await rows.event({ ageDays: 1, relayed: true });
    const dead = await rows.delivery({ outboxId: event, sinkId: 'snk_a', state: 'dead', ageDays: 1 });
    const pending = await rows.delivery({ outboxId: await rows.event({ ageDays: 1, relayed: true }), sinkId: 'snk_a', state: 'pending', ageDays: 1 });
    const attempt = (deliveryId: number, ageDays: number) => sql`
      insert into event_delivery_attempts (delivery_id, sink_id, attempt, started_at, duration_ms, outcome, status)
      values (${deliveryId}, 'snk_a', 1, now() - make_interval(days => ${ageDays}), 5, 'retry', 500)`;
    for (const ageDays of [45, 31, 29, 1]) await attempt(dead, ageDays);
    for (const ageDays of [60, 2]) await attempt(pending, ageDays);

    const summary = await pruneExpiredRows(deps, { policy: retentionPolicy(deps.env), batchSize: 2 });
    expect(summary).toMatchObject({ attempts: 3, deliveries: 0, complete: true });
    const left = await sql<{ delivery_id: string; age: number }[]>`
      select delivery_id, extract(day from now() - started_at)::int as age from event_delivery_attempts order by delivery_id, started_at`;
    expect(left.map((row) => [Number(row.delivery_id), row.age])).toEqual([[dead, 29], [dead, 1], [pending, 2]]);
    // 0 days keeps them all.
    await attempt(dead, 400);
    expect(await pruneExpiredRows(deps, { policy: { ...retentionPolicy(deps.env), deliveriesDays: 0 }, batchSize: 2 })).toMatchObject({ attempts: 0 });
  });

  it('0 days keeps a table whole; with no sink ever registered, events go by age alone', async () => {
    const rows = opsRows(sql);
    const receipt = await rows.receipt({ state: 'processed', ageDays: 400 });
    const unrelayedOld = await rows.event({ ageDays: 100, relayed: false });
    const unrelayedRecent = await rows.event({ ageDays: 80, relayed: false });
    const summary = await pruneExpiredRows(deps, { policy: { receiptsDays: 0, deliveriesDays: 30, outboxDays: 90, auditDays: 365, requestsDays: 30 }, batchSize: 10 });
    expect(summary).toMatchObject({ receipts: 0, outbox: 1 });
    expect(await ids('webhook_receipts')).toEqual([receipt]);
    expect(await ids('outbox')).toEqual([unrelayedRecent]);
    expect(unrelayedOld).toBeLessThan(unrelayedRecent);
  });

  it('stops at its time budget and says so; the next run continues', async () => {
    const rows = opsRows(sql);
    for (let i = 0; i < 6; i++) await rows.receipt({ state: 'processed', ageDays: 40 });
    const cut = await pruneExpiredRows(deps, { policy: retentionPolicy(deps.env), batchSize: 2, budgetMs: -1 });
    expect(cut).toMatchObject({ receipts: 0, complete: false });
    const rest = await pruneExpiredRows(deps, { policy: retentionPolicy(deps.env), batchSize: 2 });
    expect(rest).toMatchObject({ receipts: 6, complete: true });
  });

  it('runs once per interval across the fleet, however many processes ask at once', async () => {
    const rows = opsRows(sql);
    for (let i = 0; i < 3; i++) await rows.receipt({ state: 'processed', ageDays: 40 });
    const others = Array.from({ length: 4 }, () => buildTestDeps({ DATABASE_URL: database.url }));
    try {
      const results = await Promise.all([deps, ...others].map((each) => runDueRetention(each)));
      const ran = results.filter((result) => result !== null);
      expect(ran).toHaveLength(1);
      expect(ran[0]!.receipts).toBe(3);
      // Within the interval nobody runs it again.
      expect(await runDueRetention(deps)).toBeNull();
    } finally {
      await Promise.all(others.map((each) => each.close()));
    }
  });
});
