import { sql, type SQL } from 'drizzle-orm';
import type { Db, DbOrTx } from '../db/client.js';
import { enqueueEvents } from './outbox.js';
import type { OutboundEvent } from './payment-events.js';
import type { EventSink } from './sinks.js';

/**
 * The relay's queries: register sinks, fan committed outbox events out into one
 * delivery per sink, lease due deliveries, record what an attempt came to, and the
 * operator's view (dead letters, re-drive, sink state). Plain functions of (db, params).
 */

const textArray = (values: string[]) => sql`${`{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`}::text[]`;

/** Makes every configured sink a row, so delivery rows can reference it and a 410 can disable it. */
export async function registerSinks(db: DbOrTx, sinks: Pick<EventSink, 'id' | 'kind' | 'target'>[]): Promise<void> {
  if (sinks.length === 0) return;
  const rows = sinks.map((sink) => ({ id: sink.id, kind: sink.kind, target: sink.target }));
  await db.execute(sql`
    insert into event_sinks (id, kind, target)
    select id, kind, target from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as s(id text, kind text, target text)
    on conflict (id) do nothing`);
}

export interface FanOutResult {
  /** Outbox events handed to the sinks by this call. */
  relayed: number;
  deliveries: number;
}

/**
 * Takes the oldest outbox events that no transaction can still precede and gives each
 * configured sink a pending delivery of them, then marks them relayed.
 *
 * Order: (tx_id, id) below the snapshot's xmin, the same order and horizon as the pull
 * API. An event is only taken once every transaction that could still commit an event
 * ordered before it has finished, so sinks see events in that order too (payments, whose
 * order matters most, are additionally held back per payment at delivery time).
 *
 * Several relays: FOR UPDATE SKIP LOCKED gives each a disjoint batch. Insert and mark
 * are one statement, so a crash cannot leave an event half handed out; the unique
 * (outbox_id, sink_id) pair would make a repeat a no-op anyway. Every process is
 * expected to run with the same sinks: an event goes to the sinks of the process that
 * fans it out.
 */
export async function fanOutOutbox(db: DbOrTx, params: { sinkIds: string[]; limit: number }): Promise<FanOutResult> {
  const rows = await db.execute<{ relayed: number; deliveries: number }>(sql`
    with batch as (
      select o.id, o.event_id, o.type, o.provider, o.provider_payment_id, o.payment_version, o.payload
      from outbox o
      where o.relayed_at is null
        and o.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      order by o.tx_id, o.id
      limit ${params.limit}
      for update skip locked
    ), fanned as (
      insert into event_deliveries (outbox_id, sink_id, event_id, event_type, provider, provider_payment_id, payment_version)
      select b.id, s.id, b.event_id, b.type, b.provider, b.provider_payment_id, b.payment_version
      from batch b cross join unnest(${textArray(params.sinkIds)}) as s(id)
      -- A sink's own disablement notice is for the others: it would only reach it once re-enabled.
      where not (b.type = 'gateway.sink.disabled' and b.payload->'data'->'sink'->>'id' = s.id)
      on conflict (outbox_id, sink_id) do nothing
      returning 1
    ), marked as (
      update outbox o set relayed_at = now() from batch b where o.id = b.id returning 1
    )
    select (select count(*) from marked)::int as relayed, (select count(*) from fanned)::int as deliveries`);
  return { relayed: Number(rows[0]?.relayed ?? 0), deliveries: Number(rows[0]?.deliveries ?? 0) };
}

/**
 * Seconds since the oldest committed event that has not been handed to the sinks; 0 when none.
 * Read at every scrape, so it must not grow with the table: the first unrelayed event by id
 * (the partial index the relay scans, one row read) stands for the oldest, which it is to
 * within a transaction's length, since ids are taken as events are written. A `min(created_at)`
 * read either every waiting row or every relayed row older than the first waiting one (the
 * planner's pick), tens of thousands after the relay stops for a while on a retained table.
 */
export function outboxLagSql(): SQL {
  return sql`select extract(epoch from now() - created_at) as lag from outbox where relayed_at is null order by id limit 1`;
}

export async function outboxLagSeconds(db: DbOrTx): Promise<number> {
  const rows = await db.execute<{ lag: number | string | null }>(outboxLagSql());
  return Math.max(0, Number(rows[0]?.lag ?? 0));
}

export interface LeasedDelivery {
  id: number;
  sinkId: string;
  /** After this lease: the fencing value the attempt's result must match. */
  attempts: number;
  eventId: string;
  event: OutboundEvent;
  /** Where the event was written, as a W3C traceparent: the delivery span's parent. */
  traceParent?: string | null;
}

/**
 * Claims due deliveries for the given sinks. Pushing next_attempt_at past the attempt's
 * longest duration is the lease: SKIP LOCKED keeps concurrent relays off each other's
 * rows while they claim, the lease keeps them off afterwards, and a crashed relay's
 * claims come due again when it expires. `attempts` is bumped here and doubles as the
 * fencing token for recording the outcome.
 *
 * Per-payment order: a payment event is due only when it is the first still-pending
 * event of its payment for that sink by (version, outbox id), and no earlier version of
 * the payment is still waiting in the outbox. A failing event so holds back the later
 * events of its payment on that sink, and nothing else. A dead letter no longer holds
 * anything back (see README: consumers discard stale versions).
 */
export async function leaseDueDeliveries(db: DbOrTx, params: { sinkIds: string[]; limit: number; leaseMs: number }): Promise<LeasedDelivery[]> {
  if (params.sinkIds.length === 0) return [];
  const rows = await db.execute<{ id: number; sink_id: string; attempts: number; event_id: string; payload: OutboundEvent; trace_parent: string | null }>(sql`
    update event_deliveries d
    set attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => ${params.leaseMs / 1000}),
        last_attempt_at = now(),
        awaiting_retry = false
    from outbox o
    where o.id = d.outbox_id
      and d.id in (
        select c.id
        from event_deliveries c
        join event_sinks s on s.id = c.sink_id
        where c.state = 'pending'
          and c.sink_id = any(${textArray(params.sinkIds)})
          and c.next_attempt_at <= now()
          and s.disabled_at is null
          and (c.provider_payment_id is null or c.payment_version is null or (
            not exists (
              select 1 from event_deliveries e
              where e.sink_id = c.sink_id and e.state = 'pending'
                and e.provider = c.provider and e.provider_payment_id = c.provider_payment_id
                and e.payment_version is not null
                and (e.payment_version, e.outbox_id) < (c.payment_version, c.outbox_id))
            -- A lower version commits before a higher one (the payment row lock orders
            -- them), but a batch boundary or a concurrent relay can fan it out later.
            and not exists (
              select 1 from outbox p
              where p.provider = c.provider and p.provider_payment_id = c.provider_payment_id
                and p.payment_version < c.payment_version and p.relayed_at is null)))
        order by c.next_attempt_at, c.id
        limit ${params.limit}
        for update of c skip locked)
    returning d.id, d.sink_id, d.attempts, d.event_id, o.payload, o.trace_parent`);
  return rows.map((row) => ({ id: Number(row.id), sinkId: row.sink_id, attempts: Number(row.attempts), eventId: row.event_id, event: row.payload, traceParent: row.trace_parent }));
}

/** What one attempt was, beyond its outcome: kept as a row of event_delivery_attempts. */
export interface AttemptFacts {
  startedAt: Date;
  durationMs: number;
  /** The first bytes of the sink's answer, when it gave one. */
  answer?: string | null;
  probe?: boolean;
}

/** How much of a sink's answer an attempt row keeps. */
export const ANSWER_BYTES = 512;

/**
 * The lease an outcome is recorded under; with `attempt`, the attempt itself is kept too,
 * in the same statement (so a recorded outcome always has its attempt row).
 */
type Fence = Pick<LeasedDelivery, 'id' | 'attempts'> & { attempt?: AttemptFacts };

type AttemptOutcome = 'delivered' | 'retry' | 'dead' | 'gone' | 'probe_failed';

/**
 * Runs a fenced outcome UPDATE (one that returns a row when it applied) and, when the
 * fence carries the attempt's facts, appends the attempt row in the same statement. The
 * row is written whether or not the lease was still this relay's: the sink was called
 * either way, and `superseded` says the outcome went unrecorded on the delivery.
 */
async function applyOutcome(db: DbOrTx, fence: Fence, result: { outcome: AttemptOutcome; status: number | null; error: string | null }, update: SQL): Promise<boolean> {
  const facts = fence.attempt;
  if (!facts) return (await db.execute(update)).length > 0;
  const rows = await db.execute<{ applied: number }>(sql`
    with applied as (${update}), logged as (
      insert into event_delivery_attempts (delivery_id, sink_id, attempt, started_at, duration_ms, outcome, status, error, answer, probe, superseded)
      select d.id, d.sink_id, ${fence.attempts}, ${facts.startedAt.toISOString()}::timestamptz, ${Math.max(0, Math.round(facts.durationMs))},
             ${result.outcome}, ${result.status}, ${result.error}, ${cleanAnswer(facts.answer)}, ${facts.probe ?? false}, not exists (select 1 from applied)
      from event_deliveries d where d.id = ${fence.id}
      returning 1)
    select (select count(*) from applied)::int as applied`);
  return Number(rows[0]?.applied ?? 0) > 0;
}

/** Text Postgres can store (no NUL), at most ANSWER_BYTES of it. */
function cleanAnswer(answer: string | null | undefined): string | null {
  if (!answer) return null;
  return Buffer.from(answer, 'utf8').subarray(0, ANSWER_BYTES).toString('utf8').replaceAll('\u0000', '');
}

/**
 * Gives back leases that were never attempted (the relay is stopping): the deliveries are
 * due again at once, for whichever process runs next, instead of when the lease expires.
 */
export async function releaseLeases(db: DbOrTx, fences: Fence[]): Promise<void> {
  if (fences.length === 0) return;
  await db.execute(sql`
    update event_deliveries d
    set attempts = d.attempts - 1, next_attempt_at = now()
    from jsonb_to_recordset(${JSON.stringify(fences.map((f) => ({ id: f.id, attempts: f.attempts })))}::jsonb) as f(id bigint, attempts int)
    where d.id = f.id and d.attempts = f.attempts and d.state = 'pending'`);
}

/**
 * Each recorder only touches the delivery if its lease is still the current one
 * (attempts unchanged, still pending): a relay whose lease expired mid-attempt must not
 * overwrite the outcome of the relay that took over. They return whether they applied.
 */
export async function markDelivered(db: DbOrTx, fence: Fence, status: number | null): Promise<boolean> {
  return applyOutcome(db, fence, { outcome: 'delivered', status, error: null }, sql`
    update event_deliveries
    set state = 'delivered', delivered_at = now(), last_status = ${status}, last_error = null
    where id = ${fence.id} and attempts = ${fence.attempts} and state = 'pending'
    returning 1`);
}

/**
 * `earlyAllowed: false` (the sink named its own time with Retry-After) keeps the retry out
 * of probes and pull-forwards: it waits for exactly the time asked.
 */
export async function scheduleRetry(db: DbOrTx, fence: Fence, failure: { status: number | null; error: string; delayMs: number; earlyAllowed: boolean }): Promise<boolean> {
  return applyOutcome(db, fence, { outcome: 'retry', status: failure.status, error: failure.error }, sql`
    update event_deliveries
    set next_attempt_at = now() + make_interval(secs => ${failure.delayMs / 1000}),
        last_status = ${failure.status}, last_error = ${failure.error}, awaiting_retry = ${failure.earlyAllowed}
    where id = ${fence.id} and attempts = ${fence.attempts} and state = 'pending'
    returning 1`);
}

export interface LeasedProbe extends LeasedDelivery {
  /** When the retry was due before the probe took it: a failed probe puts it back there. */
  resumeAt: Date;
}

/**
 * The half-open step of a sink's circuit: claims the sink's earliest waiting retry ahead
 * of its time (once it has waited `minWaitMs` since its last attempt), to find out with
 * one real delivery whether the sink answers again. Only
 * a delivery that was the head of its payment can be waiting for a retry (later versions
 * are never attempted before it), and it must still be, so a probe keeps per-payment order.
 */
export async function leaseProbeDelivery(db: DbOrTx, params: { sinkId: string; leaseMs: number; minWaitMs: number }): Promise<LeasedProbe | null> {
  const rows = await db.execute<{ id: number; sink_id: string; attempts: number; event_id: string; payload: OutboundEvent; trace_parent: string | null; resume_at: string }>(sql`
    with pick as (
      select c.id, c.next_attempt_at as resume_at
      from event_deliveries c
      join event_sinks s on s.id = c.sink_id
      where c.sink_id = ${params.sinkId} and c.state = 'pending' and c.awaiting_retry
        and c.next_attempt_at > now() and s.disabled_at is null
        and c.last_attempt_at <= now() - make_interval(secs => ${params.minWaitMs / 1000})
        -- A re-driven dead letter can put an earlier version back in front of it.
        and (c.provider_payment_id is null or c.payment_version is null or not exists (
          select 1 from event_deliveries e
          where e.sink_id = c.sink_id and e.state = 'pending'
            and e.provider = c.provider and e.provider_payment_id = c.provider_payment_id
            and e.payment_version is not null
            and (e.payment_version, e.outbox_id) < (c.payment_version, c.outbox_id)))
      order by c.next_attempt_at, c.id
      limit 1
      for update of c skip locked)
    update event_deliveries d
    set attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => ${params.leaseMs / 1000}),
        last_attempt_at = now(),
        awaiting_retry = false
    from pick, outbox o
    where d.id = pick.id and o.id = d.outbox_id
    returning d.id, d.sink_id, d.attempts, d.event_id, o.payload, o.trace_parent, pick.resume_at`);
  const row = rows[0];
  if (!row) return null;
  return { id: Number(row.id), sinkId: row.sink_id, attempts: Number(row.attempts), eventId: row.event_id, event: row.payload, traceParent: row.trace_parent, resumeAt: new Date(row.resume_at) };
}

/**
 * A probe that failed costs the delivery nothing: its attempt count and its place in the
 * retry schedule are restored (the probe's fencing token, attempts + 1, is given back;
 * the attempt it came from had already recorded its outcome, so no holder of the old
 * token is left).
 */
export async function restoreAfterProbe(db: DbOrTx, probe: Fence & { resumeAt: Date }, failure: { status: number | null; error: string }): Promise<boolean> {
  return applyOutcome(db, probe, { outcome: 'probe_failed', status: failure.status, error: failure.error }, sql`
    update event_deliveries
    set attempts = attempts - 1, next_attempt_at = greatest(${probe.resumeAt.toISOString()}::timestamptz, now()),
        awaiting_retry = true, last_status = ${failure.status}, last_error = ${failure.error}
    where id = ${probe.id} and attempts = ${probe.attempts} and state = 'pending'
    returning 1`);
}

/**
 * The sink answered again: every retry of it that is waiting out its schedule is due now.
 * Deliveries under a lease (an attempt in flight) are left alone. Returns how many moved.
 */
export async function pullForwardRetries(db: DbOrTx, sinkId: string): Promise<number> {
  const rows = await db.execute(sql`
    update event_deliveries
    set next_attempt_at = now()
    where sink_id = ${sinkId} and state = 'pending' and awaiting_retry and next_attempt_at > now()
    returning 1`);
  return rows.length;
}

export async function markDeadLetter(db: DbOrTx, fence: Fence, failure: { status: number | null; error: string }): Promise<boolean> {
  return applyOutcome(db, fence, { outcome: 'dead', status: failure.status, error: failure.error }, sql`
    update event_deliveries
    set state = 'dead', dead_lettered_at = now(), last_status = ${failure.status}, last_error = ${failure.error}
    where id = ${fence.id} and attempts = ${fence.attempts} and state = 'pending'
    returning 1`);
}

/**
 * A 410 Gone: the sink is disabled for every process until an operator enables it.
 * Its deliveries stay pending (this one is due again at once), so enabling the sink
 * resumes where it stopped, in order, with nothing lost. The process that disables it
 * (the guarded UPDATE decides which, once per disablement) adds `gateway.sink.disabled`
 * to the outbox in the same transaction, for the other sinks and the pull API.
 */
export async function disableSinkAfterGone(
  db: Db,
  fence: Fence & { sinkId: string },
  failure: { status: number; error: string },
  sink: Pick<EventSink, 'kind' | 'target'>,
): Promise<{ disabledNow: boolean }> {
  return db.transaction(async (tx) => {
    const disabled = await tx.execute<{ disabled_at: string }>(sql`
      update event_sinks set disabled_at = now(), disabled_reason = ${failure.error}
      where id = ${fence.sinkId} and disabled_at is null
      returning disabled_at`);
    await applyOutcome(tx, fence, { outcome: 'gone', status: failure.status, error: failure.error }, sql`
      update event_deliveries
      set next_attempt_at = now(), last_status = ${failure.status}, last_error = ${failure.error}, awaiting_retry = false
      where id = ${fence.id} and attempts = ${fence.attempts} and state = 'pending'
      returning 1`);
    const at = disabled[0]?.disabled_at;
    if (at === undefined) return { disabledNow: false };
    const disabledAt = new Date(at).toISOString();
    await enqueueEvents(tx, [
      {
        type: 'gateway.sink.disabled',
        dedupeKey: `sink:disabled:${fence.sinkId}:${disabledAt}`,
        data: { sink: { id: fence.sinkId, kind: sink.kind, target: sink.target }, status: failure.status, reason: failure.error, disabledAt },
      },
    ]);
    return { disabledNow: true };
  });
}

export interface DeadLetter {
  id: number;
  eventId: string;
  type: string;
  sink: { id: string; kind: string; target: string; disabled: boolean };
  provider: string | null;
  paymentId: string | null;
  version: number | null;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: string | null;
  deadLetteredAt: string;
  event: OutboundEvent;
}

const iso = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string).toISOString());

