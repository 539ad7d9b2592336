import { bigint, bigserial, index, integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { payments } from './payments.js';

/**
 * A payment's refunds and chargebacks (`kind`), one row per provider id (Mollie re_…/chb_…,
 * GoCardless RF…). Written with the payment's own upsert, in its transaction, and guarded the
 * same way: `status_rank` only goes up (payments/adjustment-rules.ts), so an older snapshot
 * cannot move an item back; `version` counts its real changes, one `refund.*` event each.
 */
export const paymentAdjustments = pgTable(
  'payment_adjustments',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    /** refund | chargeback */
    kind: text('kind').notNull(),
    providerItemId: text('provider_item_id').notNull(),
    paymentId: bigint('payment_id', { mode: 'number' })
      .notNull()
      .references(() => payments.id),
    providerPaymentId: text('provider_payment_id').notNull(),
    amountMinor: bigint('amount_minor', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    /** Normalised (types.ts REFUND_STATUSES / CHARGEBACK_STATUSES). */
    status: text('status').notNull(),
    providerStatus: text('provider_status').notNull(),
    /** The provider status's rank: the guard compares it (never lower). */
    statusRank: integer('status_rank').notNull(),
    previousStatus: text('previous_status'),
    previousProviderStatus: text('previous_provider_status'),
    version: integer('version').notNull().default(1),
    /** The fence of the fetch whose view is stored. */
    fence: bigint('fence', { mode: 'number' }).notNull(),
    providerCreatedAt: timestamp('provider_created_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    // One row per provider item, whatever races: a concurrent insert becomes the guarded update.
    uniqueIndex('payment_adjustments_provider_item_uq').on(table.provider, table.providerItemId),
    index('payment_adjustments_payment_idx').on(table.paymentId, table.kind),
  ],
);

export type SelectPaymentAdjustment = typeof paymentAdjustments.$inferSelect;
