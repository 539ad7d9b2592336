import { bigint, bigserial, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { payments } from './payments.js';

/** Every real change of a payment, with what caused it. */
export const paymentTransitions = pgTable(
  'payment_transitions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    paymentId: bigint('payment_id', { mode: 'number' })
      .notNull()
      .references(() => payments.id),
    version: integer('version').notNull(),
    /** webhook | poll | sync | sweep | replay | track */
    source: text('source').notNull(),
    previousStatus: text('previous_status'),
    newStatus: text('new_status').notNull(),
    previousProviderStatus: text('previous_provider_status'),
    newProviderStatus: text('new_provider_status').notNull(),
    fence: bigint('fence', { mode: 'number' }).notNull(),
    receiptId: bigint('receipt_id', { mode: 'number' }),
    snapshot: jsonb('snapshot').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    // A version is written once: two writers can never both produce version N.
    uniqueIndex('payment_transitions_payment_version_uq').on(table.paymentId, table.version),
    index('payment_transitions_created_idx').on(table.createdAt),
  ],
);

export type SelectPaymentTransition = typeof paymentTransitions.$inferSelect;
