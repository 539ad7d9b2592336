/**
 * The bank scheduler: watches unlinked requisitions, announces consent expiry, and
 * syncs every linked account at BANK_SYNC_INTERVAL_MS, across the whole fleet.
 *
 * Work is shared like the payment poller's: a pass leases due rows with FOR UPDATE
 * SKIP LOCKED and a lease column, so processes never take the same connection or
 * account at once and a crashed process's leases lapse by themselves. The banks'
 * daily limit is kept by the call budget (call-budget.ts), not by the lease.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { sleep } from '../abortable-sleep.js';
import { errorMessage } from '../primitives/error-message.js';
import { forEachLimited } from '../primitives/for-each-limited.js';
import { announceConsentExpiry } from './connection-health.js';
import { checkRequisition, CONSENT_CHECK_DELAYS_MS, type BankDeps } from './connections.js';
import type { ConnectionRow } from './queries.js';
import { syncBankAccount, type SyncOutcome, type SyncTarget } from './sync-account.js';

const LEASE_MS = 120_000;

export interface BankPassSummary {
  checked: number;
  synced: number;
  limited: number;
  broken: number;
  failed: number;
  expiring: number;
  expired: number;
}

/**
 * What one process's bank scheduler remembers: its lease owner and its liveness. The
 * composition root creates it (src/job-state.ts), so two gateways in one process (tests)
 * never share it.
 */
export interface BankSchedulerState {
  running: boolean;
  /** Made on first use: '' until the first pass. */
  owner: string;
  lastPassAt: string | null;
  lastPassError: string | null;
}

export function createBankSchedulerState(): BankSchedulerState {
  return { running: false, owner: '', lastPassAt: null, lastPassError: null };
}

export type BankSchedulerDeps = BankDeps & { bankSchedulerState: BankSchedulerState };

/** This process's lease owner, made on first use. */
function processOwner(state: BankSchedulerState): string {
  if (!state.owner) state.owner = `bank-${randomBytes(6).toString('hex')}`;
  return state.owner;
}

export function bankSchedulerStatus(deps: Pick<BankSchedulerDeps, 'bankSchedulerState'>): BankSchedulerState {
  return { ...deps.bankSchedulerState };
}

async function leaseDueConnections(deps: BankDeps, owner: string, limit: number): Promise<ConnectionRow[]> {
  return deps.db.execute<ConnectionRow>(sql`
    with due as (
      select id from bank_connections
      where next_check_at <= now() and status = 'awaiting_consent'
        and (lease_until is null or lease_until < now())
      order by next_check_at
      limit ${limit}
      for update skip locked)
    update bank_connections c set lease_owner = ${owner}, lease_until = now() + ${LEASE_MS} * interval '1 millisecond'
    from due where c.id = due.id
    returning c.*`);
}

async function leaseDueAccounts(deps: BankDeps, owner: string, limit: number): Promise<SyncTarget[]> {
  return deps.db.execute<SyncTarget & { [key: string]: unknown }>(sql`
    with due as (
      select a.id from bank_accounts a
      join bank_connections c on c.id = a.connection_id
      where a.next_sync_at <= now() and c.status = 'linked'
        and (a.lease_until is null or a.lease_until < now())
      order by a.next_sync_at
      limit ${limit}
      for update of a skip locked)
    update bank_accounts a set lease_owner = ${owner}, lease_until = now() + ${LEASE_MS} * interval '1 millisecond'
    from due, bank_connections c
    where a.id = due.id and c.id = a.connection_id
    returning a.id, a.connection_id, a.external_id, to_char(a.last_booked_date, 'YYYY-MM-DD') as last_booked_date, c.reference`);
}

/** One pass: expiry, due requisitions, due accounts. Safe to run from any number of processes at once. */
export async function bankSchedulerStep(deps: BankSchedulerDeps, options: { owner?: string; limit?: number } = {}): Promise<BankPassSummary> {
  const owner = options.owner ?? processOwner(deps.bankSchedulerState);
  const limit = options.limit ?? 50;
  const summary: BankPassSummary = { checked: 0, synced: 0, limited: 0, broken: 0, failed: 0, expiring: 0, expired: 0 };
  if (!deps.bank) return summary;

  Object.assign(summary, await announceConsentExpiry(deps.db, deps.env.BANK_EXPIRY_WARNING_DAYS));

  const connections = await leaseDueConnections(deps, owner, limit);
  await forEachLimited(connections, deps.env.BANK_SYNC_CONCURRENCY, async (connection) => {
    try {
      await checkRequisition(deps, connection);
      summary.checked++;
    } catch (error) {
      summary.failed++;
      deps.logger.warn({ job: 'bank', connectionId: connection.id, err: errorMessage(error) }, 'requisition check failed');
      await deps.db.execute(sql`
        update bank_connections set next_check_at = now() + ${CONSENT_CHECK_DELAYS_MS.at(-1)!} * interval '1 millisecond'
        where id = ${connection.id} and status = 'awaiting_consent'`);
    } finally {
      await deps.db.execute(sql`update bank_connections set lease_owner = null, lease_until = null where id = ${connection.id} and lease_owner = ${owner}`);
    }
  });

  const accounts = await leaseDueAccounts(deps, owner, limit);
  await forEachLimited(accounts, deps.env.BANK_SYNC_CONCURRENCY, async (account) => {
    let outcome: SyncOutcome;
    try {
      outcome = await syncBankAccount(deps, account);
    } catch (error) {
      outcome = { outcome: 'failed', error: errorMessage(error) };
      deps.logger.error({ job: 'bank', accountId: account.id, err: outcome.error }, 'bank account sync failed');
      // Unexpected (the database, a bug): try again after a while rather than at once in a loop.
      await deps.db
        .execute(sql`update bank_accounts set next_sync_at = now() + interval '5 minutes', last_error = ${outcome.error} where id = ${account.id} and next_sync_at is not null`)
        .catch(() => {});
    } finally {
      await deps.db.execute(sql`update bank_accounts set lease_owner = null, lease_until = null where id = ${account.id} and lease_owner = ${owner}`).catch(() => {});
    }
    summary[outcome.outcome]++;
  });
  return summary;
}

export async function runBankScheduler(deps: BankSchedulerDeps, options: { signal: AbortSignal }): Promise<void> {
  if (!deps.bank) return;
  const processState = deps.bankSchedulerState;
  processState.running = true;
  try {
    while (!options.signal.aborted) {
      let busy = false;
      try {
        const summary = await bankSchedulerStep(deps);
        busy = summary.checked + summary.synced + summary.limited + summary.broken + summary.failed > 0;
        processState.lastPassAt = new Date().toISOString();
        processState.lastPassError = null;
      } catch (error) {
        processState.lastPassError = errorMessage(error);
        deps.logger.error({ job: 'bank', err: processState.lastPassError }, 'bank scheduler pass failed');
      }
      if (!busy) await sleep(deps.env.BANK_SCHEDULER_IDLE_MS, options.signal);
    }
  } finally {
    processState.running = false;
  }
}
