import { sql, type SQL } from 'drizzle-orm';
import { fixedTextStatement, renderedStatement, toQuery, type Statement } from '../db/prepared.js';
import type { OutboxEventRow } from '../events/payment-events.js';
import { settleReceiptsParams, settleReceiptsSql } from '../db/queries/receipt-settlement.js';
import type { PaymentSnapshot } from '../providers/types.js';
import { ORDERING, replaceGuardSql } from './status-rules.js';
import type { TransitionWrite } from './write-plan.js';

/**
 * The write path's SQL, and nothing else: the fetch fence, the guarded upsert, the
 * statement that records a change, and the one that ends a write that changed nothing.
 * Each is a builder (drizzle SQL) and, for the hot ones, a fixed-text statement whose
 * text is rendered once per process. Nothing here runs a statement (write-executor.ts does).
 */

/** A fence for a fetch that is about to start (a higher fence: a later-started fetch). */
export function fetchFenceSql(): SQL {
  return sql`select nextval('payment_fetch_fence') as fence`;
}

/** The fence, and the database's time as it is taken (milliseconds): when the fetch started. */
export function fetchFenceAtSql(): SQL {
  return sql`select nextval('payment_fetch_fence') as fence, (extract(epoch from clock_timestamp()) * 1000)::float8 as at`;
}

/**
 * `count` fences in one round trip, each with the database's time as it was taken: for
 * fetches about to start together. Every fence is distinct, and every time is later than
 * anything committed before the statement began (such as the receipts that triggered them).
 */
export function fetchFencesAtSql(count: number): SQL {
  return sql`select nextval('payment_fetch_fence') as fence, (extract(epoch from clock_timestamp()) * 1000)::float8 as at from generate_series(1, ${count}::int)`;
}

/**
 * The statement that ends a transaction whose upsert wrote nothing: settle the receipts,
 * re-poll a divergent fence-ordered payment, and (on the pool) let the commit skip the
 * WAL flush when it would make nothing durable but a row lock. Such a transaction
 * changed no payment and no event; a settle lost to a crash is redone by the receipt
 * worker (the receipt is still pending, and the sync is idempotent). A re-poll request
 * is kept durable.
 */
export function unchangedSql(s: PaymentSnapshot, settleIds: number[], mayCommitAsync: boolean): SQL {
  const ctes: SQL[] = [];
  if (settleIds.length > 0) ctes.push(sql`settled as (${settleReceiptsSql(settleIds, 'processed')})`);
  const requeue = ORDERING[s.provider] === 'fence';
  if (requeue) ctes.push(sql`requeued as (${requeueIfDivergentSql(s)} returning 1)`);
  const withClause = ctes.length > 0 ? sql`with ${sql.join(ctes, sql`, `)} ` : sql``;
  if (!mayCommitAsync) return sql`${withClause}select 1`;
  return sql`${withClause}select set_config('synchronous_commit', 'off', true)${requeue ? sql` where not exists (select 1 from requeued)` : sql``}`;
}

/**
 * A refused snapshot that differs from the stored row, for a provider ordered by fence.
 * The fence orders fetches by when they started, which is when the provider saw them
 * only if it answers in arrival order. Two overlapping fetches (a lapsed lock, Redis
 * down) could be answered out of order and leave the older observation stored. So the
 * disagreement itself makes the payment due now: the next poll fetches again, with a
 * higher fence than both, and settles it. Identical snapshots (the common duplicate)
 * touch nothing.
 */
function requeueIfDivergentSql(s: PaymentSnapshot): SQL {
  return sql`
    update payments set next_poll_at = now()
    where provider = ${s.provider} and provider_payment_id = ${s.providerPaymentId}
      and (status, provider_status, amount_minor, currency, refunded_minor, charged_back_minor)
        is distinct from
          (${s.status}, ${s.providerStatus}, ${s.amount.minor}::bigint, ${s.amount.currency}, ${s.refundedMinor}::bigint, ${s.chargedBackMinor}::bigint)
      and (next_poll_at is null or next_poll_at > now())`;
}

