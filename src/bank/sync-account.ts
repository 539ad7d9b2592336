/**
 * Syncs one bank account: its status first (GoCardless's own record, no bank call),
 * then, within the bank's daily limit, its transactions from the last booked date
 * minus BANK_OVERLAP_DAYS. Every trigger (the scheduler, POST .../sync) ends here.
 */
import { sql } from 'drizzle-orm';
import { errorMessage } from '../primitives/error-message.js';
import { BankApiError } from '../providers/gocardless-bank/client.js';
import { accountIsBroken, toImportRows } from '../providers/gocardless-bank/mapping.js';
import { ACCOUNT_STATUSES, type AccountStatus } from '../providers/gocardless-bank/schemas.js';
import { pauseBankScope, reserveBankCall, returnBankCall } from './call-budget.js';
import { markConnectionBroken, markConnectionRecovered, type BrokenReason } from './connection-health.js';
import { requireBank, type BankDeps } from './connections.js';
import { importTransactions, type ImportResult } from './import-transactions.js';

export interface SyncTarget {
  id: string;
  connection_id: string;
  external_id: string;
  last_booked_date: string | null;
  reference: string;
}

export type SyncOutcome =
  | { outcome: 'synced'; result: ImportResult }
  | { outcome: 'limited'; until: Date }
  | { outcome: 'broken'; reason: BrokenReason }
  | { outcome: 'failed'; error: string; retryAfterMs?: number };

/** After a failure that is not the bank's limit: look again soon, but never sooner than this. */
const RETRY_AFTER_FAILURE_MS = 300_000;

const isAccountStatus = (value: string): value is AccountStatus => (ACCOUNT_STATUSES as readonly string[]).includes(value);

function brokenReasonFor(status: AccountStatus): BrokenReason {
  return status === 'SUSPENDED' ? 'account_suspended' : status === 'EXPIRED' ? 'account_expired' : 'account_error';
}

export async function syncBankAccount(deps: BankDeps, account: SyncTarget): Promise<SyncOutcome> {
  const client = requireBank(deps);
  const env = deps.env;
  const schedule = (ms: number, error: string | null) =>
    deps.db.execute(sql`
      update bank_accounts set next_sync_at = now() + ${ms} * interval '1 millisecond', last_error = ${error}
      where id = ${account.id} and next_sync_at is not null`);

  let status: string;
  try {
    const metadata = await client.getAccount(account.external_id);
    status = metadata.status;
    await deps.db.execute(sql`
      update bank_accounts set status = ${metadata.status}, iban = coalesce(${metadata.iban ?? null}, iban), owner_name = coalesce(${metadata.owner_name ?? null}, owner_name)
      where id = ${account.id} and (status <> ${metadata.status} or iban is distinct from coalesce(${metadata.iban ?? null}, iban))`);
  } catch (error) {
    return failed(error);
  }
  if (isAccountStatus(status) && accountIsBroken(status)) {
    // Not retried: GoCardless suspends an account after repeated failed access; it needs a new requisition.
    const reason = brokenReasonFor(status);
    await deps.db.transaction(async (tx) => {
      await tx.execute(sql`update bank_accounts set next_sync_at = null, last_error = ${`account ${status}`} where id = ${account.id}`);
      await markConnectionBroken(tx, account.connection_id, reason, { accountId: account.id, message: `account ${status}` });
    });
    return { outcome: 'broken', reason };
  }

  const reservation = await reserveBankCall(deps.db, account.id, 'transactions', env.BANK_DAILY_CALLS);
  if (!reservation.ok) {
    await deps.db.execute(sql`update bank_accounts set next_sync_at = greatest(next_sync_at, ${reservation.until.toISOString()}::timestamptz) where id = ${account.id} and next_sync_at is not null`);
    return { outcome: 'limited', until: reservation.until };
  }
  const dateFrom = account.last_booked_date ? new Date(Date.parse(account.last_booked_date) - env.BANK_OVERLAP_DAYS * 86_400_000).toISOString().slice(0, 10) : undefined;
  const [fenceRow] = await deps.db.execute<{ fence: number }>(sql`select nextval('bank_fetch_fence')::bigint as fence`);
  let answer;
  try {
    answer = (await client.getTransactions(account.external_id, { dateFrom })).data;
  } catch (error) {
    await returnBankCall(deps.db, account.id, 'transactions', reservation.day);
    if (error instanceof BankApiError && error.kind === 'daily_limit') {
      // The bank's own count disagrees with ours (another client, a shorter day): wait for its reset. Not an error streak.
      const until = new Date(Date.now() + (error.retryAfterMs ?? 3_600_000));
      await pauseBankScope(deps.db, account.id, 'transactions', until);
      await deps.db.execute(sql`update bank_accounts set next_sync_at = ${until.toISOString()}::timestamptz where id = ${account.id} and next_sync_at is not null`);
      return { outcome: 'limited', until };
    }
    return failed(error);
  }

  const booked = toImportRows(answer.transactions.booked, 'booked');
  const pending = toImportRows(answer.transactions.pending, 'pending');
  const result = await importTransactions(
    deps.db,
    { accountId: account.id, connectionId: account.connection_id, reference: account.reference },
    { booked, pending, raw: { booked: answer.transactions.booked, pending: answer.transactions.pending }, graceMs: env.BANK_PENDING_GRACE_MS, fence: Number(fenceRow!.fence) },
    async (tx, imported) => {
      await tx.execute(sql`
        update bank_accounts set last_synced_at = now(), last_error = null,
          next_sync_at = case when next_sync_at is null then null else now() + ${env.BANK_SYNC_INTERVAL_MS} * interval '1 millisecond' end,
          last_booked_date = greatest(last_booked_date, ${imported.lastBookedDate}::date)
        where id = ${account.id}`);
      await markConnectionRecovered(tx, account.connection_id);
    },
  );
  return { outcome: 'synced', result };

  async function failed(error: unknown): Promise<SyncOutcome> {
    const message = errorMessage(error);
    if (error instanceof BankApiError && (error.kind === 'access_refused' || error.kind === 'not_found')) {
      await schedule(env.BANK_SYNC_INTERVAL_MS, message);
      await deps.db.transaction((tx) => markConnectionBroken(tx, account.connection_id, 'access_refused', { accountId: account.id, message }));
      return { outcome: 'broken', reason: 'access_refused' };
    }
    const retryAfterMs = error instanceof BankApiError ? error.retryAfterMs : undefined;
    await schedule(Math.min(env.BANK_SYNC_INTERVAL_MS, Math.max(retryAfterMs ?? 0, RETRY_AFTER_FAILURE_MS)), message);
    deps.logger.warn({ job: 'bank', accountId: account.id, err: message }, 'bank account sync failed');
    return { outcome: 'failed', error: message, retryAfterMs };
  }
}
