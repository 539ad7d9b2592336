import type { ProviderName } from '../providers/types.js';

/**
 * Which refund or chargeback state may replace which. A refund only moves forward:
 * each provider status has a rank, and a stored item is replaced only by a higher rank
 * (or, at the same status, by a later-started fetch that corrects its amount). So an
 * older snapshot, fetched before the refund moved on and written after, changes
 * nothing. Statuses that exclude each other share a rank and never replace each other: a
 * refund once `refunded` is not turned `canceled` by a snapshot that happens to be written
 * later. A later failure (Mollie `failed` after `refunded`, GoCardless `bounced` after `paid`)
 * ranks above the success it undoes.
 */

export type AdjustmentKind = 'refund' | 'chargeback';

const RANKS: Record<ProviderName, Record<AdjustmentKind, Readonly<Record<string, number>>>> = {
  mollie: {
    // queued → pending → processing → refunded; queued and pending may be canceled; a refund
    // can still fail after it was refunded (the customer's account closed: the money comes back).
    refund: { queued: 1, pending: 2, processing: 3, canceled: 4, refunded: 4, failed: 5 },
    chargeback: { received: 1, reversed: 2 },
  },
  gocardless: {
    // created → pending_submission → submitted → paid; cancelled before submission; bounced
    // or funds_returned after it (docs/providers.md, GoCardless refund statuses).
    refund: { created: 1, pending_submission: 2, submitted: 3, paid: 4, cancelled: 5, bounced: 5, funds_returned: 5 },
    chargeback: { received: 1, reversed: 2 },
  },
};

/** The rank of a provider status; undefined for a status this gateway does not know. */
export function adjustmentRank(provider: ProviderName, kind: AdjustmentKind, providerStatus: string): number | undefined {
  const ranks = RANKS[provider][kind];
  return Object.hasOwn(ranks, providerStatus) ? ranks[providerStatus] : undefined;
}

/** Whether `next` may replace `stored` (pure; the SQL guard in write-statements.ts says the same). */
export function mayReplaceAdjustment(
  stored: { rank: number; providerStatus: string; fence: number; amountMinor: number; currency: string },
  next: { rank: number; providerStatus: string; fence: number; amountMinor: number; currency: string },
): boolean {
  if (next.rank !== stored.rank) return next.rank > stored.rank;
  return (
    next.providerStatus === stored.providerStatus &&
    next.fence > stored.fence &&
    (next.amountMinor !== stored.amountMinor || next.currency !== stored.currency)
  );
}
