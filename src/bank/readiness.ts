/**
 * The bank feed's part of /readyz and the console: every connection by status, the
 * broken ones, those whose consent ends within the widest warning window, and each
 * account's last and next sync and calls left today. Informational: a broken bank
 * connection does not make the gateway unready.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import type { Env } from '../config/env.js';
import { errorMessage } from '../primitives/error-message.js';
import { bankSchedulerStatus, type BankSchedulerState } from './scheduler.js';

export interface BankReadiness {
  status: 'ok' | 'attention' | 'off' | 'unknown';
  scheduler: ReturnType<typeof bankSchedulerStatus>;
  connections: Record<string, number>;
  broken: { id: string; reference: string; reason: string | null; since: string }[];
  expiring: { id: string; reference: string; consentExpiresAt: string }[];
  accounts: { id: string; connectionId: string; status: string; lastSyncedAt: string | null; nextSyncAt: string | null; callsLeftToday: number; pausedUntil: string | null }[];
  error?: string;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());
/** Enough for a dashboard; the API lists everything. */
const MAX_LISTED = 50;

export async function readBankReadiness(deps: { db: Db; env: Env; bank: unknown; bankSchedulerState: BankSchedulerState }): Promise<BankReadiness> {
  const scheduler = bankSchedulerStatus(deps);
  const empty = { scheduler, connections: {}, broken: [], expiring: [], accounts: [] };
  if (!deps.bank) return { status: 'off', ...empty };
  try {
    const widestDays = Math.max(0, ...deps.env.BANK_EXPIRY_WARNING_DAYS);
    const [counts, broken, expiring, accounts] = await Promise.all([
      deps.db.execute<{ status: string; count: number }>(sql`select status, count(*)::int as count from bank_connections group by status`),
      deps.db.execute<{ id: string; reference: string; broken_reason: string | null; broken_at: Date | string }>(sql`
        select id, reference, broken_reason, broken_at from bank_connections
        where broken_at is not null and status not in ('deleted', 'expired') order by broken_at limit ${MAX_LISTED}`),
      deps.db.execute<{ id: string; reference: string; consent_expires_at: Date | string }>(sql`
        select id, reference, consent_expires_at from bank_connections
        where status = 'linked' and consent_expires_at <= now() + ${widestDays} * interval '1 day'
        order by consent_expires_at limit ${MAX_LISTED}`),
      deps.db.execute<{ id: string; connection_id: string; status: string; last_synced_at: Date | string | null; next_sync_at: Date | string | null; calls: number; paused_until: Date | string | null }>(sql`
        select a.id, a.connection_id, a.status, a.last_synced_at, a.next_sync_at,
          coalesce(case when b.day = (now() at time zone 'utc')::date then b.calls end, 0)::int as calls,
          case when b.paused_until > now() then b.paused_until end as paused_until
        from bank_accounts a
        join bank_connections c on c.id = a.connection_id and c.status = 'linked'
        left join bank_call_budgets b on b.account_id = a.id and b.scope = 'transactions'
        order by a.next_sync_at nulls first limit ${MAX_LISTED}`),
    ]);
    return {
      status: broken.length > 0 || expiring.length > 0 ? 'attention' : 'ok',
      scheduler,
      connections: Object.fromEntries(counts.map((row) => [row.status, Number(row.count)])),
      broken: broken.map((row) => ({ id: row.id, reference: row.reference, reason: row.broken_reason, since: iso(row.broken_at)! })),
      expiring: expiring.map((row) => ({ id: row.id, reference: row.reference, consentExpiresAt: iso(row.consent_expires_at)! })),
      accounts: accounts.map((row) => ({
        id: row.id,
        connectionId: row.connection_id,
        status: row.status,
        lastSyncedAt: iso(row.last_synced_at),
        nextSyncAt: iso(row.next_sync_at),
        callsLeftToday: Math.max(0, deps.env.BANK_DAILY_CALLS - Number(row.calls)),
        pausedUntil: iso(row.paused_until),
      })),
    };
  } catch (error) {
    return { status: 'unknown', ...empty, error: errorMessage(error) };
  }
}
