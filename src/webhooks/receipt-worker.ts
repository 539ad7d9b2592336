import { errorMessage } from '../primitives/error-message.js';
import { processReceipts, type ProcessDeps, type ReceiptHandlers } from './process-receipts.js';
import { leaseDueReceipts } from './receipts.js';
import { sleep } from '../abortable-sleep.js';

export interface ReceiptWorkerOptions {
  batchSize?: number;
  /** How long a claim lasts before another process may take the receipt over. */
  leaseMs?: number;
  idleMs?: number;
  signal: AbortSignal;
}

/** One pass: claim what is due and process it. Returns how many receipts it claimed. */
export async function retryDueReceipts(deps: ProcessDeps, handlers: ReceiptHandlers, options: { batchSize?: number; leaseMs?: number } = {}) {
  const started = performance.now();
  const receipts = await leaseDueReceipts(deps.db, { limit: options.batchSize ?? 100, leaseMs: options.leaseMs ?? 60_000 });
  if (receipts.length === 0) return { claimed: 0, processed: 0, ignored: 0, pending: 0, failed: 0 };
  const totals = await processReceipts(deps, handlers, receipts);
  deps.logger.info({ job: 'receipt-retry', claimed: receipts.length, ...totals, ms: Math.round(performance.now() - started) }, 'receipt retry pass');
  return { claimed: receipts.length, ...totals };
}

/** Keeps retrying pending receipts until the signal aborts. */
export async function runReceiptWorker(deps: ProcessDeps, handlers: ReceiptHandlers, options: ReceiptWorkerOptions): Promise<void> {
  const idleMs = options.idleMs ?? 1000;
  while (!options.signal.aborted) {
    let claimed = 0;
    try {
      ({ claimed } = await retryDueReceipts(deps, handlers, options));
    } catch (error) {
      deps.logger.error({ job: 'receipt-retry', err: errorMessage(error) }, 'receipt retry pass failed');
    }
    if (claimed === 0) await sleep(idleMs, options.signal);
  }
}

