import { createHash } from 'node:crypto';
import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import type { Context } from 'hono';
import type { DbOrTx } from '../db/client.js';
import { auditLog, type SelectAuditEntry } from '../db/schema/audit-log.js';
import type { AppEnv } from '../http/middleware.js';

export const AUDIT_ACTIONS = [
  'console.sign_in',
  'console.sign_in_refused',
  'console.sign_out',
  'delivery.redrive',
  'delivery.bulk_redrive',
  'receipt.reprocess',
  'payment.sync',
  'sink.enable',
  'sink.disable',
  'sink.test',
  'account.check',
  'account.disable',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  actor: string;
  action: AuditAction;
  target?: string;
  /** applied: it changed something; no_change: nothing to do (already re-driven, ...); refused; failed. */
  outcome: 'applied' | 'no_change' | 'refused' | 'failed';
  detail?: Record<string, unknown>;
  requestId?: string;
  userAgent?: string;
}

/** A short, stable name for a secret-bearing value, never the value: sessions and tokens are told apart by it. */
export function fingerprint(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12);
}

/** The console session a cookie value is (its fingerprint changes at every sign-in). */
export const consoleActor = (sessionValue: string) => `console:${fingerprint(sessionValue)}`;
/** The bearer token of a /v1 call (its fingerprint changes when ADMIN_TOKEN is rotated). */
export const apiActor = (token: string) => `api:${fingerprint(token)}`;

/** The request an entry came from: its id (in the log line too) and the user agent. */
export function requestOrigin(c: Context<AppEnv>): Pick<AuditEntry, 'requestId' | 'userAgent'> {
  return { requestId: c.get('requestId'), userAgent: c.req.header('user-agent')?.slice(0, 200) };
}

/**
 * Appends one entry. Called after the action, so the entry says what really happened;
 * a failure to write it is logged by the caller's error handling, never swallowed.
 */
export async function recordAuditEntry(db: DbOrTx, entry: AuditEntry): Promise<void> {
  await db.insert(auditLog).values({
    actor: entry.actor,
    action: entry.action,
    target: entry.target ?? null,
    outcome: entry.outcome,
    detail: entry.detail ?? null,
    requestId: entry.requestId ?? null,
    userAgent: entry.userAgent ?? null,
  });
}

/** Newest first, paged by id; optionally one action or one actor. */
export async function listAuditEntries(
  db: DbOrTx,
  params: { beforeId?: number; limit: number; action?: AuditAction; actor?: string },
): Promise<SelectAuditEntry[]> {
  const conditions: SQL[] = [];
  if (params.beforeId !== undefined) conditions.push(lt(auditLog.id, params.beforeId));
  if (params.action) conditions.push(eq(auditLog.action, params.action));
  if (params.actor) conditions.push(eq(auditLog.actor, params.actor));
  return db
    .select()
    .from(auditLog)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(auditLog.id))
    .limit(params.limit);
}
