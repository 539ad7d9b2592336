import { date, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Calls made per bank account and access scope (transactions, details, balances) on
 * one UTC day, across the fleet. A call reserves a slot with a guarded upsert before
 * it is made and gives it back if it failed: banks count only successful calls.
 * `paused_until` is the reset a bank's 429 "daily limit" named.
 */
export const bankCallBudgets = pgTable(
  'bank_call_budgets',
  {
    accountId: text('account_id').notNull(),
    scope: text('scope').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    calls: integer('calls').notNull().default(0),
    pausedUntil: timestamp('paused_until', { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.accountId, table.scope] })],
);
