import type { Deps } from '../deps.js';
import { errorMessage } from '../primitives/error-message.js';
import { forEachLimited } from '../primitives/for-each-limited.js';
import { nextDeliveryDelayMs } from './delivery-schedule.js';
import {
  disableSinkAfterGone,
  fanOutOutbox,
  leaseDueDeliveries,
  leaseProbeDelivery,
  listDisabledSinks,
  markDeadLetter,
  markDelivered,
  outboxLagSeconds,
  pullForwardRetries,
  registerSinks,
  releaseLeases,
  restoreAfterProbe,
  scheduleRetry,
  type AttemptFacts,
  type LeasedDelivery,
  type LeasedProbe,
} from './deliveries.js';
import { configuredSinks, type DeliveryOutcome, type EventSink } from './sinks.js';
import { sleep } from '../abortable-sleep.js';
import { SpanKind } from '@opentelemetry/api';
import { SPAN_ATTRIBUTES, withSpan } from '../observability/tracing.js';

/** What the relay uses: the database, its sinks and its own state, and where it reports. */
export type RelayDeps = Pick<Deps, 'db' | 'env' | 'logger' | 'metrics' | 'relayState' | 'eventSinks'>;

/**
 * The outbox relay: hands committed events to every configured sink, at least once,
 * per payment in version order, retrying on a schedule and parking what never gets
 * through as a dead letter. Any number of gateway processes may run it side by side;
 * Postgres leases (SKIP LOCKED plus a lease time) keep them off each other's work.
 *
 * Each sink is leased and delivered on its own, so a sink that hangs until its timeout
 * holds back only its own deliveries. While a sink has retries waiting, one of them is
 * tried early every probe interval (a circuit breaker's half-open step, at no cost to
 * the delivery's retry budget); the first delivery that gets through, probe or not,
 * pulls every waiting retry of that sink forward, so a backlog drains within seconds of
 * the sink's recovery instead of at the next step of a schedule that grows to hours.
 */
export interface RelayOptions {
  /** Defaults to the sinks the environment configures. */
  sinks?: EventSink[];
  /** Delays after each failed attempt; past the last, a dead letter. Defaults to EVENT_SINK_RETRY_DELAYS. */
  retryDelaysMs?: readonly number[];
  /** While a sink has retries waiting, how often one is probed early. Defaults to EVENT_SINK_PROBE_INTERVAL_MS. */
  probeIntervalMs?: number;
  /** Outbox events fanned out per step. */
  fanOutBatch?: number;
  /** Deliveries attempted per step, per sink. */
  deliveryBatch?: number;
  /** Attempts in flight at once within a step, per sink. */
  concurrency?: number;
  /** How long a claimed delivery stays claimed; must outlast one attempt. */
  leaseMs?: number;
  random?: () => number;
  /** Stops a step from starting further attempts (what it leased and did not attempt is released). */
  signal?: AbortSignal;
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
  /** Early attempts at a waiting retry (half-open probes) and how many failed (at no cost to the delivery). */
  probed: number;
  probeFailed: number;
  /** Waiting retries made due at once because their sink answered again. */
  pulledForward: number;
}

const emptyStep = (): RelayStep => ({ relayed: 0, attempted: 0, delivered: 0, retried: 0, dead: 0, gone: 0, superseded: 0, probed: 0, probeFailed: 0, pulledForward: 0 });

/**
 * What one process's relay remembers between steps: the sinks it has registered and when
 * it last probed each. The composition root creates it (src/job-state.ts), so two
 * gateways in one process (tests) never share it.
 */
export interface RelayState {
  registered: Set<string>;
  lastProbe: Map<string, number>;
}

export function createRelayState(): RelayState {
  return { registered: new Set(), lastProbe: new Map() };
}

async function ensureRegistered(deps: RelayDeps, sinks: EventSink[]): Promise<void> {
  const known = deps.relayState.registered;
  const missing = sinks.filter((sink) => !known.has(sink.id));
  if (missing.length === 0) return;
  await registerSinks(deps.db, missing);
  for (const sink of missing) known.add(sink.id);
}