let guard: SQL | undefined;

/**
 * The status rules' WHERE, with its constants (provider and status names) written into
 * the statement text once instead of sent as some twenty parameters on every upsert:
 * the same SQL, cheaper to build, bind and plan.
 */
function replaceGuard(): SQL {
  if (!guard) {
    const { text, params } = toQuery(replaceGuardSql());
    const literal = (value: unknown) => {
      if (typeof value !== 'string' || !/^[a-z_]+$/.test(value)) throw new Error(`unexpected constant in the status guard: ${String(value)}`);
      return `'${value}'`;
    };
    // Highest placeholder first, so $1 never rewrites the start of $12.
    guard = sql.raw(params.reduceRight<string>((out, value, index) => out.replaceAll(`$${index + 1}`, literal(value)), text));
  }
  return guard;
}

/**
 * The guarded upsert (guarantees 1 and 2), as SQL. Exported so the benchmark's
 * database ceiling runs exactly the statement the gateway runs.
 */
export function guardedUpsertSql(s: PaymentSnapshot, fence: number, nextPollAt: Date | null, snapshotJson: string, metadataJson: string): SQL {
  return sql`
    insert into payments as payments (${UPSERT_COLUMNS})
    values (
      ${s.provider}, ${s.providerPaymentId}, ${s.account}, ${s.status}, ${s.providerStatus},
      ${s.amount.minor}, ${s.amount.currency}, ${s.refundedMinor}, ${s.chargedBackMinor},
      ${s.mode}, ${s.method}, ${metadataJson}::jsonb, ${snapshotJson}::jsonb, 1, ${fence}, null,
      ${s.providerCreatedAt?.toISOString() ?? null}, now(), ${nextPollAt?.toISOString() ?? null})
    ${guardedConflict()}
    returning id, version, (xmax = 0) as inserted, previous, updated_at`;
}

const UPSERT_COLUMNS = sql.raw(`
      provider, provider_payment_id, account, status, provider_status,
      amount_minor, currency, refunded_minor, charged_back_minor,
      mode, method, metadata, snapshot, version, fence, previous,
      provider_created_at, last_synced_at, next_poll_at`);

/** What a snapshot does to the row already there: guarantees 1 and 2 (see guardedUpsertSql). */
function guardedConflict(): SQL {
  return sql`on conflict (provider, provider_payment_id) do update set
      status = excluded.status,
      provider_status = excluded.provider_status,
      amount_minor = excluded.amount_minor,
      currency = excluded.currency,
      refunded_minor = excluded.refunded_minor,
      charged_back_minor = excluded.charged_back_minor,
      mode = excluded.mode,
      method = excluded.method,
      metadata = excluded.metadata,
      snapshot = excluded.snapshot,
      version = payments.version + 1,
      fence = greatest(payments.fence, excluded.fence),
      previous = jsonb_build_object(
        'status', payments.status,
        'providerStatus', payments.provider_status,
        'amountMinor', payments.amount_minor,
        'currency', payments.currency,
        'refundedMinor', payments.refunded_minor,
        'chargedBackMinor', payments.charged_back_minor),
      provider_created_at = coalesce(payments.provider_created_at, excluded.provider_created_at),
      updated_at = now(),
      last_synced_at = now(),
      next_poll_at = excluded.next_poll_at
    where ${replaceGuard()}
      and (payments.status, payments.provider_status, payments.amount_minor, payments.currency,
           payments.refunded_minor, payments.charged_back_minor)
        is distinct from
          (excluded.status, excluded.provider_status, excluded.amount_minor, excluded.currency,
           excluded.refunded_minor, excluded.charged_back_minor)`;
}

