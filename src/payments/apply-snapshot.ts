import { sql, type SQL } from 'drizzle-orm';
import type postgres from 'postgres';
import type { DbOrTx } from '../db/client.js';
import { executePrepared, fixedTextStatement, poolClient, renderedStatement, toQuery, type Statement } from '../db/prepared.js';
import { billingFacts, type FailureHint } from '../events/billing-facts.js';
import { buildPaymentEvents, type OutboxEventRow, type TrackedState } from '../events/payment-events.js';
import type { PaymentSnapshot } from '../providers/types.js';
import { settleReceiptsParams, settleReceiptsSql } from '../webhooks/receipts.js';
import { isFinal, ORDERING, replaceGuardSql } from './status-rules.js';

export type SyncSource = 'webhook' | 'poll' | 'sync' | 'sweep' | 'replay' | 'track';

export interface ApplyInput {
  snapshot: PaymentSnapshot;
  /** From payment_fetch_fence, taken before the fetch that produced the snapshot. */
  fence: number;
  source: SyncSource;
  receiptId?: number | null;
  /** When the poller should look at this payment next; ignored once the payment is final. */
  nextPollAt?: Date | null;
  /**
   * Pending webhook receipts this sync answers. They are marked processed in the same
   * transaction as the write (changed or not), so the caller needs no second commit.
   */
  settleReceiptIds?: number[];
  /** Carried into the events' failure fields when the snapshot has no reason of its own. */
  failureHint?: FailureHint | null;
}

export interface ApplyResult {
  changed: boolean;
  paymentRowId: number | null;
  version: number | null;
  previous: TrackedState | null;
  eventTypes: string[];
  /** `settleReceiptIds` were marked processed (if still pending) with this write. */
  settledReceipts: boolean;
}

interface UpsertRow {
  id: number;
  version: number;
  inserted: boolean;
  previous: TrackedState | null;
  updated_at: Date;
  [key: string]: unknown;
}

/** Statuses a failure reason belongs to; a hint never explains a payment that did not fail. */
const failed = (status: string) => status === 'failed' || status === 'charged_back';

/** Takes the fence for a fetch that is about to start. */
/** The fence, and the database's time as it was taken (milliseconds): when the fetch started. */
export async function takeFetchFenceAt(db: DbOrTx): Promise<{ fence: number; at: number }> {
  const rows = await executePrepared<{ fence: number; at: number | string }>(
    db,
    sql`select nextval('payment_fetch_fence') as fence, (extract(epoch from clock_timestamp()) * 1000)::float8 as at`,
  );
  return { fence: Number(rows[0]!.fence), at: Number(rows[0]!.at) };
}

export async function takeFetchFence(db: DbOrTx): Promise<number> {
  const rows = await executePrepared<{ fence: number }>(db, sql`select nextval('payment_fetch_fence') as fence`);
  return Number(rows[0]!.fence);
}

/**
 * Writes a provider snapshot: one transaction holding the guarded upsert and, only
 * when the row really changed, its transition row and its outbox events; plus the
 * settlement of the receipts the sync answers.
 *
 * On the pool (the usual case) the transaction is pipelined on one reserved connection:
 * BEGIN travels with the upsert and COMMIT with the last statement, so a change costs
 * two round trips instead of four, with the same statements in the same transaction.
 * The hot statements are prepared once per connection. Given a caller's transaction,
 * the same statements run one by one inside a savepoint of it.
 */
export async function applySnapshot(db: DbOrTx, input: ApplyInput): Promise<ApplyResult> {
  const plan = planApply(input);
  const client = poolClient(db);
  if (client) return applyPipelined(client, plan);
  return db.transaction(async (tx) => {
    const steps: WriteSteps = {
      upsert: (statement) => tx.execute<UpsertRow>(statement.sql()),
      finish: async (statement) => {
        await tx.execute(statement.sql());
      },
    };
    return applyWith(steps, plan, false);
  });
}

interface ApplyPlan {
  input: ApplyInput;
  snapshotJson: string;
  upsert: Statement;
  settleIds: number[];
}

function planApply(input: ApplyInput): ApplyPlan {
  const { snapshot: s, fence } = input;
  const final = isFinal(s.provider, s.providerStatus);
  const nextPollAt = final ? null : (input.nextPollAt ?? null);
  const snapshotJson = JSON.stringify(s.raw);
  const metadataJson = JSON.stringify(s.metadata ?? null);
  return { input, snapshotJson, upsert: guardedUpsert(s, fence, nextPollAt, snapshotJson, metadataJson), settleIds: input.settleReceiptIds ?? [] };
}

/** The two halves of the transaction: the upsert (which opens it), and the statement that ends it. */
interface WriteSteps {
  upsert(statement: Statement): Promise<UpsertRow[]>;
  finish(statement: Statement): Promise<void>;
}