/** Dead letters, oldest first, paged by delivery id. */
export async function listDeadLetters(db: DbOrTx, params: { sinkId?: string; afterId?: number; limit: number }): Promise<DeadLetter[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select d.id, d.event_id, d.event_type, d.sink_id, s.kind, s.target, s.disabled_at, d.provider, d.provider_payment_id,
           d.payment_version, d.attempts, d.last_status, d.last_error, d.last_attempt_at, d.dead_lettered_at, o.payload
    from event_deliveries d
    join event_sinks s on s.id = d.sink_id
    join outbox o on o.id = d.outbox_id
    where d.state = 'dead'
      ${params.sinkId ? sql`and d.sink_id = ${params.sinkId}` : sql``}
      ${params.afterId !== undefined ? sql`and d.id > ${params.afterId}` : sql``}
    order by d.id
    limit ${params.limit}`);
  return rows.map((row) => ({
    id: Number(row.id),
    eventId: row.event_id as string,
    type: row.event_type as string,
    sink: { id: row.sink_id as string, kind: row.kind as string, target: row.target as string, disabled: row.disabled_at !== null },
    provider: (row.provider as string | null) ?? null,
    paymentId: (row.provider_payment_id as string | null) ?? null,
    version: row.payment_version === null ? null : Number(row.payment_version),
    attempts: Number(row.attempts),
    lastStatus: row.last_status === null ? null : Number(row.last_status),
    lastError: (row.last_error as string | null) ?? null,
    lastAttemptAt: iso(row.last_attempt_at),
    deadLetteredAt: iso(row.dead_lettered_at)!,
    event: row.payload as OutboundEvent,
  }));
}

/**
 * Puts a dead letter back in the queue with a fresh retry schedule. The same event id
 * goes out again, so receivers that already saw it (a sink that answered 500 after
 * processing) de-duplicate it. Returns false when there is no such dead letter.
 */
export async function redriveDeadLetter(db: DbOrTx, id: number): Promise<boolean> {
  const rows = await db.execute(sql`
    update event_deliveries
    set state = 'pending', attempts = 0, next_attempt_at = now(), dead_lettered_at = null
    where id = ${id} and state = 'dead'
    returning 1`);
  return rows.length > 0;
}

export interface SinkState {
  id: string;
  kind: string;
  target: string;
  disabledAt: string | null;
  disabledReason: string | null;
  pending: number;
  deadLetters: number;
}

export async function listSinkStates(db: DbOrTx, params: { id?: string } = {}): Promise<SinkState[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select s.id, s.kind, s.target, s.disabled_at, s.disabled_reason,
           (select count(*) from event_deliveries d where d.sink_id = s.id and d.state = 'pending')::int as pending,
           (select count(*) from event_deliveries d where d.sink_id = s.id and d.state = 'dead')::int as dead
    from event_sinks s
    ${params.id ? sql`where s.id = ${params.id}` : sql``}
    order by s.created_at, s.id`);
  return rows.map((row) => ({
    id: row.id as string,
    kind: row.kind as string,
    target: row.target as string,
    disabledAt: iso(row.disabled_at),
    disabledReason: (row.disabled_reason as string | null) ?? null,
    pending: Number(row.pending),
    deadLetters: Number(row.dead),
  }));
}

/** The given sinks that a 410 disabled, for /readyz. */
export async function listDisabledSinks(db: DbOrTx, ids: string[]): Promise<{ id: string; kind: string; target: string; disabledAt: string; reason: string | null }[]> {
  if (ids.length === 0) return [];
  const rows = await db.execute<Record<string, unknown>>(sql`
    select id, kind, target, disabled_at, disabled_reason from event_sinks
    where disabled_at is not null and id = any(${textArray(ids)}) order by id`);
  return rows.map((row) => ({ id: row.id as string, kind: row.kind as string, target: row.target as string, disabledAt: iso(row.disabled_at)!, reason: (row.disabled_reason as string | null) ?? null }));
}

/** Lifts a 410's disablement; the sink's pending deliveries resume in order. */
export async function enableSink(db: DbOrTx, id: string): Promise<boolean> {
  const rows = await db.execute(sql`
    update event_sinks set disabled_at = null, disabled_reason = null where id = ${id} returning 1`);
  return rows.length > 0;
}
