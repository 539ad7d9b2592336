import { createHash } from 'node:crypto';
import type { Deps } from '../deps.js';
import { createAmqpSink } from './amqp-sink.js';
import { createHttpSink } from './http-sink.js';
import { createNatsSink } from './nats-sink.js';
import type { OutboundEvent } from './payment-events.js';
import { createStreamSink } from './stream-sink.js';

/** What one delivery attempt came to; `answer`: the first bytes of the sink's reply, kept with the attempt. */
export type DeliveryOutcome = (
  | { kind: 'delivered'; status: number | null }
  /** The sink asked never to be called again (HTTP 410 Gone). */
  | { kind: 'gone'; status: number; error: string }
  | { kind: 'failed'; status: number | null; error: string; retryAfterMs?: number }
) & { answer?: string };

/**
 * Somewhere outbound events go. Implementations do one attempt and report; retries,
 * ordering and dead letters are the relay's business, the same for every sink.
 */
export interface EventSink {
  /** Stable across processes and restarts: delivery state is keyed by it. */
  readonly id: string;
  readonly kind: 'http' | 'stream' | 'nats' | 'amqp';
  /** For people and logs: never carries credentials. */
  readonly target: string;
  deliver(event: OutboundEvent): Promise<DeliveryOutcome>;
  /** Lets go of connections the sink opened (broker sinks); deps.close() calls it. */
  close?(): Promise<void>;
}

export function sinkId(kind: EventSink['kind'], identity: string): string {
  return `snk_${createHash('sha256').update(`${kind}\n${identity}`).digest('hex').slice(0, 16)}`;
}

/** The wire form of an event, with its keys in the documented order. */
export function eventBody(event: OutboundEvent): string {
  return JSON.stringify({ id: event.id, type: event.type, timestamp: event.timestamp, data: event.data });
}

/**
 * The sinks the environment configures, built on first use and closed by deps.close().
 * The composition root creates one per deps (src/job-state.ts).
 */
export interface ConfiguredSinks {
  list(): EventSink[];
  /** Closes the connections of the sinks, if they were built. */
  close(): Promise<void>;
}

/**
 * One HTTP sink per EVENT_SINK_URLS entry, the Redis Stream when EVENT_STREAM is set and
 * the gateway has a Redis, NATS JetStream (EVENT_NATS_URL) and RabbitMQ (EVENT_AMQP_URL).
 * Built once, on first use, so the "stream sink is off" notice is said once, each broker
 * sink keeps one connection, and a deps object that never relays opens none.
 */
export function createConfiguredSinks(deps: Pick<Deps, 'env' | 'redis' | 'logger'>): ConfiguredSinks {
  let built: EventSink[] | null = null;
  return {
    list() {
      built ??= buildSinks(deps);
      return built;
    },
    async close() {
      if (!built) return;
      await Promise.all(built.map((sink) => sink.close?.().catch(() => {})));
    },
  };
}

function buildSinks(deps: Pick<Deps, 'env' | 'redis' | 'logger'>): EventSink[] {
  const { env } = deps;
  const sinks: EventSink[] = [];
  if (env.EVENT_SINK_URLS.length > 0 && env.EVENT_SINK_SECRET) {
    const secrets = [env.EVENT_SINK_SECRET, ...env.EVENT_SINK_PREVIOUS_SECRETS];
    for (const url of env.EVENT_SINK_URLS) sinks.push(createHttpSink({ url, secrets, timeoutMs: env.EVENT_SINK_TIMEOUT_MS }));
  }
  if (env.EVENT_STREAM) {
    const redis = deps.redis[0];
    if (redis) sinks.push(createStreamSink({ redis, stream: env.EVENT_STREAM, maxLen: env.EVENT_STREAM_MAXLEN }));
    else deps.logger.warn({ job: 'event-relay', stream: env.EVENT_STREAM }, 'EVENT_STREAM is set but REDIS_URL is not: the Redis Stream sink is off');
  }
  if (env.EVENT_SINK_SECRET) {
    const secrets = [env.EVENT_SINK_SECRET, ...env.EVENT_SINK_PREVIOUS_SECRETS];
    const timeoutMs = env.EVENT_SINK_TIMEOUT_MS;
    if (env.EVENT_NATS_URL.length > 0) sinks.push(createNatsSink({ servers: env.EVENT_NATS_URL, subjectPrefix: env.EVENT_NATS_SUBJECT, secrets, timeoutMs }));
    if (env.EVENT_AMQP_URL) sinks.push(createAmqpSink({ url: env.EVENT_AMQP_URL, exchange: env.EVENT_AMQP_EXCHANGE, secrets, timeoutMs }));
  }
  return sinks;
}

/** The sinks the environment configures for these deps (built on first use). */
export function configuredSinks(deps: { eventSinks: ConfiguredSinks }): EventSink[] {
  return deps.eventSinks.list();
}

/** Closes the connections of the sinks built for these deps, if any were. */
export async function closeConfiguredSinks(deps: { eventSinks: ConfiguredSinks }): Promise<void> {
  await deps.eventSinks.close();
}
