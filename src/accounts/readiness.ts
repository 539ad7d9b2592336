/**
 * The stored accounts' part of /readyz: how many by provider and status, and which are
 * broken (names capped). Informational, like the poller's and the bank feed's: a broken
 * merchant account does not make the gateway unready, it still serves every other one.
 * No provider message here: the reason and detail are in the console and /v1/accounts,
 * behind the admin token.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { withTimeout } from '../poller/readiness.js';

/** Enough for a dashboard; GET /v1/accounts?status=broken lists every one. */
export const READINESS_BROKEN_LISTED = 20;

export interface AccountsReadiness {
  /** attention: at least one stored account is broken; unknown: the table could not be read. */
  status: 'ok' | 'attention' | 'unknown';
  /** Per provider, per status. */
  counts: Record<string, Record<string, number>>;
  broken: { count: number; accounts: Array<{ provider: string; name: string; since: string | null }> };
  error?: string;
}

export async function readAccountsReadiness(db: Db): Promise<AccountsReadiness> {
  try {
    const [counts, broken] = await withTimeout(
      Promise.all([
        db.execute<{ provider: string; status: string; count: number }>(sql`select provider, status, count(*)::int as count from accounts group by provider, status order by provider, status`),
        db.execute<{ provider: string; name: string; broken_since: Date | string | null }>(sql`
          select provider, name, broken_since from accounts where status = 'broken'
          order by broken_since nulls last, provider, name limit ${READINESS_BROKEN_LISTED}`),
      ]),
    );
    const byProvider: AccountsReadiness['counts'] = {};
    let brokenCount = 0;
    for (const row of counts) {
      (byProvider[row.provider] ??= {})[row.status] = Number(row.count);
      if (row.status === 'broken') brokenCount += Number(row.count);
    }
    return {
      status: brokenCount > 0 ? 'attention' : 'ok',
      counts: byProvider,
      broken: {
        count: brokenCount,
        accounts: broken.map((row) => ({ provider: row.provider, name: row.name, since: row.broken_since === null ? null : new Date(row.broken_since).toISOString() })),
      },
    };
  } catch (error) {
    // A code, never the message (it can carry the statement), as for the poller.
    const code = (error as { code?: unknown }).code;
    return { status: 'unknown', counts: {}, broken: { count: 0, accounts: [] }, error: typeof code === 'string' ? code : error instanceof Error && error.message.startsWith('no answer in') ? 'timeout' : 'unavailable' };
  }
}
