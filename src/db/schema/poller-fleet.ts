import { check, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';

/**
 * One row for the whole fleet: when did any process (or cron run) last complete a poller
 * pass, and is the fleet announced as stalled? Every process watches it, so a fleet
 * where no process polls is noticed by the ones that do not.
 */
export const pollerFleet = pgTable(
  'poller_fleet',
  {
    /** Always 1: the fleet has one row. */
    id: integer('id').primaryKey().default(1),
    lastPassAt: timestamp('last_pass_at', { withTimezone: true }).notNull().defaultNow(),
    /** running | stalled: flips emit gateway.poller.stalled / gateway.poller.recovered once each. */
    state: text('state').notNull().default('running'),
    stateChangedAt: timestamp('state_changed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [check('poller_fleet_one_row', sql`${table.id} = 1`)],
);

export type SelectPollerFleet = typeof pollerFleet.$inferSelect;
