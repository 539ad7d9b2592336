import { randomUUID } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import type { Db, DbOrTx } from '../db/client.js';
import { enqueueEvents } from './outbox.js';
import type { DeadLetter } from './deliveries.js';

/**
 * The operator's view of deliveries, beyond dead letters: every delivery listed and
 * filtered, each with its attempt history (event_delivery_attempts), dead letters
 * re-driven by filter, a sink disabled by hand, a sink's recent success rate, and a test
 * event for one sink. Plain functions of (db, params); the relay's own queries are in
 * deliveries.ts.
 */

export const DELIVERY_STATES = ['pending', 'delivered', 'dead'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** The event type an operator sends to check one sink; it goes to that sink alone. */
export const TEST_EVENT_TYPE = 'gateway.test';

export interface DeliveryFilter {
  sinkId?: string;
  state?: DeliveryState;
  /** An exact type, or a prefix ending in a dot (`payment.`). */
  type?: string;
  /** When the delivery was created (its event fanned out): from inclusive, to exclusive. */
  from?: Date;
  to?: Date;
}

/** A delivery in a list: what a dead letter shows (without its event), in any state. */
export interface DeliveryListItem extends Pick<DeadLetter, 'id' | 'eventId' | 'type' | 'sink' | 'provider' | 'paymentId' | 'version' | 'attempts' | 'lastStatus' | 'lastError'> {
  state: string;
  createdAt: Date;
  lastAttemptAt: Date | null;
  nextAttemptAt: Date;
  deliveredAt: Date | null;
  deadLetteredAt: Date | null;
}

export interface DeliveryAttempt {
  id: number;
  attempt: number;
  startedAt: Date;
  durationMs: number;
  outcome: string;
  status: number | null;
  error: string | null;
  answer: string | null;
  probe: boolean;
  superseded: boolean;
}

const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));

function filterSql(filter: DeliveryFilter): SQL {
  const parts: SQL[] = [];
  if (filter.sinkId) parts.push(sql`and d.sink_id = ${filter.sinkId}`);
  if (filter.state) parts.push(sql`and d.state = ${filter.state}`);
  if (filter.type) parts.push(filter.type.endsWith('.') ? sql`and starts_with(d.event_type, ${filter.type})` : sql`and d.event_type = ${filter.type}`);
  if (filter.from) parts.push(sql`and d.created_at >= ${filter.from.toISOString()}::timestamptz`);
  if (filter.to) parts.push(sql`and d.created_at < ${filter.to.toISOString()}::timestamptz`);
  return sql.join(parts, sql` `);
}

function toItem(row: Record<string, unknown>): DeliveryListItem {
  return {
    id: Number(row.id),
    eventId: row.event_id as string,
    type: row.event_type as string,
    sink: { id: row.sink_id as string, kind: row.kind as string, target: row.target as string, disabled: row.disabled_at !== null },
    provider: (row.provider as string | null) ?? null,
    paymentId: (row.provider_payment_id as string | null) ?? null,
    version: row.payment_version === null ? null : Number(row.payment_version),
    state: row.state as string,
    attempts: Number(row.attempts),
    lastStatus: row.last_status === null ? null : Number(row.last_status),
    lastError: (row.last_error as string | null) ?? null,
    createdAt: date(row.created_at)!,
    lastAttemptAt: date(row.last_attempt_at),
    nextAttemptAt: date(row.next_attempt_at)!,
    deliveredAt: date(row.delivered_at),
    deadLetteredAt: date(row.dead_lettered_at),
  };
}

const DELIVERY_COLUMNS = sql`d.id, d.event_id, d.event_type, d.sink_id, s.kind, s.target, s.disabled_at, d.provider, d.provider_payment_id,
  d.payment_version, d.state, d.attempts, d.last_status, d.last_error, d.created_at, d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.dead_lettered_at`;

/**
 * Deliveries newest first, filtered, paged by id: `beforeId` pages to older ones,
 * `afterId` to newer ones (still returned newest first). Never the event's payload.
 */
export async function listDeliveries(db: DbOrTx, params: DeliveryFilter & { beforeId?: number; afterId?: number; limit: number }): Promise<DeliveryListItem[]> {
  const newer = params.afterId !== undefined;
  const rows = await db.execute<Record<string, unknown>>(sql`
    select * from (
      select ${DELIVERY_COLUMNS}
      from event_deliveries d join event_sinks s on s.id = d.sink_id
      where true ${filterSql(params)}
        ${params.beforeId !== undefined ? sql`and d.id < ${params.beforeId}` : sql``}
        ${newer ? sql`and d.id > ${params.afterId}` : sql``}
      order by d.id ${newer ? sql`asc` : sql`desc`}
      limit ${params.limit}) page
    order by id desc`);
  return rows.map(toItem);
}

/** How many deliveries match, for the console's result count. */
export async function countDeliveries(db: DbOrTx, filter: DeliveryFilter): Promise<number> {
  const rows = await db.execute<{ n: number }>(sql`select count(*)::int as n from event_deliveries d where true ${filterSql(filter)}`);
  return Number(rows[0]?.n ?? 0);
}

