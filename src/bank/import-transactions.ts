/**
 * Imports one answer of an account's transactions endpoint, in one database
 * transaction. The rules, each enforced where it cannot be raced:
 *
 * - booked: INSERT ... ON CONFLICT DO NOTHING on (account, dedupe_key) and (account,
 *   internal_transaction_id): a booked transaction seen by any number of syncs is one row;
 * - a new booked row that settles a pending one no longer listed (same amount and
 *   currency, close dates, agreeing counterparty or remittance) takes that pending row's
 *   place: the pending row turns booked (pending_of says what it was), no second row;
 * - pending rows are keyed by content, not by the bank's id, because banks re-issue
 *   them under new ids; one missing from the answer for BANK_PENDING_GRACE_MS is removed.
 *
 * Imports of one account are serialised by a transaction-scoped advisory lock, so two
 * processes syncing the same account at once (a manual sync beside the scheduler) see
 * each other's rows; the unique indexes stay the last word either way.
 */
import { sql } from 'drizzle-orm';
import type { Db, DbOrTx } from '../db/client.js';
import { enqueueEvents, type NewOutboxEvent } from '../events/outbox.js';
import { settles, type ImportRow } from '../providers/gocardless-bank/mapping.js';
import type { TransactionRow } from './queries.js';
import { toBankTransactionJson } from './view.js';

export interface ImportTarget {
  accountId: string;
  connectionId: string;
  reference: string;
}

export interface ImportResult {
  booked: number;
  pending: number;
  settled: number;
  removed: number;
  lastBookedDate: string | null;
  /** The answer was older than one already imported: only its new booked rows were added. */
  stale: boolean;
}

const RETURNED = sql.raw(`id, account_id, connection_id, status, dedupe_key, transaction_id, internal_transaction_id,
  to_char(booking_date, 'YYYY-MM-DD') as booking_date, to_char(value_date, 'YYYY-MM-DD') as value_date,
  amount_minor, currency, counterparty, remittance, pending_of, first_seen_at`);

const RECORD = sql.raw(`r(dedupe_key text, transaction_id text, internal_transaction_id text, booking_date date, value_date date,
  amount_minor bigint, currency text, counterparty text, remittance text, raw text)`);

function toRecord(row: ImportRow, raw: unknown) {
  return {
    dedupe_key: row.dedupeKey,
    transaction_id: row.transactionId,
    internal_transaction_id: row.internalTransactionId,
    booking_date: row.bookingDate,
    value_date: row.valueDate,
    amount_minor: row.amountMinor,
    currency: row.currency,
    counterparty: row.counterparty,
    remittance: row.remittance,
    raw: JSON.stringify(raw),
  };
}

interface StoredPending {
  id: number;
  dedupe_key: string;
  amount_minor: number;
  currency: string;
  date: string | null;
  counterparty: string | null;
  remittance: string | null;
  [key: string]: unknown;
}