async function applyWith(steps: WriteSteps, plan: ApplyPlan, mayCommitAsync: boolean): Promise<ApplyResult> {
  const { input, snapshotJson, settleIds } = plan;
  const s = input.snapshot;
  // Guarantees 1 and 2 in one statement. The unique index on (provider,
  // provider_payment_id) makes a concurrent insert turn into this update instead of a
  // second row. The WHERE refuses stale snapshots (status rules per provider) and
  // no-op ones (nothing tracked differs), so RETURNING yields a row exactly when a
  // real change was written. `previous` captures the row as it stood under the row
  // lock the update holds, which a separate SELECT could not see race-free.
  const rows = await steps.upsert(plan.upsert);

  const row = rows[0];
  if (!row) {
    await steps.finish(renderedStatement(() => unchangedSql(s, settleIds, mayCommitAsync)));
    return { changed: false, paymentRowId: null, version: null, previous: null, eventTypes: [], settledReceipts: settleIds.length > 0 };
  }

  const previous = row.inserted ? null : row.previous;
  const next: TrackedState = {
    status: s.status,
    providerStatus: s.providerStatus,
    amountMinor: s.amount.minor,
    currency: s.amount.currency,
    refundedMinor: s.refundedMinor,
    chargedBackMinor: s.chargedBackMinor,
  };
  const events = buildPaymentEvents({
    provider: s.provider,
    account: s.account,
    providerPaymentId: s.providerPaymentId,
    version: row.version,
    source: input.source,
    previous,
    next,
    mode: s.mode,
    metadata: s.metadata,
    billing: billingFacts(s.provider, s.raw, failed(s.status) ? (input.failureHint ?? null) : null),
    changedAt: new Date(row.updated_at),
  });

  // The transition and its events commit with the change or not at all (guarantee 4).
  // The unique (payment_id, version) and outbox dedupe keys turn any double write into
  // an error that rolls the whole change back, never into a second event.
  await steps.finish(
    transitionAndEvents({
      paymentRowId: row.id,
      version: row.version,
      source: input.source,
      previous,
      snapshot: s,
      fence: input.fence,
      receiptId: input.receiptId ?? null,
      snapshotJson,
      events,
      settleReceiptIds: settleIds,
    }),
  );

  return {
    changed: true,
    paymentRowId: Number(row.id),
    version: row.version,
    previous,
    eventTypes: events.map((event) => event.type),
    settledReceipts: settleIds.length > 0,
  };
}

async function applyPipelined(client: postgres.Sql, plan: ApplyPlan): Promise<ApplyResult> {
  const connection = await client.reserve();
  const run = (statement: Statement) => {
    const { text, params } = statement.query();
    return connection.unsafe(text, params, { prepare: true });
  };
  try {
    return await applyWith(
      {
        // Queries issued together on one connection are sent together and answered in order.
        upsert: async (statement) => {
          const [, rows] = await Promise.all([connection.unsafe('begin'), run(statement)]);
          return rows as unknown as UpsertRow[];
        },
        finish: async (statement) => {
          // If the statement fails, the COMMIT behind it ends the aborted transaction as a rollback.
          await Promise.all([run(statement), connection.unsafe('commit')]);
        },
      },
      plan,
      true,
    );
  } catch (error) {
    // Never hand a connection back inside a transaction (a no-op with a warning if none is open).
    await connection.unsafe('rollback').catch(() => {});
    throw error;
  } finally {
    connection.release();
  }
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
    insert into payments as payments (
      provider, provider_payment_id, account, status, provider_status,
      amount_minor, currency, refunded_minor, charged_back_minor,
      mode, method, metadata, snapshot, version, fence, previous,
      provider_created_at, last_synced_at, next_poll_at)
    values (
      ${s.provider}, ${s.providerPaymentId}, ${s.account}, ${s.status}, ${s.providerStatus},
      ${s.amount.minor}, ${s.amount.currency}, ${s.refundedMinor}, ${s.chargedBackMinor},
      ${s.mode}, ${s.method}, ${metadataJson}::jsonb, ${snapshotJson}::jsonb, 1, ${fence}, null,
      ${s.providerCreatedAt?.toISOString() ?? null}, now(), ${nextPollAt?.toISOString() ?? null})
    on conflict (provider, provider_payment_id) do update set
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
           excluded.refunded_minor, excluded.charged_back_minor)
    returning id, version, (xmax = 0) as inserted, previous, updated_at`;
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
export function transitionAndEventsSql(input: {
  paymentRowId: number;
  version: number;
  source: SyncSource;
  previous: TrackedState | null;
  snapshot: PaymentSnapshot;
  fence: number;
  receiptId: number | null;
  snapshotJson: string;
  events: OutboxEventRow[];
  settleReceiptIds?: number[];
}): SQL {
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
      insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload)
      select event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload
      from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(
        event_id text, dedupe_key text, type text, provider text,
        provider_payment_id text, payment_version int, payload jsonb)`;
}

type TransitionInput = Parameters<typeof transitionAndEventsSql>[0];

/** transitionAndEventsSql's values, in the order it interpolates them. */
function transitionAndEventsParams(input: TransitionInput): unknown[] {
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
export function transitionAndEvents(input: TransitionInput): Statement {
  const shape = (input.settleReceiptIds ?? []).length > 0 ? 'transition-events-settle' : 'transition-events';
  return fixedTextStatement(shape, () => transitionAndEventsSql(input), () => transitionAndEventsParams(input));
}
