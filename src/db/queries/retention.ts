import { sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../client.js';

/**
 * One batch of each retention rule: a single short statement that deletes at most `limit`
 * rows, oldest first, through a partial index. Rows another transaction holds are skipped
 * (SKIP LOCKED), and the state test sits in the DELETE itself, so a row that stopped being
 * deletable between the scan and the delete (a receipt re-opened for re-processing) stays.
 */

/** Settled receipts (processed, ignored) older than the cutoff; pending and failed ones are never touched. */
export function deleteSettledReceipts(db: DbOrTx, params: { before: Date; limit: number }): Promise<number> {
  return deleteBatch(db, sql`
    delete from webhook_receipts
    where id in (
      select id from webhook_receipts
      where state in ('processed', 'ignored') and processed_at < ${params.before.toISOString()}::timestamptz
      order by processed_at
      limit ${params.limit}
      for update skip locked)
      and state in ('processed', 'ignored')`);
}

/** Delivered attempts older than the cutoff; pending ones and dead letters (an operator's) stay. */
export function deleteDeliveredAttempts(db: DbOrTx, params: { before: Date; limit: number }): Promise<number> {
  return deleteBatch(db, sql`
    delete from event_deliveries
    where id in (
      select id from event_deliveries
      where state = 'delivered' and delivered_at < ${params.before.toISOString()}::timestamptz
      order by delivered_at
      limit ${params.limit}
      for update skip locked)
      and state = 'delivered'`);
}

/**
 * Attempt rows older than the cutoff, whatever their delivery's state: a delivery still
 * pending or dead keeps its last status and error on its own row, and a sink that stays
 * down is probed every few seconds, so these rows must not wait for their delivery.
 */
export function deleteOldDeliveryAttempts(db: DbOrTx, params: { before: Date; limit: number }): Promise<number> {
  return deleteBatch(db, sql`
    delete from event_delivery_attempts
    where id in (select id from event_delivery_attempts where started_at < ${params.before.toISOString()}::timestamptz order by started_at limit ${params.limit} for update skip locked)`);
}

/**
 * Outbox events older than the cutoff that every sink is done with: relayed (fanned out to
 * the sinks) and with no delivery still pending or dead. Where no sink was ever registered
 * (the pull API alone reads the outbox) nothing is ever marked relayed, and age alone
 * decides. Delivered attempts go with their event (ON DELETE CASCADE).
 */
export function deleteSettledOutboxEvents(db: DbOrTx, params: { before: Date; limit: number }): Promise<number> {
  const settled = sql`
    (o.relayed_at is not null or not exists (select 1 from event_sinks))
    and not exists (select 1 from event_deliveries d where d.outbox_id = o.id and d.state <> 'delivered')`;
  return deleteBatch(db, sql`
    delete from outbox o
    where o.id in (
      select o.id from outbox o
      where o.created_at < ${params.before.toISOString()}::timestamptz and ${settled}
      order by o.created_at
      limit ${params.limit}
      for update skip locked)
      and ${settled}`);
}

/** Inbound log rows older than the cutoff. */
export function deleteOldWebhookRequests(db: DbOrTx, params: { before: Date; limit: number }): Promise<number> {
  return deleteBatch(db, sql`
    delete from webhook_requests
    where id in (select id from webhook_requests where received_at < ${params.before.toISOString()}::timestamptz order by received_at limit ${params.limit} for update skip locked)`);
}

/** Audit entries older than the cutoff. */
export function deleteOldAuditEntries(db: DbOrTx, params: { before: Date; limit: number }): Promise<number> {
  return deleteBatch(db, sql`
    delete from audit_log
    where id in (select id from audit_log where at < ${params.before.toISOString()}::timestamptz order by at limit ${params.limit} for update skip locked)`);
}

async function deleteBatch(db: DbOrTx, statement: SQL): Promise<number> {
  const rows = await db.execute<{ deleted: number }>(sql`with deleted as (${statement} returning 1) select count(*)::int as deleted from deleted`);
  return Number(rows[0]?.deleted ?? 0);
}
