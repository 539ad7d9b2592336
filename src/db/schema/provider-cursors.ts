import { jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Where a recovery job left off, per provider account: the GoCardless events cursor,
 * the Mollie sweep's watermark. Written only after the work before it is durable.
 */
export const providerCursors = pgTable(
  'provider_cursors',
  {
    provider: text('provider').notNull(),
    account: text('account').notNull(),
    /** events | sweep | ... : which job owns the cursor. */
    name: text('name').notNull(),
    cursor: text('cursor'),
    state: jsonb('state'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.provider, table.account, table.name] })],
);

export type SelectProviderCursor = typeof providerCursors.$inferSelect;
