import type { SelectPayment } from '../db/schema/payments.js';
import type { PaymentStatus, ProviderName } from '../providers/types.js';
import { formatMinorUnits } from '../money.js';

function money(minor: number, currency: string) {
  return { value: formatMinorUnits(minor, currency), currency, minor };
}

/** The public JSON shape of a payment (DESIGN.md, public contract). */
export function toPaymentJson(row: SelectPayment) {
  return {
    // The columns are text; the upsert only ever writes these values.
    provider: row.provider as ProviderName,
    id: row.providerPaymentId,
    account: row.account,
    status: row.status as PaymentStatus,
    providerStatus: row.providerStatus,
    amount: money(row.amountMinor, row.currency),
    amountRefunded: money(row.refundedMinor, row.currency),
    amountChargedBack: money(row.chargedBackMinor, row.currency),
    mode: row.mode,
    method: row.method,
    metadata: row.metadata,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    lastSyncedAt: row.lastSyncedAt?.toISOString() ?? null,
    providerCreatedAt: row.providerCreatedAt?.toISOString() ?? null,
    nextPollAt: row.nextPollAt?.toISOString() ?? null,
  };
}

export type PaymentJson = ReturnType<typeof toPaymentJson>;
