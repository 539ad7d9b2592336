/**
 * The Mollie reconciliation sweep: the net under every missed webhook. It pages Mollie's
 * payment list newest first down to a cutoff, compares each payment with the stored row,
 * and syncs only those that differ or that we have never seen, through syncPayment
 * (source 'sweep'). The list entry only selects what to sync; the write still comes from
 * syncPayment's own fenced fetch, like every other trigger.
 */
import { claimSweepRun, dueStoredAccounts, getTrackedStates, recordSweepRun, sweepDue } from '../db/queries/sweeps.js';
import type { Deps } from '../deps.js';
import type { TrackedState } from '../events/payment-events.js';
import { LockBusyError } from '../lock/locker.js';
import { errorMessage } from '../primitives/error-message.js';
import { forEachLimited } from '../primitives/for-each-limited.js';
import { isMollieProvider } from '../providers/mollie/client.js';
import { ProviderError, type PaymentSnapshot } from '../providers/types.js';
import { syncPayment, UnknownProviderError, type SyncDeps } from '../payments/sync-payment.js';
import { sleep } from '../abortable-sleep.js';

const PAGE = 250;
/** Syncs in flight at once: the sweep is background work and must leave Mollie's rate limit to webhooks. */
const DEFAULT_CONCURRENCY = 4;
/** A payment someone else is syncing right now needs no sweep. */
const SWEEP_LOCK_WAIT_MS = 250;
/** After an outage the cutoff reaches back to the last complete run, but never further than this. */
export const SWEEP_MAX_LOOKBACK_MS = 30 * 24 * 3_600_000;
/** Mollie's clock and ours may disagree a little about createdAt. */
const WATERMARK_OVERLAP_MS = 5 * 60_000;

export interface SweepInput {
  account: string;
  /** Payments created before this are not looked at. */
  cutoff: Date;
  signal?: AbortSignal;
  concurrency?: number;
  /** Payments per list page, compared with one query. Default 250, Mollie's maximum. */
  pageSize?: number;
}

export interface SweepSummary {
  account: string;
  cutoff: string;
  /** Payments Mollie listed since the cutoff. */
  listed: number;
  /** Listed and identical to the stored row: no fetch. */
  inSync: number;
  /** Synced because they differed or were unknown; split by what the sync did. */
  changed: number;
  unchanged: number;
  notFound: number;
  /** Held by another trigger at that moment (it is syncing them anyway). */
  busy: number;
  failed: number;
  /** False when the sweep stopped early (listing failed, Mollie throttled or down, aborted). */
  complete: boolean;
  error?: string;
  durationMs: number;
}

function differs(listed: PaymentSnapshot, stored: TrackedState | undefined): boolean {
  return (
    !stored ||
    stored.status !== listed.status ||
    stored.providerStatus !== listed.providerStatus ||
    stored.amountMinor !== listed.amount.minor ||
    stored.currency !== listed.amount.currency ||
    stored.refundedMinor !== listed.refundedMinor ||
    stored.chargedBackMinor !== listed.chargedBackMinor
  );
}

