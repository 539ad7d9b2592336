/**
 * Due-poll selection and leases: how several gateway processes share the polling work
 * through Postgres alone.
 *
 * A lease sets poll_lease_owner/poll_lease_until and moves next_poll_at to the lease's
 * end. A leased payment therefore drops out of the due range of the partial index
 * (payments_next_poll_idx), and a crashed owner's payments fall back into it by
 * themselves when the lease runs out. Release compares next_poll_at with the lease end:
 * if they still match, nobody else scheduled the payment meanwhile and the poller's own
 * schedule applies; if not, a sync wrote a change (the schedulePoll hook set a new time,
 * or null once final) or markPaymentDue asked for another look, and that wins.
 */
import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import type { ProviderName } from '../providers/types.js';

export interface LeasedPoll {
  id: number;
  provider: ProviderName;
  providerPaymentId: string;
  account: string;
  providerStatus: string;
  method: string | null;
  pollAttempts: number;
  /** A change was written since the last successful poll (or it was never polled): the backoff restarts. */
  changedSinceLastPoll: boolean;
  /** next_poll_at before the lease, restored when the poll does not happen. */
  dueAt: Date;
  leaseUntil: Date;
  createdAt: Date;
  snapshotHints: SnapshotHints;
}

export interface SnapshotHints {
  expiresAt?: string | null;
  captureBefore?: string | null;
  charge_date?: string | null;
}

interface LeasedRow {
  id: number;
  provider: ProviderName;
  provider_payment_id: string;
  account: string;
  provider_status: string;
  method: string | null;
  poll_attempts: number;
  changed_since_poll: boolean;
  due_at: Date | string;
  lease_until: Date | string;
  created_at: Date | string;
  expires_at: string | null;
  capture_before: string | null;
  charge_date: string | null;
  [key: string]: unknown;
}

/**
 * Leases up to `limit` due payments for `owner`. SKIP LOCKED lets processes lease
 * concurrently without waiting on each other's rows or taking the same one twice; the
 * lease columns keep a payment out of other processes' hands for `leaseMs` after this
 * transaction commits. Accounts paused by a provider's 429, and disabled stored accounts,
 * are left alone.
 */
export async function leaseDuePolls(
  db: DbOrTx,
  params: { owner: string; limit: number; leaseMs: number; providers: ProviderName[] },
): Promise<LeasedPoll[]> {
  if (params.limit <= 0 || params.providers.length === 0) return [];
  const rows = await db.execute<LeasedRow>(sql`
    with due as (
      select p.id, p.next_poll_at as due_at
      from payments p
      where p.next_poll_at <= now()
        and p.provider = any(${`{${params.providers.join(',')}}`}::text[])
        -- A live lease means another process is polling it right now. (markPaymentDue can
        -- pull next_poll_at forward under a live lease; the owner's release keeps that.)
        and (p.poll_lease_until is null or p.poll_lease_until < now())
        and not exists (
          select 1 from poller_health h
          where h.provider = p.provider and h.account = p.account and h.paused_until > now())
        -- A disabled stored account is not polled (its payments wait, should it be enabled again).
        and not exists (
          select 1 from accounts a
          where a.provider = p.provider and a.name = p.account and a.status = 'disabled')
      order by p.next_poll_at
      limit ${params.limit}
      for update of p skip locked
    )
    update payments p set
      poll_lease_owner = ${params.owner},
      poll_lease_until = now() + ${params.leaseMs} * interval '1 millisecond',
      -- The same value as poll_lease_until (now() is fixed within the transaction): see release.
      next_poll_at = now() + ${params.leaseMs} * interval '1 millisecond'
    from due
    where p.id = due.id
    returning p.id, p.provider, p.provider_payment_id, p.account, p.provider_status, p.method, p.poll_attempts,
      (p.last_polled_at is null or p.updated_at > p.last_polled_at) as changed_since_poll,
      due.due_at, p.poll_lease_until as lease_until,
      coalesce(p.provider_created_at, p.created_at) as created_at,
      p.snapshot->>'expiresAt' as expires_at,
      p.snapshot->>'captureBefore' as capture_before,
      p.snapshot->>'charge_date' as charge_date`);
  return rows
    .map((row) => ({
      id: Number(row.id),
      provider: row.provider,
      providerPaymentId: row.provider_payment_id,
      account: row.account,
      providerStatus: row.provider_status,
      method: row.method,
      pollAttempts: row.poll_attempts,
      changedSinceLastPoll: row.changed_since_poll,
      dueAt: new Date(row.due_at),
      leaseUntil: new Date(row.lease_until),
      createdAt: new Date(row.created_at),
      snapshotHints: { expiresAt: row.expires_at, captureBefore: row.capture_before, charge_date: row.charge_date },
    }))
    .sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
}

