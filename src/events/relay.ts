import type { Deps } from '../deps.js';
import { DEFAULT_DELIVERY_DELAYS_MS, nextDeliveryDelayMs } from './delivery-schedule.js';
import {
  disableSinkAfterGone,
  fanOutOutbox,
  leaseDueDeliveries,
  markDeadLetter,
  markDelivered,
  outboxLagSeconds,
  registerSinks,
  scheduleRetry,
  type LeasedDelivery,
} from './deliveries.js';
import { configuredSinks, type DeliveryOutcome, type EventSink } from './sinks.js';
import { sleep } from '../abortable-sleep.js';

/**
 * The outbox relay: hands committed events to every configured sink, at least once,
 * per payment in version order, retrying on a schedule and parking what never gets
 * through as a dead letter. Any number of gateway processes may run it side by side;
 * Postgres leases (SKIP LOCKED plus a lease time) keep them off each other's work.
 */
export interface RelayOptions {
  /** Defaults to the sinks the environment configures. */
  sinks?: EventSink[];
  /** Delays after each failed attempt; past the last, a dead letter. */
  retryDelaysMs?: readonly number[];
  /** Outbox events fanned out per step. */
  fanOutBatch?: number;
  /** Deliveries attempted per step. */
  deliveryBatch?: number;
  /** Attempts in flight at once within a step. */
  concurrency?: number;
  /** How long a claimed delivery stays claimed; must outlast one attempt. */
  leaseMs?: number;
  random?: () => number;
}

export interface RelayStep {
  relayed: number;
  attempted: number;
  delivered: number;
  retried: number;
  dead: number;
  gone: number;
  /** Attempts whose lease had already passed to another relay: their outcome was not recorded. */
  superseded: number;
}

const registered = new WeakMap<object, Set<string>>();

async function ensureRegistered(deps: Deps, sinks: EventSink[]): Promise<void> {
  const known = registered.get(deps) ?? new Set<string>();
  const missing = sinks.filter((sink) => !known.has(sink.id));
  if (missing.length === 0) return;
  await registerSinks(deps.db, missing);
  for (const sink of missing) known.add(sink.id);
  registered.set(deps, known);
}

/**
 * One bounded step: fan out up to a batch of committed outbox events, then attempt up
 * to a batch of due deliveries. Safe to call from anywhere at any time (a loop, a cron).
 */
export async function relayOnce(deps: Deps, options: RelayOptions = {}): Promise<RelayStep> {
  const sinks = options.sinks ?? configuredSinks(deps);
  const step: RelayStep = { relayed: 0, attempted: 0, delivered: 0, retried: 0, dead: 0, gone: 0, superseded: 0 };
  // A process without sinks (a console, a cron without the config) must not mark events
  // relayed: the processes that do have sinks would never see them.
  if (sinks.length === 0) return step;
  await ensureRegistered(deps, sinks);
  const sinkIds = sinks.map((sink) => sink.id);

  const fanned = await fanOutOutbox(deps.db, { sinkIds, limit: options.fanOutBatch ?? 500 });
  step.relayed = fanned.relayed;
  deps.metrics.outboxLag.set(await outboxLagSeconds(deps.db));

  const leaseMs = options.leaseMs ?? deps.env.EVENT_SINK_TIMEOUT_MS + 30_000;
  const leased = await leaseDueDeliveries(deps.db, { sinkIds, limit: options.deliveryBatch ?? 100, leaseMs });
  step.attempted = leased.length;
  const byId = new Map(sinks.map((sink) => [sink.id, sink]));
  await forEachLimited(leased, options.concurrency ?? 16, async (delivery) => {
    const sink = byId.get(delivery.sinkId)!;
    try {
      await attempt(deps, sink, delivery, options, step);
    } catch (error) {
      // The lease runs out and another pass takes the delivery again.
      deps.logger.error({ job: 'event-relay', sink: sink.id, eventId: delivery.eventId, err: errorMessage(error) }, 'recording a delivery attempt failed');
    }
  });
  return step;
}

