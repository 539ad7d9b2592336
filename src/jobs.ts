import { checkDueAccounts, runAccountChecks } from './accounts/check-job.js';
import { bankSchedulerStep, runBankScheduler } from './bank/scheduler.js';
import type { Deps } from './deps.js';
import { relayOnce, runRelay } from './events/relay.js';
import { checkPollerFleet, runPollerWatch } from './poller/fleet.js';
import { pollOnce, runPoller } from './poller/poller.js';
import { recoverGoCardlessEventsStep, runGoCardlessEventRecovery } from './reconciliation/gocardless-recovery.js';
import { runDueMollieSweeps, runMollieSweeper } from './reconciliation/mollie-sweep.js';
import { runDueRetention, runRetention } from './retention/retention.js';
import { receiptHandlers } from './webhooks/handlers.js';
import { retryDueReceipts, runReceiptWorker } from './webhooks/receipt-worker.js';

/**
 * A background job, written once for both runtimes: Node runs its loop until shutdown
 * (src/background.ts), a Workers Cron Trigger runs one bounded step of it per invocation
 * (src/scheduled.ts). Every job is safe in several processes at once (leases, claims,
 * locks), so the two may run side by side against one database.
 */
export interface BackgroundJob {
  /** Names its result in a scheduled run's log line. */
  readonly name: string;
  /** Whether the configuration turns it on; when off, neither runtime runs it. */
  enabled(deps: Deps): boolean;
  /** One bounded step, small enough for a Worker invocation; the next cron run continues. */
  step(deps: Deps): Promise<unknown>;
  /** The Node loop, with its own pacing (idle pauses, intervals, jitter, leases); returns when the signal aborts. */
  loop(deps: Deps, signal: AbortSignal): Promise<void>;
}

const always = () => true;

/** Every background job, in the order a cron run steps through them. */
export const BACKGROUND_JOBS: readonly BackgroundJob[] = [
  {
    name: 'poll',
    enabled: always,
    // Bounded so the whole run fits a Worker invocation; the next cron run continues.
    step: (deps) => pollOnce(deps, { limit: 25 }),
    loop: (deps, signal) => runPoller(deps, { signal }),
  },
  {
    // Watches the whole fleet's polling, which this process's poller cannot vouch for: a
    // Worker beside Node processes whose pollers died still says so.
    name: 'pollerWatch',
    enabled: always,
    step: (deps) => checkPollerFleet(deps, deps.env.POLLER_STALLED_AFTER_MS),
    loop: (deps, signal) => runPollerWatch(deps, { signal }),
  },
  {
    name: 'relay',
    // Without sinks the step does nothing and the loop says once that the pull API serves the events.
    enabled: always,
    step: (deps) => relayOnce(deps),
    loop: (deps, signal) => runRelay(deps, { signal }),
  },
  {
    name: 'receipts',
    enabled: always,
    step: (deps) => retryDueReceipts(deps, receiptHandlers, { batchSize: 50 }),
    loop: (deps, signal) => runReceiptWorker(deps, receiptHandlers, { signal }),
  },
  {
    name: 'mollieSweep',
    enabled: (deps) => Boolean(deps.providers.mollie) && deps.env.MOLLIE_SWEEP_INTERVAL_MS > 0,
    // The default account and a few due stored accounts; the next cron run continues.
    step: (deps) => runDueMollieSweeps(deps),
    loop: (deps, signal) => runMollieSweeper(deps, { signal }),
  },
  {
    name: 'gocardlessEvents',
    enabled: (deps) => deps.env.GOCARDLESS_EVENTS_INTERVAL_MS !== 0,
    step: (deps) => recoverGoCardlessEventsStep(deps),
    loop: (deps, signal) => runGoCardlessEventRecovery(deps, { signal }),
  },
  {
    name: 'retention',
    enabled: (deps) => deps.env.RETENTION_INTERVAL_MS > 0,
    // A short budget: the next due run continues where this one stopped.
    step: (deps) => runDueRetention(deps, { budgetMs: 5000 }),
    loop: (deps, signal) => runRetention(deps, { signal }),
  },
  {
    // Every stored account checked once per ACCOUNT_CHECK_INTERVAL_MS fleet-wide, traffic or not.
    // Without a key no stored credentials can be opened (and none can have been stored).
    name: 'accountChecks',
    enabled: (deps) => Boolean(deps.env.ACCOUNT_SECRETS_KEY),
    step: (deps) => checkDueAccounts(deps, { limit: 25 }),
    loop: (deps, signal) => runAccountChecks(deps, { signal }),
  },
  {
    name: 'bank',
    enabled: (deps) => Boolean(deps.bank),
    step: (deps) => bankSchedulerStep(deps, { limit: 20 }),
    loop: (deps, signal) => runBankScheduler(deps, { signal }),
  },
];
