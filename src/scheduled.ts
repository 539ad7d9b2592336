import { bankSchedulerStep } from './bank/scheduler.js';
import type { Deps } from './deps.js';
import { relayOnce } from './events/relay.js';
import { runDueMollieSweep } from './payments/mollie-sweep.js';
import { checkPollerFleet } from './poller/fleet.js';
import { pollOnce } from './poller/poller.js';
import { errorMessage } from './primitives/error-message.js';
import { runDueRetention } from './retention/retention.js';
import { recoverGoCardlessEventsStep } from './webhooks/gocardless-recovery.js';
import { receiptHandlers } from './webhooks/handlers.js';
import { retryDueReceipts } from './webhooks/receipt-worker.js';

/**
 * One bounded step of every background job, for runtimes without long-running loops
 * (a Workers Cron Trigger). Each step is small enough to fit a Worker's limits; steps
 * that fail are logged and the others still run.
 */
export async function runScheduledStep(deps: Deps): Promise<Record<string, unknown>> {
  const steps: Record<string, () => Promise<unknown>> = {
    // Bounded so the whole run fits a Worker invocation; the next cron run continues.
    poll: () => pollOnce(deps, { limit: 25 }),
    // A cron run that polls also watches: a Worker beside Node processes whose pollers died still says so.
    pollerWatch: () => checkPollerFleet(deps, deps.env.POLLER_STALLED_AFTER_MS),
    relay: () => relayOnce(deps),
    receipts: () => retryDueReceipts(deps, receiptHandlers, { batchSize: 50 }),
    mollieSweep: () =>
      deps.providers.mollie && deps.env.MOLLIE_SWEEP_INTERVAL_MS > 0
        ? runDueMollieSweep(deps, { account: 'default', intervalMs: deps.env.MOLLIE_SWEEP_INTERVAL_MS, windowMs: deps.env.MOLLIE_SWEEP_WINDOW_MS })
        : Promise.resolve(null),
    gocardlessEvents: () => recoverGoCardlessEventsStep(deps),
    // A short budget: the next due run continues where this one stopped.
    retention: () => (deps.env.RETENTION_INTERVAL_MS > 0 ? runDueRetention(deps, { budgetMs: 5000 }) : Promise.resolve(null)),
    bank: () => (deps.bank ? bankSchedulerStep(deps, { limit: 20 }) : Promise.resolve(null)),
  };
  const results: Record<string, unknown> = {};
  for (const [name, step] of Object.entries(steps)) {
    try {
      results[name] = await step();
    } catch (error) {
      results[name] = { error: errorMessage(error) };
      deps.logger.error({ job: `scheduled:${name}`, err: results[name] }, 'scheduled step failed');
    }
  }
  deps.logger.info({ job: 'scheduled', results }, 'scheduled run');
  return results;
}
