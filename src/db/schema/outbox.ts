import { sql } from 'drizzle-orm';
import { bigserial, customType, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** Postgres' 64-bit transaction id; ordering the pull API by it makes late commits safe. */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/**
 * Outbound events, written in the same transaction as the change they describe.
 * `dedupe_key` makes "exactly one event per change / per provider event" a constraint.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** Stable public id (evt_...); consumers de-duplicate on it. */
    eventId: text('event_id').notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    type: text('type').notNull(),
    provider: text('provider'),
    providerPaymentId: text('provider_payment_id'),
    paymentVersion: integer('payment_version'),
    payload: jsonb('payload').notNull(),
    /** W3C traceparent of the span that wrote the event (null when tracing is off): its deliveries' spans are its children. */
    traceParent: text('trace_parent'),
    /** The writing transaction's id: readers only see events below every running transaction. */
    txId: xid8('tx_id').notNull().default(sql`pg_current_xact_id()`),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** Set once every sink has the event (or gave up on it); the relay scans what is still null. */
    relayedAt: timestamp('relayed_at', { withTimezone: true }),
  },
  (table) => [
    uniqueIndex('outbox_event_id_uq').on(table.eventId),
    uniqueIndex('outbox_dedupe_key_uq').on(table.dedupeKey),
    index('outbox_tx_order_idx').on(table.txId, table.id),
    index('outbox_payment_idx').on(table.provider, table.providerPaymentId, table.paymentVersion),
    index('outbox_unrelayed_idx').on(table.id).where(sql`${table.relayedAt} is null`),
    // Retention walks events oldest first.
    index('outbox_created_idx').on(table.createdAt),
  ],
);

export type SelectOutboxEvent = typeof outbox.$inferSelect;
export type InsertOutboxEvent = typeof outbox.$inferInsert;
