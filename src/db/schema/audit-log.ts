import { bigserial, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * What operators did: every console sign-in (also refused ones), re-drive, re-process,
 * sync and sink change, with who (a console session's or an API token's fingerprint,
 * never the secret), when and to what. Append-only; retention deletes entries past
 * RETENTION_AUDIT_DAYS.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    /** console:<session fingerprint> | api:<token fingerprint> | anonymous */
    actor: text('actor').notNull(),
    /** console.sign_in | console.sign_in_refused | console.sign_out | delivery.redrive | delivery.bulk_redrive | receipt.reprocess | payment.sync | sink.enable | sink.disable | sink.test */
    action: text('action').notNull(),
    /** What it was done to: delivery:42, receipt:7, payment:mollie/tr_x, sink:snk_... */
    target: text('target'),
    /** applied | no_change | failed: whether the action changed anything. */
    outcome: text('outcome').notNull(),
    detail: jsonb('detail'),
    requestId: text('request_id'),
    userAgent: text('user_agent'),
  },
  (table) => [index('audit_log_at_idx').on(table.at)],
);

export type SelectAuditEntry = typeof auditLog.$inferSelect;
export type InsertAuditEntry = typeof auditLog.$inferInsert;
