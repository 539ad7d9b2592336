import { sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../client.js';

/**
 * Marking webhook receipts done. It sits below both sides that settle receipts: the
 * intake (src/webhooks), which owns receipts, and the write path (src/payments), which
 * settles the receipts a sync answers in the sync's own transaction. Neither reaches
 * into the other for it.
 */

export type ReceiptState = 'processed' | 'ignored';

/** Marks receipts done in one statement. */
export async function settleReceipts(db: DbOrTx, ids: number[], state: ReceiptState, note?: string): Promise<void> {
  if (ids.length === 0) return;
  await db.execute(settleReceiptsSql(ids, state, note));
}

/** settleReceiptsSql's values, in the order it interpolates them. */
export function settleReceiptsParams(ids: number[], state: ReceiptState, note?: string): unknown[] {
  return [state, note ?? null, `{${ids.join(',')}}`];
}

/** Only a pending receipt moves: one the retry worker already failed or settled stays as it is. */
export function settleReceiptsSql(ids: number[], state: ReceiptState, note?: string): SQL {
  return sql`
    update webhook_receipts
    set state = ${state}, processed_at = now(), next_attempt_at = null, last_error = ${note ?? null}
    where id = any(${`{${ids.join(',')}}`}::bigint[]) and state = 'pending'`;
}
