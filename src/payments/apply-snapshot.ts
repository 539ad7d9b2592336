import type { DbOrTx } from '../db/client.js';
import { createGroupCommit, groupCommitOn, refusedByDatabase } from '../db/group-commit.js';
import { executePrepared, renderedStatement, type Statement } from '../db/prepared.js';
import type { AdjustmentChangeRow } from '../events/refund-events.js';
import { runWrite, type WriteSteps } from './write-executor.js';
import { ORDERING } from './status-rules.js';
import { changedResult, planAdjustmentEvents, planChange, planWrite, unchangedResult, type ApplyInput, type ApplyResult, type UpsertRow, type WritePlan } from './write-plan.js';
import { adjustmentsUpsert, fetchFenceAtSql, fetchFencesAtSql, fetchFenceSql, guardedUpsert, insertEventsSql, transitionAndEvents, unchangedSql } from './write-statements.js';

export type { ApplyInput, ApplyResult, SyncSource } from './write-plan.js';
// The statements, for their tests and the benchmark's database ceiling (which runs exactly what the gateway runs).
export { guardedUpsert, guardedUpsertSql, transitionAndEvents, transitionAndEventsSql, unchangedSql } from './write-statements.js';

export interface FetchFence {
  fence: number;
  at: number;
}

/**
 * The fence, and the database's time as it was taken (milliseconds): when the fetch
 * started. On the pool, fetches starting together share one round trip (group commit).
 */
export async function takeFetchFenceAt(db: DbOrTx): Promise<FetchFence> {
  const batcher = groupCommitOn(db, 'fences', (maxBatch) => createGroupCommit((calls: null[]) => takeFetchFencesAt(db, calls.length), { maxBatch }));
  if (batcher) return batcher.submit(null);
  const rows = await executePrepared<{ fence: number; at: number | string }>(db, fetchFenceAtSql());
  return { fence: Number(rows[0]!.fence), at: Number(rows[0]!.at) };
}

async function takeFetchFencesAt(db: DbOrTx, count: number): Promise<FetchFence[]> {
  const rows = await executePrepared<{ fence: number; at: number | string }>(db, fetchFencesAtSql(count));
  if (rows.length !== count) throw new Error(`asked for ${count} fences, got ${rows.length}`);
  return rows.map((row) => ({ fence: Number(row.fence), at: Number(row.at) }));
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
 *
 * On the pool, the snapshots ready while a write is in flight go together as the next
 * one (group commit): one transaction, still two round trips, one commit. A batch the
 * database refuses (one bad member) is written again one snapshot at a time, so every
 * snapshot is applied with all its rows or not at all, and fails only for itself.
 */
export async function applySnapshot(db: DbOrTx, input: ApplyInput): Promise<ApplyResult> {
  const plan = planWrite(input);
  const batcher = groupCommitOn(db, 'snapshots', (maxBatch) =>
    createGroupCommit((plans: WritePlan[]) => runWrite(db, (steps, ownsCommit) => writeSnapshots(steps, plans, ownsCommit)), { maxBatch, retryAlone: refusedByDatabase }),
  );
  if (batcher) return batcher.submit(plan);
  const [result] = await runWrite(db, (steps, ownsCommit) => writeSnapshots(steps, [plan], ownsCommit));
  return result!;
}

const paymentKey = (plan: WritePlan) => `${plan.input.snapshot.provider}\u0000${plan.input.snapshot.providerPaymentId}`;

/**
 * Writes in a fixed order: by payment, so concurrent batches (other processes) lock rows in
 * the same order and cannot deadlock; and, for one payment, by fence. Each snapshot is its
 * own guarded upsert, run in turn in the one transaction, so two snapshots of a payment
 * give exactly what two writes one after the other would (a single multi-row upsert could
 * not touch the row twice); the transitions and events follow in the same order.
 */
function writeOrder(plans: WritePlan[]): number[] {
  const keys = plans.map(paymentKey);
  return plans
    .map((_, index) => index)
    .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : plans[a]!.input.fence - plans[b]!.input.fence));
}

async function writeSnapshots(steps: WriteSteps, plans: WritePlan[], ownsCommit: boolean): Promise<ApplyResult[]> {
  const order = writeOrder(plans);
  // Guarantees 1 and 2 in one statement per snapshot. The unique index on (provider,
  // provider_payment_id) makes a concurrent insert turn into this update instead of a
  // second row. The WHERE refuses stale snapshots (status rules per provider) and
  // no-op ones (nothing tracked differs), so RETURNING yields a row exactly when a
  // real change was written. `previous` captures the row as it stood under the row
  // lock the update holds, which a separate SELECT could not see race-free.
  // Each snapshot's refunds and chargebacks follow its payment's upsert (adjustmentsUpsert):
  // the payment row exists by then, and its lock, held since the upsert, serialises them.
  const statements: Statement[] = [];
  const at: Array<{ upsert: number; adjustments: number | null }> = [];
  for (const index of order) {
    const plan = plans[index]!;
    const upsert = statements.push(guardedUpsert(plan.input.snapshot, plan.input.fence, plan.nextPollAt, plan.snapshotJson, plan.metadataJson)) - 1;
    const adjustments = plan.adjustmentsJson === null ? null : statements.push(adjustmentsUpsert(plan.input.snapshot, plan.input.fence, plan.adjustmentsJson)) - 1;
    at.push({ upsert, adjustments });
  }
  const answers = await steps.open<UpsertRow | AdjustmentChangeRow>(statements);
  const adjusted = at.map((position) => (position.adjustments === null ? [] : (answers[position.adjustments] as AdjustmentChangeRow[])));
  const changes = order.map((index, n) => {
    const row = answers[at[n]!.upsert]![0] as UpsertRow | undefined;
    return row ? planChange(plans[index]!, row, adjusted[n]) : null;
  });
  // Refunds that moved while their payment did not: their events, without a transition.
  const adjustmentEvents = order.map((index, n) => (changes[n] ? [] : planAdjustmentEvents(plans[index]!, adjusted[n]!)));
  // A commit may skip the WAL flush only when it makes nothing durable but row locks: no
  // change, and (in a group) no re-poll request either, which any fence-ordered member may write.
  const mayCommitAsync =
    ownsCommit &&
    changes.every((change) => change === null) &&
    adjusted.every((rows) => rows.length === 0) &&
    (plans.length === 1 || plans.every((plan) => ORDERING[plan.input.snapshot.provider] !== 'fence'));

  // The transition and its events commit with the change or not at all (guarantee 4).
  // The unique (payment_id, version) and outbox dedupe keys turn any double write into
  // an error that rolls the whole change back, never into a second event.
  await steps.finish(
    order.flatMap((index, n) => {
      const plan = plans[index]!;
      const change = changes[n];
      if (change) return [transitionAndEvents(change)];
      const events = adjustmentEvents[n]!;
      const unchanged = renderedStatement(() => unchangedSql(plan.input.snapshot, plan.settleIds, mayCommitAsync));
      return events.length > 0 ? [renderedStatement(() => insertEventsSql(events)), unchanged] : [unchanged];
    }),
  );
  const results: ApplyResult[] = new Array(plans.length);
  order.forEach((index, n) => {
    const change = changes[n];
    results[index] = change ? changedResult(plans[index]!, change) : unchangedResult(plans[index]!, adjustmentEvents[n]!);
  });
  return results;
}
