import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, index, integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { outbox } from './outbox.js';

/**
 * Every outbound sink the relay has ever been configured with, keyed by a stable id
 * derived from its kind and target. The row outlives restarts so that a sink that
 * answered 410 Gone stays disabled across every gateway process until an operator
 * enables it again.
 */
export const eventSinks = pgTable('event_sinks', {
  /** snk_<hash of kind and target>: the same in every process with the same configuration. */
  id: text('id').primaryKey(),
  /** http | stream | nats | amqp */
  kind: text('kind').notNull(),
  /** For people: the URL without credentials or query, or the stream name. */
  target: text('target').notNull(),
  disabledAt: timestamp('disabled_at', { withTimezone: true }),
  disabledReason: text('disabled_reason'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * One row per (outbox event, sink): the delivery state the relay works from. The
 * unique (outbox_id, sink_id) pair makes fanning an event out twice a no-op.
 */
export const eventDeliveries = pgTable(
  'event_deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    outboxId: bigint('outbox_id', { mode: 'number' })
      .notNull()
      .references(() => outbox.id, { onDelete: 'cascade' }),
    sinkId: text('sink_id')
      .notNull()
      .references(() => eventSinks.id),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** The per-payment ordering key, copied from the outbox so the hold-back check reads one table. */
    provider: text('provider'),
    providerPaymentId: text('provider_payment_id'),
    paymentVersion: integer('payment_version'),
    /** pending | delivered | dead (a dead letter, waiting for an operator's re-drive) */
    state: text('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** When the next attempt is due; while an attempt runs it is the attempt's lease expiry. */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    /**
     * A failed attempt scheduled the next one (as opposed to a lease holding next_attempt_at
     * forward while an attempt runs): only these are pulled forward when the sink answers again.
     */
    awaitingRetry: boolean('awaiting_retry').notNull().default(false),
    lastAttemptAt: timestamp('last_attempt_at', { withTimezone: true }),
    /** The sink's HTTP status on the last attempt; null when no response arrived. */
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    deadLetteredAt: timestamp('dead_lettered_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('event_deliveries_outbox_sink_uq').on(table.outboxId, table.sinkId),
    // The relay's due scan sees only what is still pending.
    index('event_deliveries_due_idx').on(table.sinkId, table.nextAttemptAt).where(sql`${table.state} = 'pending'`),
    // The per-payment hold-back: "is an earlier event of this payment still pending for this sink?"
    index('event_deliveries_payment_pending_idx')
      .on(table.sinkId, table.provider, table.providerPaymentId, table.paymentVersion, table.outboxId)
      .where(sql`${table.state} = 'pending' and ${table.providerPaymentId} is not null`),
    index('event_deliveries_dead_idx').on(table.id).where(sql`${table.state} = 'dead'`),
    // Retention walks delivered attempts oldest first, in small batches.
    index('event_deliveries_delivered_idx').on(table.deliveredAt).where(sql`${table.state} = 'delivered'`),
  ],
);

export type SelectEventSink = typeof eventSinks.$inferSelect;
export type SelectEventDelivery = typeof eventDeliveries.$inferSelect;
export type InsertEventDelivery = typeof eventDeliveries.$inferInsert;
