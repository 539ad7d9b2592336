import type { Db } from '../db/client.js';
import { claimSweepRun, recordSweepRun } from '../db/queries/sweeps.js';
import { deleteDeliveredAttempts, deleteOldAuditEntries, deleteOldDeliveryAttempts, deleteOldWebhookRequests, deleteSettledOutboxEvents, deleteSettledReceipts } from '../db/queries/retention.js';
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

type Counted = 'receipts' | 'deliveries' | 'attempts' | 'outbox' | 'audit' | 'requests';
export type RetentionSummary = Record<Counted, number> & { complete: boolean; durationMs: number };

interface Rule {
  /** The policy setting that says after how long. */
  policy: keyof RetentionPolicy;
  counted: Counted;
  /** The metric's label. */
  table: string;
  prune: (db: Db, params: { before: Date; limit: number }) => Promise<number>;
}

const RULES: Rule[] = [
  // Deliveries first: an outbox event goes only once its attempts are settled.
  { policy: 'deliveriesDays', counted: 'deliveries', table: 'event_deliveries', prune: deleteDeliveredAttempts },
  // Each try at a delivery ages like a delivered delivery (a delivered one's go with it).
  { policy: 'deliveriesDays', counted: 'attempts', table: 'event_delivery_attempts', prune: deleteOldDeliveryAttempts },
  { policy: 'receiptsDays', counted: 'receipts', table: 'webhook_receipts', prune: deleteSettledReceipts },
  { policy: 'outboxDays', counted: 'outbox', table: 'outbox', prune: deleteSettledOutboxEvents },
  { policy: 'auditDays', counted: 'audit', table: 'audit_log', prune: deleteOldAuditEntries },
  { policy: 'requestsDays', counted: 'requests', table: 'webhook_requests', prune: deleteOldWebhookRequests },
];

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
  const summary: RetentionSummary = { receipts: 0, deliveries: 0, attempts: 0, outbox: 0, audit: 0, requests: 0, complete: true, durationMs: 0 };
  const now = deps.clock.now().getTime();
  const outOfTime = () => input.signal?.aborted || performance.now() - started > (input.budgetMs ?? 60_000);
  for (const rule of RULES) {
    const days = input.policy[rule.policy];
    if (days <= 0) continue;
    const before = new Date(now - days * DAY_MS);
    for (;;) {
      if (outOfTime()) {
        summary.complete = false;
        break;
      }
      const deleted = await rule.prune(deps.db, { before, limit: input.batchSize });
      summary[rule.counted] += deleted;
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
  for (const rule of RULES) deps.metrics.retentionDeleted.inc({ table: rule.table }, summary[rule.counted]);
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
