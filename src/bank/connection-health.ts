/**
 * A connection's announced state: linked, broken, recovered, expiring, expired. Each
 * is a guarded UPDATE that only one process can win, and the event goes out in the
 * same transaction with a dedupe key, so every change is announced exactly once.
 */
import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { enqueueEvents } from '../events/outbox.js';

export type BrokenReason =
  | 'rejected'
  | 'suspended'
  | 'account_error'
  | 'account_suspended'
  | 'account_expired'
  | 'access_refused';

/** Only these clear by themselves; the others need a new requisition. */
const RECOVERABLE: BrokenReason[] = ['access_refused'];

export async function markConnectionBroken(
  tx: DbOrTx,
  connectionId: string,
  reason: BrokenReason,
  detail: { accountId?: string; message?: string } = {},
): Promise<boolean> {
  // `broken_at is null`: the first process to see the problem announces it; the rest find it set.
  const [row] = await tx.execute<{ broken_at: Date | string; reference: string; status: string }>(sql`
    update bank_connections set broken_at = now(), broken_reason = ${reason}, updated_at = now()
    where id = ${connectionId} and broken_at is null
    returning broken_at, reference, status`);
  if (!row) return false;
  const since = new Date(row.broken_at);
  await enqueueEvents(tx, [
    {
      type: 'bank.connection.broken',
      dedupeKey: `bank:connection:${connectionId}:broken:${since.getTime()}`,
      data: { connectionId, reference: row.reference, status: row.status, reason, since: since.toISOString(), ...detail },
    },
  ]);
  return true;
}

export async function markConnectionRecovered(tx: DbOrTx, connectionId: string): Promise<boolean> {
  const [row] = await tx.execute<{ was: Date | string; reason: string; reference: string }>(sql`
    with old as (
      select id, broken_at as was, broken_reason as reason from bank_connections
      where id = ${connectionId} and broken_at is not null
        and broken_reason = any(${`{${RECOVERABLE.join(',')}}`}::text[])
      for update)
    update bank_connections c set broken_at = null, broken_reason = null, updated_at = now()
    from old where c.id = old.id
    returning old.was, old.reason, c.reference`);
  if (!row) return false;
  const was = new Date(row.was);
  await enqueueEvents(tx, [
    {
      type: 'bank.connection.recovered',
      dedupeKey: `bank:connection:${connectionId}:recovered:${was.getTime()}`,
      data: { connectionId, reference: row.reference, brokenSince: was.toISOString(), reason: row.reason },
    },
  ]);
  return true;
}

const DAY_MS = 86_400_000;

/**
 * The set-based expiry pass: connections whose consent has ended become expired, and
 * those inside a warning window are announced once per warning day (only the nearest
 * day that has come: a consent linked with 3 days left gets the 7-day warning, not
 * also a late one for a day long past). No API calls: the end is known from the agreement.
 */
export async function announceConsentExpiry(db: DbOrTx, warningDays: number[]): Promise<{ expiring: number; expired: number }> {
  let expired = 0;
  await db.transaction(async (tx) => {
    const rows = await tx.execute<{ id: string; reference: string; consent_expires_at: Date | string }>(sql`
      update bank_connections set status = 'expired', next_check_at = null, updated_at = now()
      where status = 'linked' and consent_expires_at <= now()
      returning id, reference, consent_expires_at`);
    if (rows.length === 0) return;
    expired = rows.length;
    await tx.execute(sql`update bank_accounts set next_sync_at = null where connection_id = any(${`{${rows.map((r) => r.id).join(',')}}`}::text[])`);
    await enqueueEvents(
      tx,
      rows.map((row) => ({
        type: 'bank.connection.expired',
        dedupeKey: `bank:connection:${row.id}:expired`,
        data: { connectionId: row.id, reference: row.reference, consentExpiresAt: new Date(row.consent_expires_at).toISOString() },
      })),
    );
  });
  let expiring = 0;
  const days = [...new Set(warningDays)].sort((a, b) => a - b);
  if (days.length === 0) return { expiring, expired };
  const widest = days.at(-1)!;
  await db.transaction(async (tx) => {
    // For each connection inside the widest window: the nearest warning day already reached.
    const due = await tx.execute<{ id: string; reference: string; consent_expires_at: Date | string; day: number }>(sql`
      with candidates as (
        select id, reference, consent_expires_at, expiry_warned_days,
          (select min(d) from unnest(${`{${days.join(',')}}`}::float8[]) as d
            where consent_expires_at - d * interval '1 day' <= now()) as day
        from bank_connections
        where status = 'linked' and consent_expires_at > now()
          and consent_expires_at - ${widest} * interval '1 day' <= now())
      update bank_connections c set expiry_warned_days = candidates.day
      from candidates
      where c.id = candidates.id and candidates.day is not null
        -- Guard: each warning day is announced once, whichever process gets here first.
        and (c.expiry_warned_days is null or c.expiry_warned_days > candidates.day)
      returning c.id, c.reference, c.consent_expires_at, candidates.day`);
    expiring = due.length;
    await enqueueEvents(
      tx,
      due.map((row) => {
        const expiresAt = new Date(row.consent_expires_at);
        return {
          type: 'bank.connection.expiring',
          dedupeKey: `bank:connection:${row.id}:expiring:${row.day}:${expiresAt.getTime()}`,
          data: {
            connectionId: row.id,
            reference: row.reference,
            consentExpiresAt: expiresAt.toISOString(),
            warningDays: Number(row.day),
            daysLeft: Math.max(0, Math.round(((expiresAt.getTime() - Date.now()) / DAY_MS) * 10) / 10),
          },
        };
      }),
    );
  });
  return { expiring, expired };
}