/** One snapshot as guardedUpsertManySql reads it: the values guardedUpsertSql binds, as JSON. */
export function upsertRowJson(s: PaymentSnapshot, fence: number, nextPollAt: Date | null, snapshotJson: string, metadataJson: string): string {
  // The snapshot and metadata are JSON already: spliced in, not parsed and written again.
  const scalars = JSON.stringify([
    s.provider, s.providerPaymentId, s.account, s.status, s.providerStatus,
    s.amount.minor, s.amount.currency, s.refundedMinor, s.chargedBackMinor,
    s.mode, s.method, fence, s.providerCreatedAt?.toISOString() ?? null, nextPollAt?.toISOString() ?? null,
  ]);
  return `{"v":${scalars},"metadata":${metadataJson},"snapshot":${snapshotJson}}`;
}

/**
 * The guarded upsert of several snapshots of DISTINCT payments in one statement: row by
 * row exactly what guardedUpsertSql does (the same conflict clause and guard), locking
 * the rows in one fixed order (by provider and id, byte order) as every batch does, so
 * concurrent batches cannot deadlock. `rowsJson` is a JSON array of upsertRowJson.
 * RETURNING names each written row's payment, since rows come back in no set order.
 * (Postgres refuses to touch one row twice in a statement: two snapshots of one payment
 * never share one of these.)
 */
export function guardedUpsertManySql(rowsJson: string): SQL {
  return sql`
    insert into payments as payments (${UPSERT_COLUMNS})
    select
      r.v->>0, r.v->>1, r.v->>2, r.v->>3, r.v->>4,
      (r.v->>5)::bigint, r.v->>6, (r.v->>7)::bigint, (r.v->>8)::bigint,
      r.v->>9, r.v->>10, coalesce(r.metadata, 'null'::jsonb), r.snapshot, 1, (r.v->>11)::bigint, null,
      (r.v->>12)::timestamptz, now(), (r.v->>13)::timestamptz
    from jsonb_to_recordset(${rowsJson}::jsonb) as r(v jsonb, metadata jsonb, snapshot jsonb)
    order by (r.v->>0) collate "C", (r.v->>1) collate "C"
    ${guardedConflict()}
    returning id, version, (xmax = 0) as inserted, previous, updated_at, provider, provider_payment_id`;
}

/** guardedUpsertManySql as a statement whose text is rendered once. */
export function guardedUpsertMany(rowsJson: string): Statement {
  return fixedTextStatement('guarded-upsert-many', () => guardedUpsertManySql(rowsJson), () => [rowsJson]);
}

/** guardedUpsertSql's values, in the order it interpolates them. */
function guardedUpsertParams(s: PaymentSnapshot, fence: number, nextPollAt: Date | null, snapshotJson: string, metadataJson: string): unknown[] {
  return [
    s.provider, s.providerPaymentId, s.account, s.status, s.providerStatus,
    s.amount.minor, s.amount.currency, s.refundedMinor, s.chargedBackMinor,
    s.mode, s.method, metadataJson, snapshotJson, fence,
    s.providerCreatedAt?.toISOString() ?? null, nextPollAt?.toISOString() ?? null,
  ];
}

/** The guarded upsert, its text rendered once per process (see fixedTextStatement). */
export function guardedUpsert(s: PaymentSnapshot, fence: number, nextPollAt: Date | null, snapshotJson: string, metadataJson: string): Statement {
  return fixedTextStatement(
    'guarded-upsert',
    () => guardedUpsertSql(s, fence, nextPollAt, snapshotJson, metadataJson),
    () => guardedUpsertParams(s, fence, nextPollAt, snapshotJson, metadataJson),
  );
}