export async function importTransactions(
  db: Db,
  target: ImportTarget,
  input: {
    booked: ImportRow[];
    pending: ImportRow[];
    raw: { booked: unknown[]; pending: unknown[] };
    graceMs: number;
    /** Taken just before the fetch (bank_fetch_fence). */
    fence: number;
  },
  /** Runs inside the import's transaction, after the rows: the account's schedule commits with them. */
  within?: (tx: DbOrTx, result: ImportResult) => Promise<void>,
): Promise<ImportResult> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`bank_account:${target.accountId}`}, 0))`);
    const events: NewOutboxEvent[] = [];
    const announce = (row: TransactionRow, type: 'pending' | 'booked' | 'removed') =>
      events.push({
        type: `bank.transaction.${type}`,
        // The row id and the status it reached: a row is pending, booked and removed at most once each.
        dedupeKey: `bank:transaction:${row.id}:${type}`,
        data: { ...toBankTransactionJson({ ...row, status: type }), reference: target.reference },
      });

    // An answer fetched before the newest one imported has an old pending list: importing
    // it would bring back pending rows a newer answer had already settled. Its booked rows
    // are still safe to add (the unique indexes make them no-ops when already there).
    const [current] = await tx.execute<{ id: string }>(sql`
      update bank_accounts set import_fence = ${input.fence}
      where id = ${target.accountId} and (import_fence is null or import_fence < ${input.fence})
      returning id`);
    const stale = !current;

    const stored = stale ? [] : await tx.execute<StoredPending>(sql`
      select id, dedupe_key, amount_minor, currency, to_char(coalesce(booking_date, value_date), 'YYYY-MM-DD') as date, counterparty, remittance
      from bank_transactions where account_id = ${target.accountId} and status = 'pending'
      order by id`);
    const listed = new Set(input.pending.map((row) => row.dedupeKey));
    // A pending row still listed as pending is not settled yet, whatever else was booked.
    const absent = stored.filter((row) => !listed.has(row.dedupe_key));

    // Booked rows: the unique indexes pick out the ones never seen before.
    const insertedBooked = input.booked.length
      ? await tx.execute<TransactionRow>(sql`
          insert into bank_transactions (account_id, connection_id, status, dedupe_key, transaction_id, internal_transaction_id,
            booking_date, value_date, amount_minor, currency, counterparty, remittance, raw)
          select ${target.accountId}, ${target.connectionId}, 'booked', r.dedupe_key, r.transaction_id, r.internal_transaction_id,
            r.booking_date, r.value_date, r.amount_minor, r.currency, r.counterparty, r.remittance, r.raw
          from jsonb_to_recordset(${JSON.stringify(input.booked.map((row, i) => toRecord(row, input.raw.booked[i])))}::jsonb) as ${RECORD}
          on conflict do nothing
          returning ${RETURNED}`)
      : [];

    const byKey = new Map(input.booked.map((row) => [row.dedupeKey, row]));
    const used = new Set<number>();
    let settled = 0;
    for (const row of [...insertedBooked].sort((a, b) => (a.booking_date ?? '').localeCompare(b.booking_date ?? '') || a.id - b.id)) {
      const booked = byKey.get(row.dedupe_key)!;
      const match = absent.find((pending) => !used.has(pending.id) && settles(booked, { amountMinor: Number(pending.amount_minor), currency: pending.currency, date: pending.date, counterparty: pending.counterparty, remittance: pending.remittance }));
      if (!match) {
        announce(row, 'booked');
        continue;
      }
      used.add(match.id);
      // The pending row becomes the booked one; the row just inserted for it goes.
      await tx.execute(sql`delete from bank_transactions where id = ${row.id}`);
      const [merged] = await tx.execute<TransactionRow>(sql`
        update bank_transactions set status = 'booked', dedupe_key = ${row.dedupe_key}, pending_of = coalesce(transaction_id, dedupe_key),
          transaction_id = ${row.transaction_id}, internal_transaction_id = ${row.internal_transaction_id},
          booking_date = ${row.booking_date}::date, value_date = coalesce(${row.value_date}::date, value_date),
          counterparty = coalesce(${row.counterparty}, counterparty), remittance = coalesce(${row.remittance}, remittance),
          raw = (select raw from jsonb_to_recordset(${JSON.stringify([toRecord(booked, input.raw.booked[input.booked.indexOf(booked)])])}::jsonb) as ${RECORD}),
          missing_since = null, updated_at = now()
        where id = ${match.id} and status = 'pending'
        returning ${RETURNED}`);
      if (merged) {
        settled++;
        announce(merged, 'booked');
      }
    }

    // Pending rows: new ones inserted; a listed one that had gone missing is simply back.
    const upserted = input.pending.length && !stale
      ? await tx.execute<TransactionRow & { inserted: boolean }>(sql`
          insert into bank_transactions (account_id, connection_id, status, dedupe_key, transaction_id, internal_transaction_id,
            booking_date, value_date, amount_minor, currency, counterparty, remittance, raw)
          select ${target.accountId}, ${target.connectionId}, 'pending', r.dedupe_key, r.transaction_id, null,
            r.booking_date, r.value_date, r.amount_minor, r.currency, r.counterparty, r.remittance, r.raw
          from jsonb_to_recordset(${JSON.stringify(input.pending.map((row, i) => toRecord(row, input.raw.pending[i])))}::jsonb) as ${RECORD}
          on conflict (account_id, dedupe_key) do update set missing_since = null, updated_at = now()
          where bank_transactions.missing_since is not null
          returning ${RETURNED}, (xmax = 0) as inserted`)
      : [];
    const newPending = upserted.filter((row) => row.inserted);
    for (const row of newPending) announce(row, 'pending');

    // Missing pending rows: start their grace, and remove those whose grace has passed.
    let removed = 0;
    const missing = stale ? [] : absent.filter((row) => !used.has(row.id)).map((row) => row.id);
    if (missing.length > 0) {
      const ids = `{${missing.join(',')}}`;
      await tx.execute(sql`update bank_transactions set missing_since = now() where id = any(${ids}::bigint[]) and missing_since is null`);
      const gone = await tx.execute<TransactionRow>(sql`
        update bank_transactions set status = 'removed', updated_at = now(),
          -- Frees the content key: the same pending transaction appearing again later is a new row.
          dedupe_key = 'removed:' || id || ':' || dedupe_key
        where id = any(${ids}::bigint[]) and status = 'pending'
          and missing_since <= now() - ${input.graceMs} * interval '1 millisecond'
        returning ${RETURNED}`);
      removed = gone.length;
      for (const row of gone) announce(row, 'removed');
    }

    await enqueueEvents(tx, events);
    const lastBookedDate = input.booked.reduce<string | null>((max, row) => (row.bookingDate && (!max || row.bookingDate > max) ? row.bookingDate : max), null);
    const result = { booked: insertedBooked.length, pending: newPending.length, settled, removed, lastBookedDate, stale };
    await within?.(tx, result);
    return result;
  });
}
