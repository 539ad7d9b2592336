/**
 * The banks' limit: at most BANK_DAILY_CALLS successful calls per account and scope
 * per UTC day, across every gateway process. A call reserves its slot with one guarded
 * upsert before it is made (the row's lock serialises processes, the WHERE refuses a
 * full day or a paused scope) and gives it back when it did not succeed.
 */
import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';

export type BankScope = 'transactions' | 'details' | 'balances';

export type Reservation = { ok: true; day: string } | { ok: false; until: Date };

export async function reserveBankCall(db: DbOrTx, accountId: string, scope: BankScope, dailyCalls: number): Promise<Reservation> {
  const [row] = await db.execute<{ day: string }>(sql`
    insert into bank_call_budgets as b (account_id, scope, day, calls)
    values (${accountId}, ${scope}, (now() at time zone 'utc')::date, 1)
    on conflict (account_id, scope) do update set
      calls = case when b.day = excluded.day then b.calls + 1 else 1 end,
      day = excluded.day
    where (b.day <> excluded.day or b.calls < ${dailyCalls})
      and (b.paused_until is null or b.paused_until <= now())
    returning to_char(day, 'YYYY-MM-DD') as day`);
  if (row) return { ok: true, day: row.day };
  const [state] = await db.execute<{ until: Date | string }>(sql`
    select greatest(coalesce(paused_until, now()),
      case when day = (now() at time zone 'utc')::date and calls >= ${dailyCalls}
        then (((now() at time zone 'utc')::date + 1)::timestamp at time zone 'utc') else now() end) as until
    from bank_call_budgets where account_id = ${accountId} and scope = ${scope}`);
  return { ok: false, until: new Date(state?.until ?? Date.now() + 60_000) };
}

/** The call failed: banks count only successful calls, so neither do we. */
export async function returnBankCall(db: DbOrTx, accountId: string, scope: BankScope, day: string): Promise<void> {
  await db.execute(sql`
    update bank_call_budgets set calls = greatest(calls - 1, 0)
    where account_id = ${accountId} and scope = ${scope} and day = ${day}::date`);
}

/** The bank said its daily limit is spent: no call on this scope until its reset. */
export async function pauseBankScope(db: DbOrTx, accountId: string, scope: BankScope, until: Date): Promise<void> {
  await db.execute(sql`
    update bank_call_budgets set paused_until = greatest(coalesce(paused_until, ${until.toISOString()}::timestamptz), ${until.toISOString()}::timestamptz)
    where account_id = ${accountId} and scope = ${scope}`);
}
