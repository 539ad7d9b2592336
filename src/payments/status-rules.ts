import { sql, type SQL } from 'drizzle-orm';
import type { ProviderName } from '../providers/types.js';

/**
 * The one place that says which snapshot may replace which. The rules are data here
 * and enforced in SQL by the guarded upsert, so they hold whichever process, lock or
 * no lock, writes.
 */

/**
 * Mollie's statuses form a lattice: open < pending < authorized < the four final ones.
 * A snapshot may move a payment up, never down, and never from one final status to another.
 */
export const MOLLIE_RANK: Readonly<Record<string, number>> = {
  open: 0,
  pending: 1,
  authorized: 2,
  paid: 3,
  canceled: 3,
  expired: 3,
  failed: 3,
};

/**
 * How each provider decides whether a fresher snapshot may replace the stored one.
 * - lattice: by status rank, and within one status by fetch fence (amounts can change).
 * - fence: GoCardless statuses are not monotonic (late failures, resubmission, chargeback
 *   reversal), so the snapshot whose fetch started later wins.
 */
export const ORDERING: Readonly<Record<ProviderName, 'lattice' | 'fence'>> = {
  mollie: 'lattice',
  gocardless: 'fence',
};

/** Statuses after which the provider will not change the payment's status again by itself. */
export const FINAL_STATUSES: Readonly<Record<ProviderName, ReadonlySet<string>>> = {
  mollie: new Set(['paid', 'canceled', 'expired', 'failed']),
  // paid_out can still fail late or be charged back; those arrive by webhook.
  gocardless: new Set(['paid_out', 'cancelled', 'customer_approval_denied', 'failed', 'charged_back']),
};

export function isFinal(provider: ProviderName, providerStatus: string): boolean {
  return FINAL_STATUSES[provider].has(providerStatus);
}

function rankSql(column: SQL): SQL {
  const cases = Object.entries(MOLLIE_RANK).map(([status, rank]) => sql`when ${status} then ${sql.raw(String(rank))}`);
  // An unknown status ranks NULL, so every comparison with it is false: unknown never wins.
  return sql`(case ${column} ${sql.join(cases, sql` `)} end)`;
}

/**
 * The WHERE of the upsert's DO UPDATE: may the proposed row (`excluded`) replace the stored
 * one (`payments`)? Per provider.
 */
export function replaceGuardSql(): SQL {
  const branches = (Object.keys(ORDERING) as ProviderName[]).map((provider) => {
    const ordering = ORDERING[provider];
    switch (ordering) {
      case 'lattice':
        return sql`when ${provider} then (
          ${rankSql(sql`excluded.status`)} > ${rankSql(sql`payments.status`)}
          or (excluded.status = payments.status and excluded.fence > payments.fence))`;
      case 'fence':
        return sql`when ${provider} then excluded.fence > payments.fence`;
      default: {
        const unreachable: never = ordering;
        throw new Error(`unknown ordering ${String(unreachable)}`);
      }
    }
  });
  return sql`(case payments.provider ${sql.join(branches, sql` `)} else false end)`;
}
