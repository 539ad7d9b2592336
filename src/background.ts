import { runBankScheduler } from './bank/scheduler.js';
import type { Deps } from './deps.js';
import { runRelay } from './events/relay.js';
import { runMollieSweeper } from './reconciliation/mollie-sweep.js';
import { runPollerWatch } from './poller/fleet.js';
import { runPoller } from './poller/poller.js';
import { runRetention } from './retention/retention.js';
import { runGoCardlessEventRecovery } from './reconciliation/gocardless-recovery.js';
import { receiptHandlers } from './webhooks/handlers.js';
import { runReceiptWorker } from './webhooks/receipt-worker.js';

/**
 * The long-running loops of a Node gateway process. Each takes the shared abort
 * signal and returns when it fires; `stopBackgroundJobs` waits for all of them,
 * so SIGTERM finishes in-flight work instead of cutting it.
 */
export interface BackgroundJobs {
  stop(): Promise<void>;
}

export function startBackgroundJobs(deps: Deps): BackgroundJobs {
  const controller = new AbortController();
  const { signal } = controller;
  const jobs: Promise<void>[] = [
    runReceiptWorker(deps, receiptHandlers, { signal }),
    runPoller(deps, { signal }),
    // Watches the whole fleet's polling, which this process's poller cannot vouch for.
    runPollerWatch(deps, { signal }),
    runRelay(deps, { signal }),
    runGoCardlessEventRecovery(deps, { signal }),
    runMollieSweeper(deps, { signal }),
    runRetention(deps, { signal }),
    runBankScheduler(deps, { signal }),
  ];
  return {
    async stop() {
      controller.abort();
      await Promise.allSettled(jobs);
    },
  };
}
