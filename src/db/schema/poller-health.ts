import { integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/** Per provider account: is polling working? Shared by every gateway process. */
export const pollerHealth = pgTable(
  'poller_health',
  {
    provider: text('provider').notNull(),
    account: text('account').notNull(),
    lastSuccessAt: timestamp('last_success_at', { withTimezone: true }),
    lastFailureAt: timestamp('last_failure_at', { withTimezone: true }),
    lastError: text('last_error'),
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    /** healthy | degraded: flips emit gateway.poller.degraded / gateway.poller.recovered once each. */
    state: text('state').notNull().default('healthy'),
    stateChangedAt: timestamp('state_changed_at', { withTimezone: true }).notNull().defaultNow(),
    /** Provider-side rate-limit pause (429 Retry-After) shared across processes. */
    pausedUntil: timestamp('paused_until', { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.provider, table.account] })],
);

export type SelectPollerHealth = typeof pollerHealth.$inferSelect;
