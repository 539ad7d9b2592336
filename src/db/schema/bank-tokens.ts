import { pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * The Bank Account Data API token, one row per secret id, shared by every gateway
 * process: `token/new` allows 100 calls an hour per company, so the fleet mints once
 * and refreshes once per expiry (src/bank/tokens.ts holds the row lock while it does).
 */
export const bankTokens = pgTable('bank_tokens', {
  secretId: text('secret_id').primaryKey(),
  access: text('access'),
  accessIssuedAt: timestamp('access_issued_at', { withTimezone: true }),
  accessExpiresAt: timestamp('access_expires_at', { withTimezone: true }),
  refresh: text('refresh'),
  refreshExpiresAt: timestamp('refresh_expires_at', { withTimezone: true }),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export type SelectBankToken = typeof bankTokens.$inferSelect;
