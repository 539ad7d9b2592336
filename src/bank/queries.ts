/** Plain queries over the bank tables: `(db, params)`, no business rules. */
import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';

export interface ConnectionRow {
  id: string;
  reference: string;
  institution_id: string;
  redirect_url: string;
  max_historical_days: number;
  access_valid_for_days: number;
  status: string;
  agreement_id: string | null;
  requisition_id: string | null;
  requisition_status: string | null;
  link: string | null;
  creating_owner: string | null;
  creating_until: Date | string | null;
  consent_accepted_at: Date | string | null;
  consent_expires_at: Date | string | null;
  expiry_warned_days: number | null;
  broken_at: Date | string | null;
  broken_reason: string | null;
  next_check_at: Date | string | null;
  check_attempts: number;
  created_at: Date | string;
  updated_at: Date | string;
  [key: string]: unknown;
}

export interface AccountRow {
  id: string;
  connection_id: string;
  external_id: string;
  iban: string | null;
  owner_name: string | null;
  status: string;
  last_synced_at: Date | string | null;
  next_sync_at: Date | string | null;
  last_booked_date: string | null;
  last_error: string | null;
  rate_limited_until: Date | string | null;
  calls_today: number;
  [key: string]: unknown;
}

export interface TransactionRow {
  id: number;
  account_id: string;
  connection_id: string;
  status: string;
  dedupe_key: string;
  transaction_id: string | null;
  internal_transaction_id: string | null;
  booking_date: string | null;
  value_date: string | null;
  amount_minor: number;
  currency: string;
  counterparty: string | null;
  remittance: string | null;
  pending_of: string | null;
  first_seen_at: Date | string;
  [key: string]: unknown;
}

export async function getConnection(db: DbOrTx, id: string): Promise<ConnectionRow | undefined> {
  const [row] = await db.execute<ConnectionRow>(sql`select * from bank_connections where id = ${id}`);
  return row;
}

/** The live connection holding a reference (at most one: bank_connections_live_reference_uq). */
export async function getLiveConnectionByReference(db: DbOrTx, reference: string): Promise<ConnectionRow | undefined> {
  const [row] = await db.execute<ConnectionRow>(sql`
    select * from bank_connections
    where reference = ${reference} and status not in ('expired', 'rejected', 'deleted', 'abandoned')`);
  return row;
}

export async function listConnections(
  db: DbOrTx,
  params: { reference?: string; status?: string; beforeId?: string; limit: number },
): Promise<ConnectionRow[]> {
  return db.execute<ConnectionRow>(sql`
    select * from bank_connections
    where true
      ${params.reference ? sql`and reference = ${params.reference}` : sql``}
      ${params.status ? sql`and status = ${params.status}` : sql``}
      ${params.beforeId ? sql`and id < ${params.beforeId}` : sql``}
    order by id desc
    limit ${params.limit}`);
}

/** Accounts with their transactions-scope budget: calls made today and any pause a bank's 429 set. */
export async function listAccounts(db: DbOrTx, connectionIds: string[], dailyCalls: number): Promise<AccountRow[]> {
  if (connectionIds.length === 0) return [];
  return db.execute<AccountRow>(sql`
    select a.id, a.connection_id, a.external_id, a.iban, a.owner_name, a.status, a.last_synced_at, a.next_sync_at,
      a.last_booked_date, a.last_error,
      case
        when b.paused_until > now() then b.paused_until
        when b.day = (now() at time zone 'utc')::date and b.calls >= ${dailyCalls}
          then (((now() at time zone 'utc')::date + 1)::timestamp at time zone 'utc')
      end as rate_limited_until,
      coalesce(case when b.day = (now() at time zone 'utc')::date then b.calls end, 0)::int as calls_today
    from bank_accounts a
    left join bank_call_budgets b on b.account_id = a.id and b.scope = 'transactions'
    where a.connection_id = any(${`{${connectionIds.join(',')}}`}::text[])
    order by a.connection_id, a.created_at, a.id`);
}

export async function listTransactions(
  db: DbOrTx,
  params: { connectionId?: string; accountId?: string; status?: string; afterId?: number; limit: number },
): Promise<TransactionRow[]> {
  return db.execute<TransactionRow>(sql`
    select id, account_id, connection_id, status, dedupe_key, transaction_id, internal_transaction_id, booking_date, value_date,
      amount_minor, currency, counterparty, remittance, pending_of, first_seen_at
    from bank_transactions
    where true
      ${params.connectionId ? sql`and connection_id = ${params.connectionId}` : sql``}
      ${params.accountId ? sql`and account_id = ${params.accountId}` : sql``}
      ${params.status ? sql`and status = ${params.status}` : sql``}
      ${params.afterId !== undefined ? sql`and id > ${params.afterId}` : sql``}
    order by id
    limit ${params.limit}`);
}