/**
 * One bounded step: fan out up to a batch of committed outbox events, then attempt up
 * to a batch of due deliveries for each sink, the sinks side by side; a sink with
 * nothing due but retries waiting is probed when its probe interval has passed. Safe
 * to call from anywhere at any time (a loop, a cron).
 */
export async function relayOnce(deps: RelayDeps, options: RelayOptions = {}): Promise<RelayStep> {
  const sinks = options.sinks ?? configuredSinks(deps);
  const step = emptyStep();
  // A process without sinks (a console, a cron without the config) must not mark events
  // relayed: the processes that do have sinks would never see them.
  if (sinks.length === 0) return step;
  await fanOutStep(deps, sinks, options, step);
  await Promise.all(sinks.map((sink) => deliverStep(deps, sink, options, step)));
  return step;
}

async function fanOutStep(deps: RelayDeps, sinks: EventSink[], options: RelayOptions, step: RelayStep): Promise<void> {
  await ensureRegistered(deps, sinks);
  const fanned = await fanOutOutbox(deps.db, { sinkIds: sinks.map((sink) => sink.id), limit: options.fanOutBatch ?? 500 });
  step.relayed += fanned.relayed;
  deps.metrics.outboxLag.set(await outboxLagSeconds(deps.db));
}

/** Attempts one sink's due deliveries; with none due, maybe probes it. */
async function deliverStep(deps: RelayDeps, sink: EventSink, options: RelayOptions, step: RelayStep): Promise<void> {
  const leaseMs = options.leaseMs ?? deps.env.EVENT_SINK_TIMEOUT_MS + 30_000;
  const leased = await leaseDueDeliveries(deps.db, { sinkIds: [sink.id], limit: options.deliveryBatch ?? 100, leaseMs });
  step.attempted += leased.length;
  if (leased.length === 0) {
    await maybeProbe(deps, sink, options, step, leaseMs);
    return;
  }
  let answered = false;
  const skipped = await forEachLimited(
    leased,
    options.concurrency ?? 16,
    async (delivery) => {
      if (await attemptSafely(deps, sink, delivery, options, step)) answered = true;
    },
    options.signal,
  );
  step.attempted -= skipped.length;
  await releaseLeases(deps.db, skipped);
  if (answered) await pullForward(deps, sink, step);
}

async function maybeProbe(deps: RelayDeps, sink: EventSink, options: RelayOptions, step: RelayStep, leaseMs: number): Promise<void> {
  const intervalMs = options.probeIntervalMs ?? deps.env.EVENT_SINK_PROBE_INTERVAL_MS;
  const probes = deps.relayState.lastProbe;
  const now = Date.now();
  if (now - (probes.get(sink.id) ?? 0) < intervalMs) return;
  probes.set(sink.id, now);
  const probe = await leaseProbeDelivery(deps.db, { sinkId: sink.id, leaseMs, minWaitMs: intervalMs });
  if (!probe) return;
  step.probed++;
  if (await attemptSafely(deps, sink, probe, options, step, probe)) await pullForward(deps, sink, step);
}

async function pullForward(deps: RelayDeps, sink: EventSink, step: RelayStep): Promise<void> {
  const moved = await pullForwardRetries(deps.db, sink.id);
  step.pulledForward += moved;
  if (moved > 0) deps.logger.info({ job: 'event-relay', sink: sink.id, kind: sink.kind, retries: moved }, 'event sink answers again: its waiting retries are due now');
}

/** Returns whether the sink took the event. */
async function attemptSafely(deps: RelayDeps, sink: EventSink, delivery: LeasedDelivery, options: RelayOptions, step: RelayStep, probe?: LeasedProbe): Promise<boolean> {
  try {
    return await attempt(deps, sink, delivery, options, step, probe);
  } catch (error) {
    // The lease runs out and another pass takes the delivery again.
    deps.logger.error({ job: 'event-relay', sink: sink.id, eventId: delivery.eventId, err: errorMessage(error) }, 'recording a delivery attempt failed');
    return false;
  }
}

