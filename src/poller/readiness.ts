/**
 * The poller's part of /readyz and /metrics. Informational: a degraded provider
 * account does not make the gateway unready (webhooks must still be received and
 * acknowledged), but it shows here, in the gauges, in an outbound event and in the
 * error log.
 */
import type { Env } from '../config/env.js';
import type { Db } from '../db/client.js';
import type { Metrics } from '../observability/metrics.js';
import { readPollerFleet, type FleetStatus } from './fleet.js';
import { readPollerHealth, type PollerAccountStatus } from './health.js';
import { pollerProcessStatus, type PollerProcessState } from './poller.js';

const READ_TIMEOUT_MS = 1500;

export interface PollerReadiness {
  /**
   * ok: polling runs and every account is healthy; degraded: at least one account is;
   * stalled: no poller pass has completed anywhere for POLLER_STALLED_AFTER_MS while
   * payments are due (fleet.ts); unknown: the state could not be read.
   */
  status: 'ok' | 'degraded' | 'stalled' | 'unknown';
  thisProcess: ReturnType<typeof pollerProcessStatus>;
  /** The whole fleet's polling, as every process's watcher sees it; null before any process watched. */
  fleet: FleetStatus | null;
  accounts: PollerAccountStatus[];
  error?: string;
}

export async function pollerReadiness(
  deps: { db: Db; metrics: Metrics; env: Pick<Env, 'POLLER_STALLED_AFTER_MS'>; pollerState: PollerProcessState },
  databaseUp = true): Promise<PollerReadiness> {
  const thisProcess = pollerProcessStatus(deps);
  if (!databaseUp) return { status: 'unknown', thisProcess, fleet: null, accounts: [], error: 'database unreachable' };
  try {
    const [accounts, fleet] = await withTimeout(Promise.all([readPollerHealth(deps.db, deps.metrics), readPollerFleet(deps.db, deps.env.POLLER_STALLED_AFTER_MS)]));
    deps.metrics.pollerFleetStalled.set(fleet?.state === 'stalled' ? 1 : 0);
    const status = fleet?.state === 'stalled' ? 'stalled' : accounts.some((a) => a.state === 'degraded') ? 'degraded' : 'ok';
    return { status, thisProcess, fleet, accounts };
  } catch (error) {
    // A code, not the message: the message carries the lease query and its parameters.
    const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
    return { status: 'unknown', thisProcess, fleet: null, accounts: [], error: typeof code === 'string' ? code : error instanceof Error && error.message.startsWith('no answer in') ? 'timeout' : 'unavailable' };
  }
}

/** Brings the per-account gauges up to date before a scrape; never fails the scrape. */
export async function refreshPollerGauges(deps: { db: Db; metrics: Metrics; env: Pick<Env, 'POLLER_STALLED_AFTER_MS'> }): Promise<void> {
  await withTimeout(
    Promise.all([
      readPollerHealth(deps.db, deps.metrics),
      readPollerFleet(deps.db, deps.env.POLLER_STALLED_AFTER_MS).then((fleet) => deps.metrics.pollerFleetStalled.set(fleet?.state === 'stalled' ? 1 : 0)),
    ]),
  ).catch(() => {});
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
