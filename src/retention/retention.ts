import type { Db } from '../db/client.js';
import { claimSweepRun, recordSweepRun } from '../db/queries/sweeps.js';
import { deleteDeliveredAttempts, deleteOldAuditEntries, deleteOldWebhookRequests, deleteSettledOutboxEvents, deleteSettledReceipts } from '../db/queries/retention.js';
import { sleep } from '../abortable-sleep.js';
import type { Deps } from '../deps.js';
import { errorMessage } from '../primitives/error-message.js';

const DAY_MS = 86_400_000;

/** What each retention rule deletes, and after how long; 0 days keeps a table whole. */
export interface RetentionPolicy {
  receiptsDays: number;
  deliveriesDays: number;
  outboxDays: number;
  auditDays: number;
  requestsDays: number;
}

type Rule = keyof RetentionPolicy;

const RULES: Record<Rule, (db: Db, params: { before: Date; limit: number }) => Promise<number>> = {
  // Deliveries first: an outbox event goes only once its attempts are settled.
  deliveriesDays: deleteDeliveredAttempts,
  receiptsDays: deleteSettledReceipts,
  outboxDays: deleteSettledOutboxEvents,
  auditDays: deleteOldAuditEntries,
  requestsDays: deleteOldWebhookRequests,
};

type Counted = 'receipts' | 'deliveries' | 'outbox' | 'audit' | 'requests';
export type RetentionSummary = Record<Counted, number> & { complete: boolean; durationMs: number };

const SUMMARY_KEY: Record<Rule, Counted> = { receiptsDays: 'receipts', deliveriesDays: 'deliveries', outboxDays: 'outbox', auditDays: 'audit', requestsDays: 'requests' };

/** What a retention run uses. */
export type RetentionDeps = Pick<Deps, 'db' | 'env' | 'clock' | 'metrics' | 'logger'>;

export function retentionPolicy(env: Deps['env']): RetentionPolicy {
  return {
    receiptsDays: env.RETENTION_RECEIPTS_DAYS,
    deliveriesDays: env.RETENTION_DELIVERIES_DAYS,
    outboxDays: env.RETENTION_OUTBOX_DAYS,
    auditDays: env.RETENTION_AUDIT_DAYS,
    requestsDays: env.RETENTION_REQUESTS_DAYS,
  };
}

/**
 * Deletes what the policy says has expired, in batches of `batchSize` rows, each its own
 * short statement (no long lock, and autovacuum reclaims the space as it goes). Stops at
 * `budgetMs` or on the signal; the next run continues where this one stopped.
 */
export async function pruneExpiredRows(
  deps: Pick<Deps, 'db' | 'clock'>,
  input: { policy: RetentionPolicy; batchSize: number; budgetMs?: number; signal?: AbortSignal },
): Promise<RetentionSummary> {
  const started = performance.now();
  const summary: RetentionSummary = { receipts: 0, deliveries: 0, outbox: 0, audit: 0, requests: 0, complete: true, durationMs: 0 };
  const now = deps.clock.now().getTime();
  const outOfTime = () => input.signal?.aborted || performance.now() - started > (input.budgetMs ?? 60_000);
  for (const [rule, deleteOne] of Object.entries(RULES) as Array<[Rule, (typeof RULES)[Rule]]>) {
    const days = input.policy[rule];
    if (days <= 0) continue;
    const before = new Date(now - days * DAY_MS);
    for (;;) {
      if (outOfTime()) {
        summary.complete = false;
        break;
      }
      const deleted = await deleteOne(deps.db, { before, limit: input.batchSize });
      summary[SUMMARY_KEY[rule]] += deleted;
      if (deleted < input.batchSize) break;
    }
  }
  summary.durationMs = Math.round(performance.now() - started);
  return summary;
}

const CLAIM = { provider: 'gateway', account: 'fleet', name: 'retention' };

/**
 * Runs retention if it is due fleet-wide: the claim row (the same conditional upsert the
 * Mollie sweep uses) lets one process per RETENTION_INTERVAL_MS through, however many run.
 * Returns null when another process has the current interval.
 */
export async function runDueRetention(deps: RetentionDeps, options: { signal?: AbortSignal; budgetMs?: number } = {}): Promise<RetentionSummary | null> {
  const claim = await claimSweepRun(deps.db, { ...CLAIM, intervalMs: deps.env.RETENTION_INTERVAL_MS });
  if (!claim) return null;
  const summary = await pruneExpiredRows(deps, {
    policy: retentionPolicy(deps.env),
    batchSize: deps.env.RETENTION_BATCH_SIZE,
    budgetMs: options.budgetMs,
    signal: options.signal,
  });
  await recordSweepRun(deps.db, { ...CLAIM, completedFrom: null, summary: { ...summary, startedAt: claim.startedAt.toISOString() } });
  deps.metrics.retentionDeleted.inc({ table: 'webhook_receipts' }, summary.receipts);
  deps.metrics.retentionDeleted.inc({ table: 'event_deliveries' }, summary.deliveries);
  deps.metrics.retentionDeleted.inc({ table: 'outbox' }, summary.outbox);
  deps.metrics.retentionDeleted.inc({ table: 'audit_log' }, summary.audit);
  deps.metrics.retentionDeleted.inc({ table: 'webhook_requests' }, summary.requests);
  deps.logger.info({ job: 'retention', ...summary }, summary.complete ? 'retention pass complete' : 'retention pass stopped at its time budget');
  return summary;
}

/** The Node loop: checks once a minute (at most) whether a fleet-wide run is due. */
export async function runRetention(deps: RetentionDeps, options: { signal: AbortSignal }): Promise<void> {
  const intervalMs = deps.env.RETENTION_INTERVAL_MS;
  if (intervalMs <= 0) return;
  while (!options.signal.aborted) {
    try {
      await runDueRetention(deps, { signal: options.signal });
    } catch (error) {
      deps.logger.error({ job: 'retention', err: errorMessage(error) }, 'retention pass failed');
    }
    await sleep(Math.min(intervalMs, 60_000), options.signal);
  }
}
