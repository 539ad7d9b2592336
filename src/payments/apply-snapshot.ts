import { sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { buildPaymentEvents, type OutboxEventRow, type TrackedState } from '../events/payment-events.js';
import type { PaymentSnapshot } from '../providers/types.js';
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
}

export interface ApplyResult {
  changed: boolean;
  paymentRowId: number | null;
  version: number | null;
  previous: TrackedState | null;
  eventTypes: string[];
}

interface UpsertRow {
  id: number;
  version: number;
  inserted: boolean;
  previous: TrackedState | null;
  updated_at: Date;
  [key: string]: unknown;
}

/** Takes the fence for a fetch that is about to start. */
export async function takeFetchFence(db: DbOrTx): Promise<number> {
  const rows = await db.execute<{ fence: number }>(sql`select nextval('payment_fetch_fence') as fence`);
  return Number(rows[0]!.fence);
}

/**
 * Writes a provider snapshot: one transaction holding the guarded upsert and, only
 * when the row really changed, its transition row and its outbox events.
 */
export async function applySnapshot(db: DbOrTx, input: ApplyInput): Promise<ApplyResult> {
  const { snapshot: s, fence } = input;
  const final = isFinal(s.provider, s.providerStatus);
  const nextPollAt = final ? null : (input.nextPollAt ?? null);
  const snapshotJson = JSON.stringify(s.raw);
  const metadataJson = JSON.stringify(s.metadata ?? null);

  return db.transaction(async (tx) => {
    // Guarantees 1 and 2 in one statement. The unique index on (provider,
    // provider_payment_id) makes a concurrent insert turn into this update instead of a
    // second row. The WHERE refuses stale snapshots (status rules per provider) and
    // no-op ones (nothing tracked differs), so RETURNING yields a row exactly when a
    // real change was written. `previous` captures the row as it stood under the row
    // lock the update holds, which a separate SELECT could not see race-free.
    const rows = await tx.execute<UpsertRow>(guardedUpsertSql(s, fence, nextPollAt, snapshotJson, metadataJson));

    const row = rows[0];
    if (!row) {
      await requeueIfDivergent(tx, s);
      return { changed: false, paymentRowId: null, version: null, previous: null, eventTypes: [] };
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
      changedAt: new Date(row.updated_at),
    });

    // The transition and its events commit with the change or not at all (guarantee 4).
    // The unique (payment_id, version) and outbox dedupe keys turn any double write into
    // an error that rolls the whole change back, never into a second event.
    await tx.execute(
      transitionAndEventsSql({
        paymentRowId: row.id,
        version: row.version,
        source: input.source,
        previous,
        snapshot: s,
        fence,
        receiptId: input.receiptId ?? null,
        snapshotJson,
        events,
      }),
    );

    return {
      changed: true,
      paymentRowId: Number(row.id),
      version: row.version,
      previous,
      eventTypes: events.map((event) => event.type),
    };
  });
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
async function requeueIfDivergent(tx: DbOrTx, s: PaymentSnapshot): Promise<void> {
  if (ORDERING[s.provider] !== 'fence') return;
  await tx.execute(sql`
    update payments set next_poll_at = now()
    where provider = ${s.provider} and provider_payment_id = ${s.providerPaymentId}
      and (status, provider_status, amount_minor, currency, refunded_minor, charged_back_minor)
        is distinct from
          (${s.status}, ${s.providerStatus}, ${s.amount.minor}::bigint, ${s.amount.currency}, ${s.refundedMinor}::bigint, ${s.chargedBackMinor}::bigint)
      and (next_poll_at is null or next_poll_at > now())`);
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
    where ${replaceGuardSql()}
      and (payments.status, payments.provider_status, payments.amount_minor, payments.currency,
           payments.refunded_minor, payments.charged_back_minor)
        is distinct from
          (excluded.status, excluded.provider_status, excluded.amount_minor, excluded.currency,
           excluded.refunded_minor, excluded.charged_back_minor)
    returning id, version, (xmax = 0) as inserted, previous, updated_at`;
}

/** The transition row and the outbox events of one change, in one statement. */
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
}): SQL {
  const { paymentRowId, version, source, previous, snapshot: s, fence, receiptId, snapshotJson, events } = input;
  return sql`
      with transition as (
        insert into payment_transitions (
          payment_id, version, source, previous_status, new_status,
          previous_provider_status, new_provider_status, fence, receipt_id, snapshot)
        values (
          ${paymentRowId}, ${version}, ${source}, ${previous?.status ?? null}, ${s.status},
          ${previous?.providerStatus ?? null}, ${s.providerStatus}, ${fence}, ${receiptId},
          ${snapshotJson}::jsonb)
      )
      insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload)
      select event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload
      from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(
        event_id text, dedupe_key text, type text, provider text,
        provider_payment_id text, payment_version int, payload jsonb)`;
}
