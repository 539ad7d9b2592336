import { sql } from 'drizzle-orm';
import { bigint, bigserial, date, index, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Imported bank transactions. `dedupe_key` is what makes a row exactly-once:
 * `i:<internalTransactionId>` for booked rows (GoCardless gives one for every bank,
 * unique within an account), else `t:<transactionId>`, else `f:<fingerprint>`;
 * pending rows are `p:<fingerprint>` because banks re-issue them under new ids.
 * A pending row that a booked transaction settles becomes that booked row (pending_of
 * keeps what it was): one row per real transaction.
 */
export const bankTransactions = pgTable(
  'bank_transactions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    accountId: text('account_id').notNull(),
    connectionId: text('connection_id').notNull(),
    /** pending | booked | removed */
    status: text('status').notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    transactionId: text('transaction_id'),
    internalTransactionId: text('internal_transaction_id'),
    bookingDate: date('booking_date', { mode: 'string' }),
    valueDate: date('value_date', { mode: 'string' }),
    amountMinor: bigint('amount_minor', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    counterparty: text('counterparty'),
    remittance: text('remittance'),
    /** On a booked row that settled a pending one: the pending one's key. */
    pendingOf: text('pending_of'),
    /** A pending row absent from the bank's answers since then; removed after BANK_PENDING_GRACE_MS. */
    missingSince: timestamp('missing_since', { withTimezone: true }),
    raw: text('raw'),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('bank_transactions_account_key_uq').on(table.accountId, table.dedupeKey),
    uniqueIndex('bank_transactions_account_internal_uq')
      .on(table.accountId, table.internalTransactionId)
      .where(sql`${table.internalTransactionId} is not null`),
    index('bank_transactions_pending_idx').on(table.accountId).where(sql`${table.status} = 'pending'`),
    index('bank_transactions_connection_idx').on(table.connectionId, table.id),
  ],
);

export type SelectBankTransaction = typeof bankTransactions.$inferSelect;