/** One pass over Mollie's recent payments. Never throws for Mollie trouble: the summary says what happened. */
export async function sweepMollie(deps: SyncDeps, input: SweepInput): Promise<SweepSummary> {
  const provider = deps.providers.mollie;
  if (!isMollieProvider(provider)) throw new UnknownProviderError('mollie');
  const started = performance.now();
  const summary: SweepSummary = {
    account: input.account,
    cutoff: input.cutoff.toISOString(),
    listed: 0,
    inSync: 0,
    changed: 0,
    unchanged: 0,
    notFound: 0,
    busy: 0,
    failed: 0,
    complete: true,
    durationMs: 0,
  };
  const count = (outcome: 'inSync' | 'changed' | 'unchanged' | 'notFound' | 'busy' | 'failed', label: string) => {
    summary[outcome]++;
    deps.metrics.sweepPayments.inc({ provider: 'mollie', outcome: label });
  };
  // Set when Mollie says "not now": the rest of the run would only make it worse.
  let stop: string | null = null;

  async function reconcile(page: PaymentSnapshot[]) {
    const stored = await getTrackedStates(deps.db, 'mollie', page.map((p) => p.providerPaymentId));
    const stale: PaymentSnapshot[] = [];
    for (const listed of page) {
      if (differs(listed, stored.get(listed.providerPaymentId))) stale.push(listed);
      else count('inSync', 'in_sync');
    }
    await forEachLimited(stale, input.concurrency ?? DEFAULT_CONCURRENCY, async (listed) => {
      if (stop || input.signal?.aborted) return;
      try {
        const result = await syncPayment(deps, {
          provider: 'mollie',
          account: input.account,
          providerPaymentId: listed.providerPaymentId,
          source: 'sweep',
          lockWaitMs: SWEEP_LOCK_WAIT_MS,
        });
        if (result.outcome === 'changed') count('changed', 'changed');
        else if (result.outcome === 'unchanged') count('unchanged', 'unchanged');
        else count('notFound', 'not_found');
      } catch (error) {
        if (error instanceof LockBusyError) return count('busy', 'busy');
        count('failed', 'failed');
        if (error instanceof ProviderError && error.retryable) stop ??= `${error.code}: ${error.message}`;
        deps.logger.warn(
          { job: 'mollie-sweep', paymentId: listed.providerPaymentId, err: errorMessage(error) },
          'sweep could not sync a payment',
        );
      }
    });
  }

  const pageSize = input.pageSize ?? PAGE;
  try {
    let page: PaymentSnapshot[] = [];
    for await (const listed of provider.listRecentPayments(input.account, { cutoff: input.cutoff, limit: pageSize, signal: input.signal })) {
      summary.listed++;
      page.push(listed);
      if (page.length >= pageSize) {
        await reconcile(page);
        page = [];
      }
      if (stop || input.signal?.aborted) break;
    }
    if (!stop && !input.signal?.aborted) await reconcile(page);
  } catch (error) {
    stop ??= error instanceof Error ? `${error.name === 'ProviderError' ? (error as ProviderError).code : error.name}: ${error.message}` : String(error);
  }
  if (input.signal?.aborted) stop ??= 'aborted';
  if (stop) {
    summary.complete = false;
    summary.error = stop;
  }
  summary.durationMs = Math.round(performance.now() - started);
  return summary;
}

/** Where the cutoff lies for a run starting at `now`: the window, stretched back to the last complete run. */
export function sweepCutoff(now: Date, windowMs: number, watermark: Date | null): Date {
  const windowCutoff = now.getTime() - windowMs;
  if (!watermark) return new Date(windowCutoff);
  const sinceWatermark = watermark.getTime() - WATERMARK_OVERLAP_MS;
  return new Date(Math.max(now.getTime() - SWEEP_MAX_LOOKBACK_MS, Math.min(windowCutoff, sinceWatermark)));
}

/**
 * Runs the sweep for an account if it is due fleet-wide (see claimSweepRun). Returns the
 * summary, or null when another process has the current interval.
 */
export async function runDueMollieSweep(
  deps: SyncDeps,
  input: { account: string; intervalMs: number; windowMs: number; signal?: AbortSignal },
): Promise<SweepSummary | null> {
  const key = { provider: 'mollie', account: input.account, name: 'sweep' };
  const claim = await claimSweepRun(deps.db, { ...key, intervalMs: input.intervalMs });
  if (!claim) return null;
  const cutoff = sweepCutoff(claim.startedAt, input.windowMs, claim.watermark);
  const summary = await sweepMollie(deps, { account: input.account, cutoff, signal: input.signal });
  // Only a complete run vouches for everything created since its cutoff.
  await recordSweepRun(deps.db, { ...key, completedFrom: summary.complete ? claim.startedAt : null, summary: { ...summary, startedAt: claim.startedAt.toISOString() } });
  deps.metrics.sweepRuns.inc({ provider: 'mollie', outcome: summary.complete ? 'complete' : 'incomplete' });
  const log = summary.complete ? deps.logger.info.bind(deps.logger) : deps.logger.warn.bind(deps.logger);
  log({ job: 'mollie-sweep', provider: 'mollie', ...summary }, summary.complete ? 'Mollie sweep complete' : 'Mollie sweep stopped early');
  return summary;
}

