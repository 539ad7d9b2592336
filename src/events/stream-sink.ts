import type { Redis } from 'ioredis';
import { errorMessage } from '../primitives/error-message.js';
import type { OutboundEvent } from './payment-events.js';
import { eventBody, sinkId, type DeliveryOutcome, type EventSink } from './sinks.js';

export interface StreamSinkOptions {
  redis: Redis;
  stream: string;
  /** XADD MAXLEN ~ cap: Redis trims whole macro nodes, so the length hovers just above it. */
  maxLen: number;
}

/**
 * Appends each event to a Redis Stream. Entries carry the event id (consumers
 * de-duplicate on it: a retry after a lost reply appends a second entry), the type,
 * the ordering key and the whole event as JSON, so consumer groups can read it
 * without touching Postgres.
 */
export function createStreamSink(options: StreamSinkOptions): EventSink {
  return {
    id: sinkId('stream', options.stream),
    kind: 'stream',
    target: options.stream,
    async deliver(event: OutboundEvent): Promise<DeliveryOutcome> {
      const fields = ['id', event.id, 'type', event.type, 'timestamp', event.timestamp];
      for (const key of ['provider', 'paymentId', 'version'] as const) {
        const value = event.data[key];
        if (typeof value === 'string' || typeof value === 'number') fields.push(key, String(value));
      }
      fields.push('payload', eventBody(event));
      try {
        await options.redis.xadd(options.stream, 'MAXLEN', '~', options.maxLen, '*', ...fields);
        return { kind: 'delivered', status: null };
      } catch (error) {
        return { kind: 'failed', status: null, error: `XADD failed: ${errorMessage(error)}` };
      }
    },
  };
}