async function attempt(deps: RelayDeps, sink: EventSink, delivery: LeasedDelivery & { attempt?: AttemptFacts }, options: RelayOptions, step: RelayStep, probe?: LeasedProbe): Promise<boolean> {
  const started = performance.now();
  const startedAt = new Date();
  // One span per attempt, a child of the span that wrote the event (stored with it as a
  // traceparent): the webhook's trace goes on to every delivery, however much later. An
  // event written with tracing off starts a trace of its own; event.id and payment.id
  // still name it.
  const paymentId = typeof delivery.event.data.paymentId === 'string' ? delivery.event.data.paymentId : undefined;
  const spanAttributes = {
    'event.id': delivery.eventId,
    'event.type': delivery.event.type,
    'sink.id': sink.id,
    'sink.kind': sink.kind,
    'delivery.attempt': delivery.attempts,
    ...(paymentId ? { [SPAN_ATTRIBUTES.paymentId]: paymentId } : {}),
    ...(probe ? { 'delivery.probe': true } : {}),
  };
  const outcome: DeliveryOutcome = await withSpan(
    'event.deliver',
    spanAttributes,
    async (span) => {
      let answer: DeliveryOutcome;
      try {
        answer = await sink.deliver(delivery.event);
      } catch (error) {
        answer = { kind: 'failed', status: null, error: errorMessage(error) };
      }
      span.setAttribute(SPAN_ATTRIBUTES.outcome, answer.kind);
      if (answer.status !== null && answer.status !== undefined) span.setAttribute('http.response.status_code', answer.status);
      return answer;
    },
    SpanKind.PRODUCER,
    true,
    delivery.traceParent,
  );
  deps.metrics.eventDeliveryDuration.observe({ kind: sink.kind }, (performance.now() - started) / 1000);
  // Each outcome recorder below keeps this attempt's row along with the outcome.
  delivery = { ...delivery, attempt: { startedAt, durationMs: performance.now() - started, answer: outcome.answer, probe: probe !== undefined } };
  const log = { job: 'event-relay', sink: sink.id, kind: sink.kind, eventId: delivery.eventId, type: delivery.event.type, attempt: delivery.attempts, ...(probe ? { probe: true } : {}) };
  let recorded: boolean;
  let result: keyof Pick<RelayStep, 'delivered' | 'retried' | 'dead' | 'gone' | 'probeFailed'>;

  switch (outcome.kind) {
    case 'delivered':
      result = 'delivered';
      recorded = await markDelivered(deps.db, delivery, outcome.status);
      break;
    case 'gone': {
      result = 'gone';
      const { disabledNow } = await disableSinkAfterGone(deps.db, delivery, { status: outcome.status, error: outcome.error }, sink);
      recorded = true;
      if (disabledNow) deps.logger.warn({ ...log, status: outcome.status }, 'event sink answered 410 Gone: disabled until an operator enables it (gateway.sink.disabled emitted)');
      break;
    }
    case 'failed': {
      if (probe) {
        // Still down: the probe leaves the delivery where its schedule had it.
        result = 'probeFailed';
        recorded = await restoreAfterProbe(deps.db, { ...delivery, resumeAt: probe.resumeAt }, { status: outcome.status, error: outcome.error });
        break;
      }
      const delayMs = nextDeliveryDelayMs(delivery.attempts, options.retryDelaysMs ?? deps.env.EVENT_SINK_RETRY_DELAYS, outcome.retryAfterMs, options.random);
      if (delayMs === null) {
        result = 'dead';
        recorded = await markDeadLetter(deps.db, delivery, outcome);
        if (recorded) deps.logger.warn({ ...log, status: outcome.status, error: outcome.error }, 'event delivery gave up: dead letter');
      } else {
        result = 'retried';
        recorded = await scheduleRetry(deps.db, delivery, { status: outcome.status, error: outcome.error, delayMs, earlyAllowed: outcome.retryAfterMs === undefined });
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
    return false;
  }
  step[result]++;
  if (result !== 'probeFailed') deps.metrics.eventDeliveries.inc({ sink: sink.id, kind: sink.kind, outcome: result === 'retried' ? 'retry' : result });
  return result === 'delivered';
}

/**
 * Brings gateway_outbox_lag_seconds up to date from the database before a scrape, so the
 * lag keeps growing on a dashboard when no relay runs anywhere (a relay that is not
 * running cannot report its own lag). Only where sinks are configured: without any, the
 * outbox is served by the pull API alone and nothing is ever "handed to the sinks".
 * Never fails the scrape.
 */
export async function refreshOutboxLag(deps: Pick<RelayDeps, 'db' | 'metrics' | 'eventSinks'>, timeoutMs = 1500): Promise<void> {
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

/**
 * The sinks' part of /readyz: informational, like the poller's. A sink disabled by a 410
 * does not make the gateway unready (events wait for it in the database), but an
 * orchestrator's or an operator's probe should see it.
 */
export async function sinkReadiness(deps: Pick<RelayDeps, 'db' | 'eventSinks'>): Promise<{ configured: number; disabled: Awaited<ReturnType<typeof listDisabledSinks>> } | { error: string }> {
  const sinks = configuredSinks(deps);
  try {
    return { configured: sinks.length, disabled: await listDisabledSinks(deps.db, sinks.map((sink) => sink.id)) };
  } catch (error) {
    return { error: errorMessage(error) };
  }
}

export interface RunRelayOptions extends RelayOptions {
  signal: AbortSignal;
  /** Pause between steps that found nothing to do. */
  idleMs?: number;
}

/**
 * Runs until the signal aborts, in lanes that never wait on each other: one fans the
 * outbox out, and each sink has its own lane that leases and delivers only its own
 * deliveries (the fan-out lane wakes the sink lanes when it hands out new events). A
 * sink that hangs until its timeout slows its own lane alone. In-flight attempts finish
 * before it returns.
 */
export async function runRelay(deps: RelayDeps, options: RunRelayOptions): Promise<void> {
  const sinks = options.sinks ?? configuredSinks(deps);
  const idleMs = options.idleMs ?? 500;
  const { signal } = options;
  if (sinks.length === 0) {
    deps.logger.info({ job: 'event-relay' }, 'no event sinks configured (EVENT_SINK_URLS, EVENT_STREAM, EVENT_NATS_URL, EVENT_AMQP_URL): events are served by GET /v1/events only');
    return;
  }
  deps.logger.info({ job: 'event-relay', sinks: sinks.map((sink) => ({ id: sink.id, kind: sink.kind, target: sink.target })) }, 'event relay started');
  const wakers = new Map(sinks.map((sink) => [sink.id, new AbortController()]));

  const lane = async (name: string, work: () => Promise<RelayStep>, idle: () => Promise<void>) => {
    while (!signal.aborted) {
      let busy = false;
      const started = performance.now();
      try {
        const step = await work();
        busy = step.relayed > 0 || step.attempted > 0 || step.pulledForward > 0;
        if (busy || step.probed > 0) deps.logger.info({ job: 'event-relay', lane: name, ...step, ms: Math.round(performance.now() - started) }, 'event relay step');
      } catch (error) {
        deps.logger.error({ job: 'event-relay', lane: name, err: errorMessage(error) }, 'event relay step failed');
      }
      if (!busy) await idle();
    }
  };

  const fanOutLane = lane(
    'fan-out',
    async () => {
      const step = emptyStep();
      await fanOutStep(deps, sinks, options, step);
      if (step.relayed > 0) for (const waker of wakers.values()) waker.abort();
      return step;
    },
    () => sleep(idleMs, signal),
  );
  const sinkLanes = sinks.map((sink) =>
    lane(
      sink.id,
      async () => {
        const step = emptyStep();
        // Registration happens in the fan-out lane; the lease query needs the row to exist.
        await ensureRegistered(deps, sinks);
        await deliverStep(deps, sink, options, step);
        return step;
      },
      async () => {
        const waker = wakers.get(sink.id)!;
        await sleep(idleMs, AbortSignal.any([signal, waker.signal]));
        if (waker.signal.aborted) wakers.set(sink.id, new AbortController());
      },
    ),
  );
  await Promise.all([fanOutLane, ...sinkLanes]);
}