/** Between two accounts' runs, at least this long (many accounts spread over a short interval). */
const MIN_ACCOUNT_GAP_MS = 250;

export type SweeperDeps = SyncDeps & Pick<Deps, 'env' | 'accounts'>;

/** The accounts the sweep covers: the env's `default` (when configured) and every active stored account. */
export async function sweptAccounts(deps: SweeperDeps): Promise<string[]> {
  const provider = deps.providers.mollie;
  if (!isMollieProvider(provider)) return [];
  const stored = await deps.accounts.activeNames('mollie');
  return [...(provider.hasAccount('default') ? ['default'] : []), ...stored];
}

/**
 * One bounded step for a Workers cron run: the default account's sweep if due, then up to
 * `limit` stored accounts whose sweep is due (the least recently visited first).
 */
export async function runDueMollieSweeps(deps: SweeperDeps, options: { limit?: number } = {}): Promise<SweepSummary[]> {
  const provider = deps.providers.mollie;
  const intervalMs = deps.env.MOLLIE_SWEEP_INTERVAL_MS;
  if (intervalMs <= 0 || !isMollieProvider(provider)) return [];
  const windowMs = deps.env.MOLLIE_SWEEP_WINDOW_MS;
  const stored = await dueStoredAccounts(deps.db, { provider: 'mollie', cursorName: 'sweep', due: sweepDue, limit: options.limit ?? 3 });
  const summaries: SweepSummary[] = [];
  for (const account of [...(provider.hasAccount('default') ? ['default'] : []), ...stored]) {
    const summary = await runDueMollieSweep(deps, { account, intervalMs, windowMs });
    if (summary) summaries.push(summary);
  }
  return summaries;
}

/**
 * The periodic sweep of a Node process, for the default account and every active stored
 * account: the accounts are visited one at a time, `interval / accounts` apart (at most a
 * minute), so N accounts' runs are spread over the interval rather than all at once; the
 * claim in the database (per account, its own cursor) makes the fleet run each account
 * once per MOLLIE_SWEEP_INTERVAL_MS. `account` pins it to one account. Returns at once
 * when Mollie is not configured or the interval is 0.
 */
export async function runMollieSweeper(deps: SweeperDeps, options: { signal: AbortSignal; account?: string }): Promise<void> {
  const intervalMs = deps.env.MOLLIE_SWEEP_INTERVAL_MS;
  const provider = deps.providers.mollie;
  if (intervalMs <= 0 || !isMollieProvider(provider)) return;
  if (options.account !== undefined && !provider.hasAccount(options.account)) return;
  const checkEveryMs = Math.min(intervalMs, 60_000);
  while (!options.signal.aborted) {
    let accounts: string[] = [];
    try {
      accounts = options.account !== undefined ? [options.account] : await sweptAccounts(deps);
    } catch (error) {
      deps.logger.error({ job: 'mollie-sweep', err: errorMessage(error) }, 'Mollie sweep could not list the accounts');
    }
    if (accounts.length === 0) {
      await sleep(checkEveryMs, options.signal);
      continue;
    }
    const gapMs = Math.max(Math.min(MIN_ACCOUNT_GAP_MS, checkEveryMs), Math.min(checkEveryMs, intervalMs / accounts.length));
    for (const account of accounts) {
      if (options.signal.aborted) break;
      try {
        await runDueMollieSweep(deps, { account, intervalMs, windowMs: deps.env.MOLLIE_SWEEP_WINDOW_MS, signal: options.signal });
      } catch (error) {
        deps.metrics.sweepRuns.inc({ provider: 'mollie', outcome: 'error' });
        deps.logger.error({ job: 'mollie-sweep', account, err: errorMessage(error) }, 'Mollie sweep failed');
      }
      await sleep(gapMs, options.signal);
    }
  }
}