export async function getDelivery(db: DbOrTx, id: number): Promise<DeliveryListItem | null> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select ${DELIVERY_COLUMNS} from event_deliveries d join event_sinks s on s.id = d.sink_id where d.id = ${id}`);
  return rows[0] ? toItem(rows[0]) : null;
}

/** Bound on a delivery's listed history: probes of a long-down sink can add many. */
export const ATTEMPT_HISTORY_LIMIT = 200;

/** A delivery's attempts, newest first, across re-drives. */
export async function listDeliveryAttempts(db: DbOrTx, deliveryId: number, limit = ATTEMPT_HISTORY_LIMIT): Promise<DeliveryAttempt[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select id, attempt, started_at, duration_ms, outcome, status, error, answer, probe, superseded
    from event_delivery_attempts where delivery_id = ${deliveryId}
    order by id desc limit ${limit}`);
  return rows.map((row) => ({
    id: Number(row.id),
    attempt: Number(row.attempt),
    startedAt: date(row.started_at)!,
    durationMs: Number(row.duration_ms),
    outcome: row.outcome as string,
    status: row.status === null ? null : Number(row.status),
    error: (row.error as string | null) ?? null,
    answer: (row.answer as string | null) ?? null,
    probe: Boolean(row.probe),
    superseded: Boolean(row.superseded),
  }));
}

/** At most this many dead letters per bulk re-drive; the answer says whether more match. */
export const BULK_REDRIVE_LIMIT = 1000;

/**
 * Re-drives the dead letters matching the filter, oldest first, at most `limit` in one
 * short statement (SKIP LOCKED: rows another operator's re-drive holds are left to it).
 * The state test sits in the UPDATE too, so a row re-driven meanwhile is not counted twice.
 */
export async function redriveDeadLetters(db: DbOrTx, filter: Omit<DeliveryFilter, 'state'>, limit = BULK_REDRIVE_LIMIT): Promise<{ redriven: number; more: boolean }> {
  const dead = { ...filter, state: 'dead' as const };
  const rows = await db.execute<{ redriven: number; more: boolean }>(sql`
    with picked as (
      select d.id from event_deliveries d
      where true ${filterSql(dead)}
      order by d.id
      limit ${limit}
      for update skip locked
    ), redriven as (
      update event_deliveries e
      set state = 'pending', attempts = 0, next_attempt_at = now(), dead_lettered_at = null
      from picked where e.id = picked.id and e.state = 'dead'
      returning e.id
    )
    select (select count(*) from redriven)::int as redriven,
           exists (select 1 from event_deliveries d where true ${filterSql(dead)} and d.id not in (select id from picked)) as more`);
  return { redriven: Number(rows[0]?.redriven ?? 0), more: Boolean(rows[0]?.more) };
}

/**
 * An operator's disablement: like a 410's, the sink's deliveries wait (pending) until it
 * is enabled again. Returns false when there is no such sink; an already disabled sink
 * keeps its first reason and time.
 */
export async function disableSink(db: DbOrTx, id: string, reason: string): Promise<boolean> {
  const rows = await db.execute(sql`
    update event_sinks set disabled_at = coalesce(disabled_at, now()), disabled_reason = coalesce(disabled_reason, ${reason})
    where id = ${id} returning 1`);
  return rows.length > 0;
}

export interface SinkAttemptStats {
  /** The window's length: attempts since then are counted. */
  hours: number;
  attempts: number;
  delivered: number;
  /** delivered / attempts; null when there was no attempt. */
  successRate: number | null;
  averageMs: number | null;
  slowestMs: number | null;
  lastAttemptAt: Date | null;
  lastDeliveredAt: Date | null;
}

/** A sink's attempts over the last `hours`, read from its attempt rows (served by their sink index). */
export async function sinkAttemptStats(db: DbOrTx, sinkId: string, hours: number): Promise<SinkAttemptStats> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select count(*)::int as attempts,
           (count(*) filter (where outcome = 'delivered'))::int as delivered,
           avg(duration_ms)::float8 as average_ms, max(duration_ms)::int as slowest_ms,
           max(started_at) as last_attempt_at,
           max(started_at) filter (where outcome = 'delivered') as last_delivered_at
    from event_delivery_attempts
    where sink_id = ${sinkId} and started_at >= now() - make_interval(hours => ${hours})`);
  const row = rows[0] ?? {};
  const attempts = Number(row.attempts ?? 0);
  const delivered = Number(row.delivered ?? 0);
  return {
    hours,
    attempts,
    delivered,
    successRate: attempts > 0 ? delivered / attempts : null,
    averageMs: row.average_ms === null || row.average_ms === undefined ? null : Math.round(Number(row.average_ms)),
    slowestMs: row.slowest_ms === null || row.slowest_ms === undefined ? null : Number(row.slowest_ms),
    lastAttemptAt: date(row.last_attempt_at),
    lastDeliveredAt: date(row.last_delivered_at),
  };
}

/**
 * Queues a `gateway.test` event for one sink: an outbox event like any other (signed and
 * sent by the relay the same way), but handed to this sink alone. Marking it relayed in
 * the same transaction keeps the fan-out from giving it to the others; the pull API
 * leaves it out. Returns null when there is no such sink.
 */
export async function sendTestEvent(db: Db, input: { sinkId: string; requestedBy: string }): Promise<{ eventId: string; deliveryId: number } | null> {
  return db.transaction(async (tx) => {
    const sinks = await tx.execute<{ id: string; kind: string; target: string }>(sql`select id, kind, target from event_sinks where id = ${input.sinkId}`);
    const sink = sinks[0];
    if (!sink) return null;
    const requestedAt = new Date().toISOString();
    const [eventId] = await enqueueEvents(tx, [
      {
        type: TEST_EVENT_TYPE,
        dedupeKey: `sink:test:${sink.id}:${randomUUID()}`,
        data: { sink: { id: sink.id, kind: sink.kind, target: sink.target }, requestedAt, requestedBy: input.requestedBy },
      },
    ]);
    const rows = await tx.execute<{ id: number }>(sql`
      with taken as (update outbox set relayed_at = now() where event_id = ${eventId!} returning id, event_id, type)
      insert into event_deliveries (outbox_id, sink_id, event_id, event_type)
      select id, ${sink.id}, event_id, type from taken
      returning id`);
    return { eventId: eventId!, deliveryId: Number(rows[0]!.id) };
  });
}
