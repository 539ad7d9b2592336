import { bigint, bigserial, boolean, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { eventDeliveries } from './event-deliveries.js';

/**
 * Every attempt at a delivery, kept apart from the delivery row (which holds only the
 * last one): when, what the sink answered (status, or the error when no answer came),
 * how long it took and the first bytes of its answer. Re-driving a dead letter resets
 * the delivery's attempt count but leaves these rows, so the history survives it.
 * Written in the same statement that records the attempt's outcome on the delivery.
 * Retention deletes rows past RETENTION_DELIVERIES_DAYS (and a delivered delivery's
 * go with it, by cascade).
 */
export const eventDeliveryAttempts = pgTable(
  'event_delivery_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deliveryId: bigint('delivery_id', { mode: 'number' })
      .notNull()
      .references(() => eventDeliveries.id, { onDelete: 'cascade' }),
    /** Copied from the delivery so a sink's success rate reads this table alone. */
    sinkId: text('sink_id').notNull(),
    /** The delivery's attempt count this attempt ran under (restarts at 1 after a re-drive). */
    attempt: integer('attempt').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    durationMs: integer('duration_ms').notNull(),
    /** delivered | retry | dead | gone | probe_failed */
    outcome: text('outcome').notNull(),
    /** The sink's HTTP status; null when no HTTP answer came (a broker sink, a timeout). */
    status: integer('status'),
    error: text('error'),
    /** The first bytes of the sink's answer (HTTP sinks), as text. */
    answer: text('answer'),
    /** A half-open probe of a sink with retries waiting (it costs the delivery no attempt). */
    probe: boolean('probe').notNull().default(false),
    /** Another relay had taken the delivery over when this one finished: its outcome was not applied. */
    superseded: boolean('superseded').notNull().default(false),
  },
  (table) => [
    // A delivery's history, in order.
    index('event_delivery_attempts_delivery_idx').on(table.deliveryId, table.id),
    // Retention walks by age; a sink's success rate reads its recent attempts.
    index('event_delivery_attempts_started_idx').on(table.startedAt),
    index('event_delivery_attempts_sink_idx').on(table.sinkId, table.startedAt),
  ],
);

export type SelectEventDeliveryAttempt = typeof eventDeliveryAttempts.$inferSelect;
