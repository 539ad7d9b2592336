import { sql } from 'drizzle-orm';
import { doublePrecision, index, integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Bank connections: one GoCardless requisition (and its end-user agreement) each.
 * `reference` is the caller's key: the partial unique index lets one live connection
 * exist per reference, so concurrent creations collapse onto one row and one
 * requisition; an expired, rejected or deleted one frees the reference for a new one.
 */
export const bankConnections = pgTable(
  'bank_connections',
  {
    id: text('id').primaryKey(),
    reference: text('reference').notNull(),
    institutionId: text('institution_id').notNull(),
    redirectUrl: text('redirect_url').notNull(),
    maxHistoricalDays: integer('max_historical_days').notNull(),
    accessValidForDays: integer('access_valid_for_days').notNull(),
    /** creating | awaiting_consent | linked | rejected | expired | suspended | abandoned | deleted */
    status: text('status').notNull(),
    agreementId: text('agreement_id'),
    requisitionId: text('requisition_id'),
    requisitionStatus: text('requisition_status'),
    link: text('link'),
    /** The process creating the requisition; another may take over once creating_until passes. */
    creatingOwner: text('creating_owner'),
    creatingUntil: timestamp('creating_until', { withTimezone: true }),
    consentAcceptedAt: timestamp('consent_accepted_at', { withTimezone: true }),
    consentExpiresAt: timestamp('consent_expires_at', { withTimezone: true }),
    /** The smallest BANK_EXPIRY_WARNING_DAYS entry already announced for this consent. */
    expiryWarnedDays: doublePrecision('expiry_warned_days'),
    /** Set while broken (see bank.connection.broken); cleared on recovery. */
    brokenAt: timestamp('broken_at', { withTimezone: true }),
    brokenReason: text('broken_reason'),
    /** Watching an unlinked requisition: when to look next, and how often it was looked at. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true }),
    checkAttempts: integer('check_attempts').notNull().default(0),
    leaseOwner: text('lease_owner'),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('bank_connections_live_reference_uq')
      .on(table.reference)
      .where(sql`${table.status} not in ('expired', 'rejected', 'deleted', 'abandoned')`),
    index('bank_connections_reference_idx').on(table.reference, table.createdAt),
    index('bank_connections_next_check_idx').on(table.nextCheckAt).where(sql`${table.nextCheckAt} is not null`),
    index('bank_connections_status_idx').on(table.status, table.id),
  ],
);

export type SelectBankConnection = typeof bankConnections.$inferSelect;
