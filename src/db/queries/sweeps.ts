import { sql, type SQL } from 'drizzle-orm';
import type { TrackedState } from '../../events/payment-events.js';
import type { PaymentStatus } from '../../providers/types.js';
import type { DbOrTx } from '../client.js';

/** The tracked fields of stored payments, by provider payment id; missing ids are not stored. */
export async function getTrackedStates(db: DbOrTx, provider: string, providerPaymentIds: string[]): Promise<Map<string, TrackedState>> {
  if (providerPaymentIds.length === 0) return new Map();
  const rows = await db.execute<{
    provider_payment_id: string;
    status: string;
    provider_status: string;
    amount_minor: number;
    currency: string;
    refunded_minor: number;
    charged_back_minor: number;
  }>(sql`
    select provider_payment_id, status, provider_status, amount_minor, currency, refunded_minor, charged_back_minor
    from payments
    where provider = ${provider}
      and provider_payment_id in (select jsonb_array_elements_text(${JSON.stringify(providerPaymentIds)}::jsonb))`);
  return new Map(
    rows.map((row) => [
      row.provider_payment_id,
      {
        status: row.status as PaymentStatus,
        providerStatus: row.provider_status,
        amountMinor: Number(row.amount_minor),
        currency: row.currency,
        refundedMinor: Number(row.refunded_minor),
        chargedBackMinor: Number(row.charged_back_minor),
      },
    ]),
  );
}

export interface SweepClaim {
  /** The database's clock when the run was claimed: the run's start, and its watermark once complete. */
  startedAt: Date;
  /** The start of the last run that completed, if any. */
  watermark: Date | null;
}

/**
 * Claims the next run of a periodic sweep for the whole fleet. The row in
 * provider_cursors carries `nextRunAt`; the conditional upsert moves it forward and
 * returns the row only to the one process whose statement found it due, so N gateway
 * processes sweep once per interval, not N times.
 */
export async function claimSweepRun(
  db: DbOrTx,
  params: { provider: string; account: string; name: string; intervalMs: number },
): Promise<SweepClaim | null> {
  const next = sql`now() + make_interval(secs => ${params.intervalMs / 1000})`;
  const rows = await db.execute<{ cursor: string | null; started_at: string | Date }>(sql`
    insert into provider_cursors as c (provider, account, name, cursor, state, updated_at)
    values (${params.provider}, ${params.account}, ${params.name}, null, jsonb_build_object('nextRunAt', ${next}), now())
    on conflict (provider, account, name) do update
      set state = coalesce(c.state, '{}'::jsonb) || jsonb_build_object('nextRunAt', ${next}),
          updated_at = now()
      where coalesce((c.state->>'nextRunAt')::timestamptz, '-infinity'::timestamptz) <= now()
    returning c.cursor, now() as started_at`);
  const row = rows[0];
  if (!row) return null;
  return { startedAt: new Date(row.started_at), watermark: row.cursor ? new Date(row.cursor) : null };
}

/**
 * Records a run's summary; when the run completed, moves the watermark forward (never back,
 * should an older run finish after a newer one).
 */
export async function recordSweepRun(
  db: DbOrTx,
  params: { provider: string; account: string; name: string; completedFrom: Date | null; summary: Record<string, unknown> },
): Promise<void> {
  const completed = params.completedFrom?.toISOString() ?? null;
  await db.execute(sql`
    update provider_cursors
    set cursor = case
          when ${completed}::timestamptz is null then cursor
          when cursor is null or cursor::timestamptz < ${completed}::timestamptz then ${completed}
          else cursor end,
        state = coalesce(state, '{}'::jsonb) || jsonb_build_object('lastRun', ${JSON.stringify(params.summary)}::jsonb),
        updated_at = now()
    where provider = ${params.provider} and account = ${params.account} and name = ${params.name}`);
}

/**
 * The provider's active stored accounts whose periodic job is due, the least recently
 * visited first: for a bounded step (a Workers cron run) that cannot visit every account
 * each time. `due` is
 * the job's rule over its cursor row `c` (absent for an account never visited).
 */
export async function dueStoredAccounts(db: DbOrTx, params: { provider: string; cursorName: string; due: SQL; limit: number }): Promise<string[]> {
  const rows = await db.execute<{ name: string }>(sql`
    select a.name from accounts a
    left join provider_cursors c on c.provider = a.provider and c.account = a.name and c.name = ${params.cursorName}
    where a.provider = ${params.provider} and a.status = 'active' and (${params.due})
    order by c.updated_at nulls first, a.id
    limit ${params.limit}`);
  return rows.map((row) => row.name);
}

/** A sweep is due when its claim's nextRunAt has passed (or it never ran). */
export const sweepDue = sql`coalesce((c.state->>'nextRunAt')::timestamptz, '-infinity'::timestamptz) <= now()`;
