import { sql } from 'drizzle-orm';
import { bigint, date, index, pgSequence, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** Taken just before each transactions fetch: a higher value started later, in any process. */
export const bankFetchFence = pgSequence('bank_fetch_fence', { startWith: 1 });

/** The accounts a linked requisition gave access to, with their sync schedule and lease. */
export const bankAccounts = pgTable(
  'bank_accounts',
  {
    id: text('id').primaryKey(),
    connectionId: text('connection_id').notNull(),
    /** GoCardless's account id (a UUID); a re-link creates new ones. */
    externalId: text('external_id').notNull(),
    iban: text('iban'),
    ownerName: text('owner_name'),
    /** GoCardless's status: DISCOVERED | PROCESSING | READY | ERROR | SUSPENDED | EXPIRED */
    status: text('status').notNull(),
    lastSyncedAt: timestamp('last_synced_at', { withTimezone: true }),
    nextSyncAt: timestamp('next_sync_at', { withTimezone: true }),
    /** The latest booking date imported: the next sync starts BANK_OVERLAP_DAYS before it. */
    lastBookedDate: date('last_booked_date', { mode: 'string' }),
    lastError: text('last_error'),
    /** The fence of the newest answer imported; an answer fetched before it is stale (its pending list is old). */
    importFence: bigint('import_fence', { mode: 'number' }),
    leaseOwner: text('lease_owner'),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('bank_accounts_connection_external_uq').on(table.connectionId, table.externalId),
    index('bank_accounts_next_sync_idx').on(table.nextSyncAt).where(sql`${table.nextSyncAt} is not null`),
  ],
);

export type SelectBankAccount = typeof bankAccounts.$inferSelect;
