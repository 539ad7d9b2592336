import { and, asc, desc, eq, getTableColumns, gt, lt, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { createGroupCommit, groupCommitOn, refusedByDatabase } from '../db/group-commit.js';
import { executePrepared } from '../db/prepared.js';
import { webhookReceipts, type SelectWebhookReceipt } from '../db/schema/webhook-receipts.js';
import { SPAN_ATTRIBUTES, withSpan } from '../observability/tracing.js';
import { retryDelayMs } from '../primitives/retry-delay.js';
import type { ProviderName } from '../providers/types.js';

/**
 * Webhook receipts: durable, raw, written before a webhook is acknowledged
 * (guarantee 5). A receipt stays `pending` until a handler settles it; a worker
 * retries pending receipts on a schedule, so an acknowledged webhook is never lost.
 */

export interface NewReceipt {
  provider: ProviderName;
  account: string;
  /** The provider's event id, where it has one: the de-duplication key. */
  eventId?: string | null;
  resourceType?: string | null;
  resourceId?: string | null;
  body: Uint8Array;
  headers: Record<string, string>;
  /** 'fetched': read back from the provider's events API (GoCardless recovery), not pushed to us. */
  signature: 'valid' | 'absent' | 'fetched';
}

export interface RecordedReceipt {
  id: number;
  eventId: string | null;
  /** When the database stored it (for a duplicate: when this call ran). */
  receivedAt: Date;
  /** The provider sent this event id before; nothing new was stored. */
  duplicate: boolean;
}

/**
 * The grace an inline handler gets before the retry worker may take a receipt over.
 * Inline processing normally settles a receipt long before this.
 */
export const INLINE_GRACE_MS = 30_000;

/** Delays between attempts at a pending receipt (RECEIPT_RETRY_DELAYS's default); past the last, the receipt is `failed` for an operator. */
export const RECEIPT_RETRY_DELAYS_MS: readonly number[] = [
  5_000, 15_000, 60_000, 5 * 60_000, 15 * 60_000, 60 * 60_000, 3 * 3_600_000, 6 * 3_600_000, 12 * 3_600_000,
  24 * 3_600_000, 24 * 3_600_000, 24 * 3_600_000,
];

/** Attempt n (1-based) failed: wait this long, with ±20% jitter, honouring a provider's hint. */
export function nextRetryDelayMs(
  attempts: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
  schedule: readonly number[] = RECEIPT_RETRY_DELAYS_MS,
): number | null {
  return retryDelayMs(schedule, attempts, { retryAfterMs, random });
}

/**
 * Stores a batch of receipts in one round trip. Events already stored (same provider,
 * account and event id) come back as duplicates: the unique index decides, not a prior SELECT.
 * On the pool, concurrent calls share one insert (group commit, src/db/group-commit.ts);
 * each call's answer is the one it would get alone, and it returns once its rows are durable.
 */
export async function recordReceipts(db: DbOrTx, receipts: NewReceipt[]): Promise<RecordedReceipt[]> {
  if (receipts.length === 0) return [];
  return withSpan('webhook.receipt', { [SPAN_ATTRIBUTES.provider]: receipts[0]!.provider, 'receipt.count': receipts.length }, () => {
    const batcher = groupCommitOn(db, 'receipts', (maxBatch) => createGroupCommit((calls: NewReceipt[][]) => insertReceipts(db, calls), { maxBatch, retryAlone: refusedByDatabase }));
    return batcher ? batcher.submit(receipts) : insertReceipts(db, [receipts]).then((answers) => answers[0]!);
  });
}

/**
 * One insert for several calls' receipts, answered per call exactly as if the calls had
 * run one after another in the order given: an event id stored by an earlier call (or
 * before) is a duplicate with id 0 (ON CONFLICT DO NOTHING returns no row for it), and
 * the same event id twice in one call makes the second a duplicate of the first.
 */
async function insertReceipts(db: DbOrTx, calls: NewReceipt[][]): Promise<RecordedReceipt[][]> {
  const rows = receiptRows(calls.flat());
  const inserted = await executePrepared<{ id: number; provider: string; account: string; event_id: string | null; received_at: Date | string }>(db, recordReceiptsSql(rows));
  const eventKey = (provider: string, account: string, eventId: string) => `${provider}\u0000${account}\u0000${eventId}`;
  const byEvent = new Map<string, number>();
  const plainIds: number[] = [];
  // One statement: every row has the same received_at (the transaction's time).
  const statementAt = inserted[0] ? new Date(inserted[0].received_at) : null;
  for (const row of inserted) {
    if (row.event_id) byEvent.set(eventKey(row.provider, row.account, row.event_id), Number(row.id));
    else plainIds.push(Number(row.id));
  }
  plainIds.sort((a, b) => a - b);
  let plain = 0;
  let next = 0;
  // Which call stored each event id: the first row of the flush that carries it.
  const claimedBy = new Map<string, number>();
  return calls.map((call, callIndex) => {
    const own = rows.slice(next, (next += call.length));
    const answers = own.map((row) => {
      if (!row.event_id) return { id: plainIds[plain++]!, eventId: null, duplicate: false };
      const key = eventKey(row.provider, row.account, row.event_id);
      const id = byEvent.get(key);
      const claimant = claimedBy.get(key);
      if (id !== undefined && claimant === undefined) {
        claimedBy.set(key, callIndex);
        return { id, eventId: row.event_id, duplicate: false };
      }
      // The same event id twice in one call: the first is new, the rest are its duplicates.
      return { id: claimant === callIndex ? id! : 0, eventId: row.event_id, duplicate: true };
    });
    // A call that stored nothing (all duplicates) was not part of the insert's transaction: it answers its own time.
    const receivedAt = statementAt && answers.some((answer) => !answer.duplicate) ? statementAt : new Date();
    return answers.map((answer) => ({ ...answer, receivedAt }));
  });
}

function receiptRows(receipts: NewReceipt[]) {
  return receipts.map((receipt, index) => ({
    ord: index,
    provider: receipt.provider,
    account: receipt.account,
    event_id: receipt.eventId ?? null,
    resource_type: receipt.resourceType ?? null,
    resource_id: receipt.resourceId ?? null,
    body: Buffer.from(receipt.body).toString('base64'),
    headers: receipt.headers,
    signature: receipt.signature,
  }));
}

/** The batch insert, as SQL (exported for the benchmark's database ceiling). */
export function recordReceiptsSql(rows: ReturnType<typeof receiptRows>): SQL {
  // Ids are assigned in `ord` order, so rows without an event id map back by sorting ids.
  return sql`
    insert into webhook_receipts (provider, account, event_id, resource_type, resource_id, body, headers, signature, next_attempt_at)
    select provider, account, event_id, resource_type, resource_id, decode(body, 'base64'), headers, signature,
           now() + make_interval(secs => ${INLINE_GRACE_MS / 1000})
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(
      ord int, provider text, account text, event_id text, resource_type text, resource_id text,
      body text, headers jsonb, signature text)
    order by ord
    on conflict (provider, account, event_id) where event_id is not null do nothing
    returning id, provider, account, event_id, received_at`;
}

export function recordReceiptsSqlFor(receipts: NewReceipt[]): SQL {
  return recordReceiptsSql(receiptRows(receipts));
}

// Settling lives with the queries both the intake and the write path use (the write path settles in its own transaction).
export { settleReceipts, type ReceiptState } from '../db/queries/receipt-settlement.js';

/**
 * Leaves a receipt pending for a later attempt, or marks it `failed` once the retry
 * schedule is spent. Either way it stays in the table for an operator to see.
 */
export async function deferReceipt(
  db: DbOrTx,
  receipt: Pick<SelectWebhookReceipt, 'id' | 'attempts'>,
  error: string,
  retryAfterMs?: number,
  schedule: readonly number[] = RECEIPT_RETRY_DELAYS_MS,
): Promise<'pending' | 'failed'> {
  const attempts = Math.max(receipt.attempts, 1);
  const delay = nextRetryDelayMs(attempts, retryAfterMs, Math.random, schedule);
  if (delay === null) {
    await db.execute(sql`update webhook_receipts set state = 'failed', last_error = ${error}, next_attempt_at = null where id = ${receipt.id}`);
    return 'failed';
  }
  await db.execute(sql`
    update webhook_receipts
    set last_error = ${error}, next_attempt_at = now() + make_interval(secs => ${delay / 1000})
    where id = ${receipt.id} and state = 'pending'`);
  return 'pending';
}

/**
 * Claims due pending receipts for this process. SKIP LOCKED lets several gateway
 * processes claim side by side without taking the same receipt; pushing
 * next_attempt_at forward is the lease, so a crashed claimant's receipts come due again.
 */
export async function leaseDueReceipts(db: DbOrTx, options: { limit: number; leaseMs: number; provider?: ProviderName }): Promise<SelectWebhookReceipt[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    update webhook_receipts r
    set attempts = r.attempts + 1, next_attempt_at = now() + make_interval(secs => ${options.leaseMs / 1000})
    where r.id in (
      select id from webhook_receipts
      where state = 'pending' and next_attempt_at <= now()
        ${options.provider ? sql`and provider = ${options.provider}` : sql``}
      order by next_attempt_at
      limit ${options.limit}
      for update skip locked)
    returning r.*`);
  return rows.map(toReceipt);
}

export async function getReceipts(db: DbOrTx, ids: number[]): Promise<SelectWebhookReceipt[]> {
  if (ids.length === 0) return [];
  const rows = await db.execute<Record<string, unknown>>(sql`select * from webhook_receipts where id = any(${`{${ids.join(',')}}`}::bigint[]) order by id`);
  return rows.map(toReceipt);
}

function toReceipt(row: Record<string, unknown>): SelectWebhookReceipt {
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  return {
    id: Number(row.id),
    provider: row.provider as string,
    account: row.account as string,
    eventId: (row.event_id as string | null) ?? null,
    resourceType: (row.resource_type as string | null) ?? null,
    resourceId: (row.resource_id as string | null) ?? null,
    body: new Uint8Array(row.body as Buffer),
    headers: row.headers as Record<string, string>,
    signature: row.signature as string,
    state: row.state as string,
    attempts: Number(row.attempts),
    nextAttemptAt: date(row.next_attempt_at),
    lastError: (row.last_error as string | null) ?? null,
    receivedAt: date(row.received_at)!,
    processedAt: date(row.processed_at),
  };
}

/**
 * An operator's re-process: a failed receipt becomes pending again, due now and with a
 * fresh retry schedule, for the receipt worker to take. Guarded on `failed`, so a second
 * click (or a receipt another operator already re-opened) changes nothing.
 */
export async function reopenFailedReceipt(db: DbOrTx, id: number): Promise<boolean> {
  const rows = await db.execute<{ id: number }>(sql`
    update webhook_receipts
    set state = 'pending', attempts = 0, next_attempt_at = now(), processed_at = null
    where id = ${id} and state = 'failed'
    returning id`);
  return rows.length > 0;
}

export const RECEIPT_STATES = ['pending', 'processed', 'ignored', 'failed'] as const;

/** A receipt without its raw body and headers: what lists show. */
export type ReceiptListItem = Omit<SelectWebhookReceipt, 'body' | 'headers'>;

const { body: _body, headers: _headers, ...listedColumns } = getTableColumns(webhookReceipts);

/** Newest first, paged by id (`beforeId`, or `afterId` going back towards the newest), filtered by provider, state and resource id. */
export async function listReceipts(
  db: DbOrTx,
  params: { provider?: ProviderName; state?: (typeof RECEIPT_STATES)[number]; resourceId?: string; beforeId?: number; afterId?: number; limit: number },
): Promise<ReceiptListItem[]> {
  const conditions: SQL[] = [];
  if (params.provider) conditions.push(eq(webhookReceipts.provider, params.provider));
  if (params.state) conditions.push(eq(webhookReceipts.state, params.state));
  if (params.resourceId) conditions.push(eq(webhookReceipts.resourceId, params.resourceId));
  if (params.beforeId !== undefined) conditions.push(lt(webhookReceipts.id, params.beforeId));
  if (params.afterId !== undefined) conditions.push(gt(webhookReceipts.id, params.afterId));
  // Paging forward (afterId) reads the nearest newer rows, oldest first, then turns them newest first.
  const ascending = params.afterId !== undefined;
  const rows = await db
    .select(listedColumns)
    .from(webhookReceipts)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(ascending ? asc(webhookReceipts.id) : desc(webhookReceipts.id))
    .limit(params.limit);
  return ascending ? rows.reverse() : rows;
}
