import { bigint, bigserial, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * The inbound log: one row per request to a webhook route, with what became of it,
 * also the refused ones (bad signature, unknown account, too large...), which leave no
 * receipt. Never the body: an accepted request's body is in its receipt, a refused one's
 * is not kept at all. Rows are rate-limited per source (src/webhooks/inbound-log.ts), so
 * a flood of junk cannot fill the table; retention deletes them after RETENTION_REQUESTS_DAYS.
 */
export const webhookRequests = pgTable(
  'webhook_requests',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
    provider: text('provider').notNull(),
    /** The account in the path, as given (at most 64 characters), or default. */
    account: text('account').notNull(),
    status: integer('status').notNull(),
    /** accepted | duplicate | bad_signature | unknown_account | too_large | ... (the webhook counter's outcome) */
    outcome: text('outcome').notNull(),
    /** The client address as the nearest proxy saw it, or the socket's. */
    source: text('source').notNull(),
    userAgent: text('user_agent'),
    bodyBytes: integer('body_bytes'),
    durationMs: integer('duration_ms').notNull(),
    requestId: text('request_id').notNull(),
    /** Requests from this source not logged since its previous row (the rate limit). */
    suppressed: bigint('suppressed', { mode: 'number' }).notNull().default(0),
  },
  (table) => [index('webhook_requests_received_idx').on(table.receivedAt), index('webhook_requests_outcome_idx').on(table.outcome, table.id)],
);

export type SelectWebhookRequest = typeof webhookRequests.$inferSelect;
