/**
 * The poller's part of /readyz and /metrics. Informational: a degraded provider
 * account does not make the gateway unready (webhooks must still be received and
 * acknowledged), but it shows here, in the gauges, in an outbound event and in the
 * error log.
 */
import type { Db } from '../db/client.js';
import type { Metrics } from '../observability/metrics.js';
import { readPollerHealth, type PollerAccountStatus } from './health.js';
import { pollerProcessStatus } from './poller.js';

const READ_TIMEOUT_MS = 1500;

export interface PollerReadiness {
  /** ok: every account healthy; degraded: at least one is; unknown: the state could not be read. */
  status: 'ok' | 'degraded' | 'unknown';
  thisProcess: ReturnType<typeof pollerProcessStatus>;
  accounts: PollerAccountStatus[];
  error?: string;
}

export async function pollerReadiness(deps: { db: Db; metrics: Metrics }, databaseUp = true): Promise<PollerReadiness> {
  const thisProcess = pollerProcessStatus(deps);
  if (!databaseUp) return { status: 'unknown', thisProcess, accounts: [], error: 'database unreachable' };
  try {
    const accounts = await withTimeout(readPollerHealth(deps.db, deps.metrics));
    return { status: accounts.some((a) => a.state === 'degraded') ? 'degraded' : 'ok', thisProcess, accounts };
  } catch (error) {
    return { status: 'unknown', thisProcess, accounts: [], error: error instanceof Error ? error.message : String(error) };
  }
}

/** Brings the per-account gauges up to date before a scrape; never fails the scrape. */
export async function refreshPollerGauges(deps: { db: Db; metrics: Metrics }): Promise<void> {
  await withTimeout(readPollerHealth(deps.db, deps.metrics)).catch(() => {});
}

export async function withTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
