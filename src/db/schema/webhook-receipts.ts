import { sql } from 'drizzle-orm';
import { bigserial, customType, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
});

/**
 * Every webhook the gateway acknowledged, raw, before anything else happens to it.
 * A receipt is `pending` until its payment is synced (or proven unknown); a worker
 * retries pending receipts, so an acknowledged webhook is never lost.
 */
export const webhookReceipts = pgTable(
  'webhook_receipts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    account: text('account').notNull().default('default'),
    /** The provider's event id where it has one (Mollie next-gen, GoCardless); null for Mollie classic. */
    eventId: text('event_id'),
    /** payment | refund | chargeback | mandates | ... : what the receipt is about. */
    resourceType: text('resource_type'),
    resourceId: text('resource_id'),
    body: bytea('body').notNull(),
    headers: jsonb('headers').notNull(),
    /** valid (verified signature) | absent (unsigned scheme: Mollie classic) | fetched (read from a provider's events API) */
    signature: text('signature').notNull(),
    /** pending | processed | ignored | failed */
    state: text('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).defaultNow(),
    lastError: text('last_error'),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
    processedAt: timestamp('processed_at', { withTimezone: true }),
  },
  (table) => [
    // De-duplicates signed events by the provider's event id, per account: event ids are
    // unique within one merchant's provider account, and one account's signed webhooks must
    // never pre-empt another's.
    uniqueIndex('webhook_receipts_event_uq').on(table.provider, table.account, table.eventId).where(sql`${table.eventId} is not null`),
    // The retry worker scans only receipts still pending.
    index('webhook_receipts_pending_idx').on(table.nextAttemptAt).where(sql`${table.state} = 'pending'`),
    index('webhook_receipts_resource_idx').on(table.provider, table.resourceId),
    // The failed-receipts gauge, read at each scrape.
    index('webhook_receipts_failed_idx').on(table.provider).where(sql`${table.state} = 'failed'`),
    // Retention walks settled receipts oldest first, in small batches.
    index('webhook_receipts_settled_idx').on(table.processedAt).where(sql`${table.state} in ('processed', 'ignored')`),
  ],
);

export type SelectWebhookReceipt = typeof webhookReceipts.$inferSelect;
export type InsertWebhookReceipt = typeof webhookReceipts.$inferInsert;
