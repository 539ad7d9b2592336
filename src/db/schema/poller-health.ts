import { sql } from 'drizzle-orm';
import { index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

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
  (table) => [
    primaryKey({ columns: [table.provider, table.account] }),
    // The fleet's paused accounts are read in one query a few times a second (rate-limit-pause.ts).
    index('poller_health_paused_idx').on(table.pausedUntil).where(sql`${table.pausedUntil} is not null`),
  ],
);

export type SelectPollerHealth = typeof pollerHealth.$inferSelect;