async function attempt(deps: Deps, sink: EventSink, delivery: LeasedDelivery, options: RelayOptions, step: RelayStep): Promise<void> {
  const started = performance.now();
  let outcome: DeliveryOutcome;
  try {
    outcome = await sink.deliver(delivery.event);
  } catch (error) {
    outcome = { kind: 'failed', status: null, error: errorMessage(error) };
  }
  deps.metrics.eventDeliveryDuration.observe({ kind: sink.kind }, (performance.now() - started) / 1000);
  const log = { job: 'event-relay', sink: sink.id, kind: sink.kind, eventId: delivery.eventId, type: delivery.event.type, attempt: delivery.attempts };
  let recorded: boolean;
  let result: keyof Pick<RelayStep, 'delivered' | 'retried' | 'dead' | 'gone'>;

  switch (outcome.kind) {
    case 'delivered':
      result = 'delivered';
      recorded = await markDelivered(deps.db, delivery, outcome.status);
      break;
    case 'gone':
      result = 'gone';
      await disableSinkAfterGone(deps.db, delivery, { status: outcome.status, error: outcome.error });
      recorded = true;
      deps.logger.warn({ ...log, status: outcome.status }, 'event sink answered 410 Gone: disabled until an operator enables it');
      break;
    case 'failed': {
      const delayMs = nextDeliveryDelayMs(delivery.attempts, options.retryDelaysMs ?? DEFAULT_DELIVERY_DELAYS_MS, outcome.retryAfterMs, options.random);
      if (delayMs === null) {
        result = 'dead';
        recorded = await markDeadLetter(deps.db, delivery, outcome);
        if (recorded) deps.logger.warn({ ...log, status: outcome.status, error: outcome.error }, 'event delivery gave up: dead letter');
      } else {
        result = 'retried';
        recorded = await scheduleRetry(deps.db, delivery, { status: outcome.status, error: outcome.error, delayMs });
        if (recorded) deps.logger.info({ ...log, status: outcome.status, error: outcome.error, retryInMs: delayMs }, 'event delivery failed; will retry');
      }
      break;
    }
    default: {
      const never: never = outcome;
      throw new Error(`unknown delivery outcome ${JSON.stringify(never)}`);
    }
  }

  if (!recorded) {
    step.superseded++;
    deps.logger.warn(log, 'delivery lease expired mid-attempt; another relay owns it now');
    return;
  }
  step[result]++;
  deps.metrics.eventDeliveries.inc({ sink: sink.id, kind: sink.kind, outcome: result === 'retried' ? 'retry' : result });
}

/**
 * Brings gateway_outbox_lag_seconds up to date from the database before a scrape, so the
 * lag keeps growing on a dashboard when no relay runs anywhere (a relay that is not
 * running cannot report its own lag). Only where sinks are configured: without any, the
 * outbox is served by the pull API alone and nothing is ever "handed to the sinks".
 * Never fails the scrape.
 */
export async function refreshOutboxLag(deps: Deps, timeoutMs = 1500): Promise<void> {
  if (configuredSinks(deps).length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    const lag = await Promise.race([
      outboxLagSeconds(deps.db),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('outbox lag: no answer in time')), timeoutMs))),
    ]);
    deps.metrics.outboxLag.set(lag);
  } catch {
    // The database is away: /readyz says so; the gauge keeps its last value.
  } finally {
    clearTimeout(timer);
  }
}

export interface RunRelayOptions extends RelayOptions {
  signal: AbortSignal;
  /** Pause between steps that found nothing to do. */
  idleMs?: number;
}

/** Runs relay steps until the signal aborts; in-flight attempts finish first. */
export async function runRelay(deps: Deps, options: RunRelayOptions): Promise<void> {
  const sinks = options.sinks ?? configuredSinks(deps);
  const idleMs = options.idleMs ?? 500;
  if (sinks.length === 0) {
    deps.logger.info({ job: 'event-relay' }, 'no event sinks configured (EVENT_SINK_URLS, EVENT_STREAM): events are served by GET /v1/events only');
  } else {
    deps.logger.info({ job: 'event-relay', sinks: sinks.map((sink) => ({ id: sink.id, kind: sink.kind, target: sink.target })) }, 'event relay started');
  }
  while (!options.signal.aborted) {
    let busy = false;
    const started = performance.now();
    try {
      const step = await relayOnce(deps, { ...options, sinks });
      busy = step.relayed > 0 || step.attempted > 0;
      if (busy) deps.logger.info({ job: 'event-relay', ...step, ms: Math.round(performance.now() - started) }, 'event relay step');
    } catch (error) {
      deps.logger.error({ job: 'event-relay', err: errorMessage(error) }, 'event relay step failed');
    }
    if (!busy) await sleep(idleMs, options.signal);
  }
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
