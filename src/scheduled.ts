import type { Deps } from './deps.js';
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
    receipts: () => retryDueReceipts(deps, receiptHandlers, { batchSize: 50 }),
    gocardlessEvents: () => recoverGoCardlessEventsStep(deps),
  };
  const results: Record<string, unknown> = {};
  for (const [name, step] of Object.entries(steps)) {
    try {
      results[name] = await step();
    } catch (error) {
      results[name] = { error: error instanceof Error ? error.message : String(error) };
      deps.logger.error({ job: `scheduled:${name}`, err: results[name] }, 'scheduled step failed');
    }
  }
  deps.logger.info({ job: 'scheduled', results }, 'scheduled run');
  return results;
}