export interface PollRelease {
  id: number;
  /** The poller's own next time (null: stop polling); applies only if nobody rescheduled meanwhile. */
  nextPollAt: Date | null;
  attempts: number;
  /** The provider answered: stamp last_polled_at. */
  polled: boolean;
}

export interface ReleasedPayment {
  id: number;
  provider: ProviderName;
  providerPaymentId: string;
  account: string;
  status: string;
  providerStatus: string;
  method: string | null;
  version: number;
  amountMinor: number;
  currency: string;
  nextPollAt: Date | null;
  stuckNotifiedAt: Date | null;
  polled: boolean;
  createdAt: Date;
  snapshotHints: SnapshotHints;
}

interface ReleasedRow {
  id: number;
  provider: ProviderName;
  provider_payment_id: string;
  account: string;
  status: string;
  provider_status: string;
  method: string | null;
  version: number;
  amount_minor: number;
  currency: string;
  next_poll_at: Date | string | null;
  stuck_notified_at: Date | string | null;
  polled: boolean;
  created_at: Date | string;
  expires_at: string | null;
  capture_before: string | null;
  charge_date: string | null;
  [key: string]: unknown;
}

/**
 * Ends `owner`'s leases on these payments and schedules each one's next poll. Guarded
 * by the owner: a lease that expired and was taken over belongs to the new owner, and
 * this release leaves it alone. Returns the released rows as they now stand.
 */
export async function releasePolls(db: DbOrTx, owner: string, releases: PollRelease[]): Promise<ReleasedPayment[]> {
  if (releases.length === 0) return [];
  const input = releases.map((r) => ({ id: r.id, next_poll_at: r.nextPollAt?.toISOString() ?? null, attempts: r.attempts, polled: r.polled }));
  // In SET, `p.` is the row before this update; RETURNING sees it after.
  const rows = await db.execute<ReleasedRow>(sql`
    update payments p set
      next_poll_at = case when p.next_poll_at is not distinct from p.poll_lease_until then r.next_poll_at else p.next_poll_at end,
      poll_attempts = case when p.next_poll_at is not distinct from p.poll_lease_until then r.attempts else 0 end,
      poll_lease_owner = null,
      poll_lease_until = null,
      last_polled_at = case when r.polled then now() else p.last_polled_at end
    from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as r(id bigint, next_poll_at timestamptz, attempts int, polled boolean)
    where p.id = r.id and p.poll_lease_owner = ${owner}
    returning p.id, p.provider, p.provider_payment_id, p.account, p.status, p.provider_status, p.method, p.version,
      p.amount_minor, p.currency, p.next_poll_at, p.stuck_notified_at, r.polled,
      coalesce(p.provider_created_at, p.created_at) as created_at,
      p.snapshot->>'expiresAt' as expires_at,
      p.snapshot->>'captureBefore' as capture_before,
      p.snapshot->>'charge_date' as charge_date`);
  return rows.map((row) => ({
    id: Number(row.id),
    provider: row.provider,
    providerPaymentId: row.provider_payment_id,
    account: row.account,
    status: row.status,
    providerStatus: row.provider_status,
    method: row.method,
    version: row.version,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
    nextPollAt: row.next_poll_at === null ? null : new Date(row.next_poll_at),
    stuckNotifiedAt: row.stuck_notified_at === null ? null : new Date(row.stuck_notified_at),
    polled: row.polled,
    createdAt: new Date(row.created_at),
    snapshotHints: { expiresAt: row.expires_at, captureBefore: row.capture_before, charge_date: row.charge_date },
  }));
}

/**
 * Asks the poller to look at a payment again right away. For a trigger that could not
 * sync now (LockBusyError: another trigger, possibly a poll, holds the payment): the
 * poll in flight may have fetched before the change that trigger announced, so one
 * more sync must follow it. Works on final payments too (a refund arrives by webhook on
 * a paid payment). Returns false when the gateway does not know the payment yet; the
 * caller must then keep its own retry (a pending receipt).
 */
export async function markPaymentDue(db: DbOrTx, provider: ProviderName, providerPaymentId: string): Promise<boolean> {
  // least(): an overdue payment keeps its older due time (the lag stays honest). Under
  // a live lease next_poll_at is the lease end, in the future, so this always moves it
  // and the owner's release sees someone asked for another look.
  const rows = await db.execute<{ id: number }>(sql`
    update payments set next_poll_at = least(coalesce(next_poll_at, now()), now())
    where provider = ${provider} and provider_payment_id = ${providerPaymentId}
    returning id`);
  return rows.length > 0;
}
