/** The public JSON of bank connections, accounts and transactions. */
import { formatMinorUnits } from '../money.js';
import type { AccountRow, ConnectionRow, TransactionRow } from './queries.js';

const isoOrNull = (value: Date | string | null | undefined) => (value === null || value === undefined ? null : new Date(value).toISOString());

export function toBankAccountJson(row: AccountRow) {
  return {
    id: row.id,
    externalId: row.external_id,
    iban: row.iban,
    ownerName: row.owner_name,
    status: row.status,
    lastSyncedAt: isoOrNull(row.last_synced_at),
    nextSyncAt: isoOrNull(row.next_sync_at),
    rateLimitedUntil: isoOrNull(row.rate_limited_until),
    callsToday: Number(row.calls_today ?? 0),
    lastError: row.last_error,
  };
}

export function toBankConnectionJson(row: ConnectionRow, accounts: AccountRow[]) {
  return {
    id: row.id,
    reference: row.reference,
    institutionId: row.institution_id,
    status: row.status,
    link: row.link,
    requisitionId: row.requisition_id,
    accounts: accounts.filter((account) => account.connection_id === row.id).map(toBankAccountJson),
    consentExpiresAt: isoOrNull(row.consent_expires_at),
    broken: row.broken_at ? { since: isoOrNull(row.broken_at), reason: row.broken_reason } : null,
    createdAt: isoOrNull(row.created_at),
  };
}

export type BankConnectionJson = ReturnType<typeof toBankConnectionJson>;

export function toBankTransactionJson(row: TransactionRow) {
  return {
    id: `btx_${row.id}`,
    connectionId: row.connection_id,
    accountId: row.account_id,
    status: row.status,
    transactionId: row.transaction_id,
    internalTransactionId: row.internal_transaction_id,
    bookingDate: row.booking_date,
    valueDate: row.value_date,
    amount: { value: formatMinorUnits(Number(row.amount_minor), row.currency), currency: row.currency },
    counterparty: row.counterparty,
    remittance: row.remittance,
    ...(row.pending_of ? { pendingOf: row.pending_of } : {}),
    firstSeenAt: isoOrNull(row.first_seen_at),
  };
}