/** The transition row, the outbox events and the receipts' settlement of one change, in one statement. */
export function transitionAndEventsSql(input: TransitionWrite): SQL {
  const { paymentRowId, version, source, previous, snapshot: s, fence, receiptId, snapshotJson, events } = input;
  const settle = input.settleReceiptIds ?? [];
  return sql`
      with transition as (
        insert into payment_transitions (
          payment_id, version, source, previous_status, new_status,
          previous_provider_status, new_provider_status, fence, receipt_id, snapshot)
        values (
          ${paymentRowId}, ${version}, ${source}, ${previous?.status ?? null}, ${s.status},
          ${previous?.providerStatus ?? null}, ${s.providerStatus}, ${fence}, ${receiptId},
          ${snapshotJson}::jsonb)
      )${settle.length > 0 ? sql`, settled as (${settleReceiptsSql(settle, 'processed')})` : sql``}
      insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent)
      select event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent
      from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(
        event_id text, dedupe_key text, type text, provider text,
        provider_payment_id text, payment_version int, payload jsonb, trace_parent text)`;
}

/**
 * The transition rows, outbox events and receipts' settlement of several changes (of any
 * payments) in one statement: what transitionAndEventsSql does for each. `transitionsJson`
 * is a JSON array of transitionRowJson, `eventsJson` every change's events.
 */
export function transitionsAndEventsManySql(transitionsJson: string, settleIds: number[], eventsJson: string): SQL {
  return sql`
      with transition as (
        insert into payment_transitions (
          payment_id, version, source, previous_status, new_status,
          previous_provider_status, new_provider_status, fence, receipt_id, snapshot)
        select (t.v->>0)::bigint, (t.v->>1)::int, t.v->>2, t.v->>3, t.v->>4, t.v->>5, t.v->>6, (t.v->>7)::bigint, (t.v->>8)::bigint, t.snapshot
        from jsonb_to_recordset(${transitionsJson}::jsonb) as t(v jsonb, snapshot jsonb)
      )${settleIds.length > 0 ? sql`, settled as (${settleReceiptsSql(settleIds, 'processed')})` : sql``}
      insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent)
      select event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent
      from jsonb_to_recordset(${eventsJson}::jsonb) as e(
        event_id text, dedupe_key text, type text, provider text,
        provider_payment_id text, payment_version int, payload jsonb, trace_parent text)`;
}

/** One change's transition row as transitionsAndEventsManySql reads it. */
function transitionRowJson(input: TransitionWrite): string {
  const { paymentRowId, version, source, previous, snapshot: s, fence, receiptId, snapshotJson } = input;
  const scalars = JSON.stringify([paymentRowId, version, source, previous?.status ?? null, s.status, previous?.providerStatus ?? null, s.providerStatus, fence, receiptId]);
  return `{"v":${scalars},"snapshot":${snapshotJson}}`;
}

/** transitionsAndEventsManySql as a statement; two texts (with and without receipts to settle), each rendered once. */
export function transitionsAndEventsMany(changes: TransitionWrite[]): Statement {
  const transitionsJson = `[${changes.map(transitionRowJson).join(',')}]`;
  const settleIds = changes.flatMap((change) => change.settleReceiptIds ?? []);
  const eventsJson = JSON.stringify(changes.flatMap((change) => change.events));
  return fixedTextStatement(
    settleIds.length > 0 ? 'transitions-events-settle-many' : 'transitions-events-many',
    () => transitionsAndEventsManySql(transitionsJson, settleIds, eventsJson),
    () => [transitionsJson, ...(settleIds.length > 0 ? settleReceiptsParams(settleIds, 'processed') : []), eventsJson],
  );
}

/** transitionAndEventsSql's values, in the order it interpolates them. */
function transitionAndEventsParams(input: TransitionWrite): unknown[] {
  const { paymentRowId, version, source, previous, snapshot: s, fence, receiptId, snapshotJson, events } = input;
  const settle = input.settleReceiptIds ?? [];
  return [
    paymentRowId, version, source, previous?.status ?? null, s.status,
    previous?.providerStatus ?? null, s.providerStatus, fence, receiptId, snapshotJson,
    ...(settle.length > 0 ? settleReceiptsParams(settle, 'processed') : []),
    JSON.stringify(events),
  ];
}

