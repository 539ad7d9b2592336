import { sql } from 'drizzle-orm';
import { bigint, bigserial, index, integer, jsonb, pgSequence, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Fencing values for provider fetches. A value is taken just before each fetch, so a
 * higher value means the fetch started later, across every gateway process, with no
 * trust in clocks. The guarded upsert compares them.
 */
export const fetchFence = pgSequence('payment_fetch_fence', { startWith: 1 });

export const payments = pgTable(
  'payments',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    providerPaymentId: text('provider_payment_id').notNull(),
    account: text('account').notNull().default('default'),
    status: text('status').notNull(),
    providerStatus: text('provider_status').notNull(),
    amountMinor: bigint('amount_minor', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    refundedMinor: bigint('refunded_minor', { mode: 'number' }).notNull().default(0),
    chargedBackMinor: bigint('charged_back_minor', { mode: 'number' }).notNull().default(0),
    mode: text('mode'),
    method: text('method'),
    metadata: jsonb('metadata'),
    snapshot: jsonb('snapshot').notNull(),
    /** Bumped on every real change; consumers discard events with a version they have passed. */
    version: integer('version').notNull().default(1),
    /** The fence of the fetch whose snapshot is stored (see payment_fetch_fence). */
    fence: bigint('fence', { mode: 'number' }).notNull(),
    /** The tracked fields as they were before the last change, written by the upsert itself. */
    previous: jsonb('previous'),
    providerCreatedAt: timestamp('provider_created_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    lastSyncedAt: timestamp('last_synced_at', { withTimezone: true }),
    // Poll scheduling: a payment is due when next_poll_at has passed and no live lease holds it.
    nextPollAt: timestamp('next_poll_at', { withTimezone: true }),
    pollAttempts: integer('poll_attempts').notNull().default(0),
    pollLeaseOwner: text('poll_lease_owner'),
    pollLeaseUntil: timestamp('poll_lease_until', { withTimezone: true }),
    lastPolledAt: timestamp('last_polled_at', { withTimezone: true }),
    stuckNotifiedAt: timestamp('stuck_notified_at', { withTimezone: true }),
  },
  (table) => [
    // Guarantee 1: one row per provider payment, whatever races.
    uniqueIndex('payments_provider_payment_uq').on(table.provider, table.providerPaymentId),
    // Due-poll selection scans only payments that still have a poll scheduled.
    index('payments_next_poll_idx').on(table.nextPollAt).where(sql`${table.nextPollAt} is not null`),
    // GET /v1/payments pages newest first (by id), optionally filtered.
    index('payments_provider_status_idx').on(table.provider, table.status, table.id),
    index('payments_status_idx').on(table.status, table.id),
  ],
);

export type SelectPayment = typeof payments.$inferSelect;
export type InsertPayment = typeof payments.$inferInsert;
