import type { DbOrTx } from '../db/client.js';
import { createGroupCommit, groupCommitOn, refusedByDatabase } from '../db/group-commit.js';
import { executePrepared, renderedStatement, type Statement } from '../db/prepared.js';
import type { AdjustmentChangeRow } from '../events/refund-events.js';
import { runWrite, type WriteSteps } from './write-executor.js';
import { ORDERING } from './status-rules.js';
import { changedResult, planAdjustmentEvents, planChange, planWrite, unchangedResult, type ApplyInput, type ApplyResult, type UpsertRow, type WritePlan } from './write-plan.js';
import {
  adjustmentsUpsert,
  fetchFenceAtSql,
  fetchFencesAtSql,
  fetchFenceSql,
  guardedUpsert,
  guardedUpsertMany,
  insertEventsSql,
  transitionAndEvents,
  transitionsAndEventsMany,
  unchangedSql,
  upsertRowJson,
} from './write-statements.js';

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
 * The order snapshots are written in: by payment, and for one payment by fence. Then cut
 * into rounds: round k holds the k-th snapshot of every payment that has one, so a round
 * never touches a row twice and is one statement, and a payment's later snapshots are
 * written after its earlier ones, as writes one after the other would be. Nearly every
 * flush is one round (distinct payments).
 */
function writeRounds(plans: WritePlan[]): number[][] {
  const keys = plans.map(paymentKey);
  const order = plans
    .map((_, index) => index)
    .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : plans[a]!.input.fence - plans[b]!.input.fence));
  const rounds: number[][] = [];
  const seen = new Map<string, number>();
  for (const index of order) {
    const round = seen.get(keys[index]!) ?? 0;
    seen.set(keys[index]!, round + 1);
    (rounds[round] ??= []).push(index);
  }
  return rounds;
}

/**
 * Guarantees 1 and 2 for each snapshot: the guarded upsert, one statement per round
 * (guardedUpsert for a lone snapshot, guardedUpsertMany for several, with the same
 * conflict clause and guard row by row). The unique index on (provider,
 * provider_payment_id) makes a concurrent insert turn into the update instead of a
 * second row. The WHERE refuses stale snapshots (status rules per provider) and no-op
 * ones (nothing tracked differs), so RETURNING yields a row exactly when a real change
 * was written. `previous` captures the row as it stood under the row lock the update
 * holds, which a separate SELECT could not see race-free. Rows are locked in one fixed
 * order (by payment), so concurrent batches (other processes) cannot deadlock.
 * Each snapshot's refunds and chargebacks follow its round's upsert (adjustmentsUpsert):
 * the payment row exists by then, and its lock, held since the upsert, serialises them.
 */
async function writeSnapshots(steps: WriteSteps, plans: WritePlan[], ownsCommit: boolean): Promise<ApplyResult[]> {
  const rounds = writeRounds(plans);
  const order = rounds.flat();
  const statements: Statement[] = [];
  const upsertAt: number[] = [];
  const adjustmentsAt: Array<number | null> = new Array(plans.length).fill(null);
  for (const round of rounds) {
    const lone = round.length === 1 ? plans[round[0]!]! : null;
    const upsert = lone
      ? guardedUpsert(lone.input.snapshot, lone.input.fence, lone.nextPollAt, lone.snapshotJson, lone.metadataJson)
      : guardedUpsertMany(`[${round.map((index) => upsertRowJsonOf(plans[index]!)).join(',')}]`);
    upsertAt.push(statements.push(upsert) - 1);
    for (const index of round) {
      const plan = plans[index]!;
      if (plan.adjustmentsJson !== null) adjustmentsAt[index] = statements.push(adjustmentsUpsert(plan.input.snapshot, plan.input.fence, plan.adjustmentsJson)) - 1;
    }
  }
  const answers = await steps.open<UpsertRow | AdjustmentChangeRow>(statements);
  const written: Array<UpsertRow | undefined> = new Array(plans.length);
  rounds.forEach((round, r) => {
    const rows = answers[upsertAt[r]!] as UpsertRow[];
    if (round.length === 1) {
      written[round[0]!] = rows[0];
      return;
    }
    const byKey = new Map(rows.map((row) => [`${String(row.provider)}\u0000${String(row.provider_payment_id)}`, row]));
    for (const index of round) written[index] = byKey.get(paymentKey(plans[index]!));
  });
  const adjusted = plans.map((_, index) => (adjustmentsAt[index] === null ? [] : (answers[adjustmentsAt[index]!] as AdjustmentChangeRow[])));
  const changes = plans.map((plan, index) => {
    const row = written[index];
    return row ? planChange(plan, row, adjusted[index]) : null;
  });
  // Refunds that moved while their payment did not: their events, without a transition.
  const adjustmentEvents = plans.map((plan, index) => (changes[index] ? [] : planAdjustmentEvents(plan, adjusted[index]!)));
  // A commit may skip the WAL flush only when it makes nothing durable but row locks: no
  // change, and (in a group) no re-poll request either, which any fence-ordered member may write.
  const mayCommitAsync =
    ownsCommit &&
    changes.every((change) => change === null) &&
    adjusted.every((rows) => rows.length === 0) &&
    (plans.length === 1 || plans.every((plan) => ORDERING[plan.input.snapshot.provider] !== 'fence'));

  // The transitions and their events commit with the changes or not at all (guarantee 4):
  // one statement for every change of the flush. The unique (payment_id, version) and
  // outbox dedupe keys turn any double write into an error that rolls the whole
  // transaction back, never into a second event.
  const changed = order.flatMap((index) => (changes[index] ? [changes[index]] : []));
  const closing: Statement[] = changed.length === 0 ? [] : changed.length === 1 ? [transitionAndEvents(changed[0]!)] : [transitionsAndEventsMany(changed)];
  for (const index of order) {
    if (changes[index]) continue;
    const plan = plans[index]!;
    const events = adjustmentEvents[index]!;
    const unchanged = renderedStatement(() => unchangedSql(plan.input.snapshot, plan.settleIds, mayCommitAsync));
    closing.push(...(events.length > 0 ? [renderedStatement(() => insertEventsSql(events)), unchanged] : [unchanged]));
  }
  await steps.finish(closing);
  const results: ApplyResult[] = new Array(plans.length);
  plans.forEach((plan, index) => {
    const change = changes[index];
    results[index] = change ? changedResult(plan, change) : unchangedResult(plan, adjustmentEvents[index]!);
  });
  return results;
}

const upsertRowJsonOf = (plan: WritePlan) => upsertRowJson(plan.input.snapshot, plan.input.fence, plan.nextPollAt, plan.snapshotJson, plan.metadataJson);