/** The transition, events and settlement statement; two texts (with and without receipts to settle), each rendered once. */
export function transitionAndEvents(input: TransitionWrite): Statement {
  const shape = (input.settleReceiptIds ?? []).length > 0 ? 'transition-events-settle' : 'transition-events';
  return fixedTextStatement(shape, () => transitionAndEventsSql(input), () => transitionAndEventsParams(input));
}

/**
 * The refunds and chargebacks of one snapshot, upserted after its payment (in the same
 * transaction, so the payment row exists even when the snapshot created it). The unique
 * (provider, provider_item_id) turns a concurrent insert into this update; the WHERE is
 * adjustment-rules.ts's rule: a higher status rank, or at the same provider status a
 * later-started fetch that corrects the amount. So an older snapshot never moves an item
 * back, and RETURNING yields a row exactly for a real change (with the payment as stored
 * after this transaction's own upsert, for the events' payment summary). Rows are locked
 * in id order, under the payment row's lock that the upsert before it holds.
 */
export function adjustmentsUpsertSql(s: PaymentSnapshot, fence: number, itemsJson: string): SQL {
  return sql`
    with items as (
      select * from jsonb_to_recordset(${itemsJson}::jsonb) as i(
        kind text, provider_item_id text, amount_minor bigint, currency text, status text,
        provider_status text, status_rank int, provider_created_at timestamptz)
    ), written as (
      insert into payment_adjustments as a (
        provider, kind, provider_item_id, payment_id, provider_payment_id, amount_minor, currency,
        status, provider_status, status_rank, version, fence, provider_created_at)
      select ${s.provider}, i.kind, i.provider_item_id, p.id, p.provider_payment_id, i.amount_minor, i.currency,
        i.status, i.provider_status, i.status_rank, 1, ${fence}::bigint, i.provider_created_at
      from items i
      join payments p on p.provider = ${s.provider} and p.provider_payment_id = ${s.providerPaymentId}
      order by i.provider_item_id
      on conflict (provider, provider_item_id) do update set
        amount_minor = excluded.amount_minor,
        currency = excluded.currency,
        status = excluded.status,
        provider_status = excluded.provider_status,
        status_rank = excluded.status_rank,
        previous_status = a.status,
        previous_provider_status = a.provider_status,
        version = a.version + 1,
        fence = greatest(a.fence, excluded.fence),
        provider_created_at = coalesce(a.provider_created_at, excluded.provider_created_at),
        updated_at = now()
      where a.payment_id = excluded.payment_id
        and (excluded.status_rank > a.status_rank
          or (excluded.status_rank = a.status_rank
            and excluded.provider_status = a.provider_status
            and excluded.fence > a.fence
            and (excluded.amount_minor, excluded.currency) is distinct from (a.amount_minor, a.currency)))
      returning a.kind, a.provider_item_id, a.status, a.provider_status, a.previous_status, a.previous_provider_status,
        a.amount_minor, a.currency, a.version, (xmax = 0) as inserted, a.provider_created_at, a.updated_at, a.payment_id
    )
    select w.*, p.version as payment_version, p.status as payment_status, p.provider_status as payment_provider_status,
      p.amount_minor as payment_amount_minor, p.currency as payment_currency,
      p.refunded_minor as payment_refunded_minor, p.charged_back_minor as payment_charged_back_minor
    from written w join payments p on p.id = w.payment_id
    order by w.kind, w.provider_item_id`;
}

export function adjustmentsUpsert(s: PaymentSnapshot, fence: number, itemsJson: string): Statement {
  return renderedStatement(() => adjustmentsUpsertSql(s, fence, itemsJson));
}

/** Outbox events written without a payment change (a refund moved while the payment did not). */
export function insertEventsSql(events: OutboxEventRow[]): SQL {
  return sql`
    insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent)
    select event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent
    from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(
      event_id text, dedupe_key text, type text, provider text,
      provider_payment_id text, payment_version int, payload jsonb, trace_parent text)`;
}
