import type { DbOrTx } from '../db/client.js';
import { executePrepared, renderedStatement } from '../db/prepared.js';
import { runWrite, type WriteSteps } from './write-executor.js';
import { changedResult, planChange, planWrite, unchangedResult, type ApplyInput, type ApplyResult, type UpsertRow, type WritePlan } from './write-plan.js';
import { fetchFenceAtSql, fetchFenceSql, guardedUpsert, transitionAndEvents, unchangedSql } from './write-statements.js';

export type { ApplyInput, ApplyResult, SyncSource } from './write-plan.js';
// The statements, for their tests and the benchmark's database ceiling (which runs exactly what the gateway runs).
export { guardedUpsert, guardedUpsertSql, transitionAndEvents, transitionAndEventsSql, unchangedSql } from './write-statements.js';

/** The fence, and the database's time as it was taken (milliseconds): when the fetch started. */
export async function takeFetchFenceAt(db: DbOrTx): Promise<{ fence: number; at: number }> {
  const rows = await executePrepared<{ fence: number; at: number | string }>(db, fetchFenceAtSql());
  return { fence: Number(rows[0]!.fence), at: Number(rows[0]!.at) };
}

/** Takes the fence for a fetch that is about to start. */
export async function takeFetchFence(db: DbOrTx): Promise<number> {
  const rows = await executePrepared<{ fence: number }>(db, fetchFenceSql());
  return Number(rows[0]!.fence);
}

/**
 * Writes a provider snapshot: one transaction holding the guarded upsert and, only
 * when the row really changed, its transition row and its outbox events; plus the
 * settlement of the receipts the sync answers. Planned by write-plan.ts, rendered by
 * write-statements.ts, run by write-executor.ts (two round trips on the pool).
 */
export async function applySnapshot(db: DbOrTx, input: ApplyInput): Promise<ApplyResult> {
  const plan = planWrite(input);
  return runWrite(db, (steps, ownsCommit) => writeSnapshot(steps, plan, ownsCommit));
}

async function writeSnapshot(steps: WriteSteps, plan: WritePlan, ownsCommit: boolean): Promise<ApplyResult> {
  const s = plan.input.snapshot;
  // Guarantees 1 and 2 in one statement. The unique index on (provider,
  // provider_payment_id) makes a concurrent insert turn into this update instead of a
  // second row. The WHERE refuses stale snapshots (status rules per provider) and
  // no-op ones (nothing tracked differs), so RETURNING yields a row exactly when a
  // real change was written. `previous` captures the row as it stood under the row
  // lock the update holds, which a separate SELECT could not see race-free.
  const rows = await steps.open<UpsertRow>(guardedUpsert(s, plan.input.fence, plan.nextPollAt, plan.snapshotJson, plan.metadataJson));

  const row = rows[0];
  if (!row) {
    await steps.finish(renderedStatement(() => unchangedSql(s, plan.settleIds, ownsCommit)));
    return unchangedResult(plan);
  }

  // The transition and its events commit with the change or not at all (guarantee 4).
  // The unique (payment_id, version) and outbox dedupe keys turn any double write into
  // an error that rolls the whole change back, never into a second event.
  const change = planChange(plan, row);
  await steps.finish(transitionAndEvents(change));
  return changedResult(plan, change);
}
