import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { errorMessage } from '../primitives/error-message.js';
import { createEventSigner, describeUrl } from './http-sink.js';
import type { OutboundEvent } from './payment-events.js';
import { eventBody, sinkId, type DeliveryOutcome, type EventSink } from './sinks.js';

export interface AmqpSinkOptions {
  /** amqp:// or amqps:// URL, vhost in the path. */
  url: string;
  /** A topic exchange, declared (durable) when missing. */
  exchange: string;
  /** whsec_ secrets: the current one first, then any still honoured during a rotation. */
  secrets: string[];
  /** Bound on connecting and on waiting for the broker's confirm. */
  timeoutMs: number;
  now?: () => Date;
}

interface Open {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** Message ids the broker returned as unroutable since they were published. */
  returned: Set<string>;
}

/**
 * Publishes each event to a RabbitMQ topic exchange on a confirm channel: routing key =
 * the event type, message_id = the event id, persistent, mandatory. The attempt counts
 * as delivered only when the broker confirms it; a nack, a returned message (no queue
 * is bound for its routing key, so it would be dropped) or a lost connection is a failed
 * attempt and retried on the schedule. A retry can reach a queue twice (the confirm of
 * the first was lost), so consumers de-duplicate on message_id, as with webhook-id.
 *
 * An attempt that gets no answer in time (no connection, no confirm) gives up its
 * connection too: the next attempt opens a fresh one. A connection the broker stopped
 * answering on without closing it (a half-open socket after a network fault, a node that
 * blocks publishers, a channel stuck while a restarted node boots) would otherwise fail
 * every attempt until the heartbeat noticed, a minute or more later, or never.
 */
export function createAmqpSink(options: AmqpSinkOptions): EventSink {
  const sign = createEventSigner(options.secrets);
  const now = options.now ?? (() => new Date());
  const where = describeUrl(options.url);
  let opening: Promise<Open> | null = null;

  // One connection and confirm channel per sink and process, opened on first use and
  // replaced after the broker or the network closes it. The client library is loaded then
  // too: processes without this sink never load it.
  const open = () => {
    if (!opening) {
      const attempt: Promise<Open> = (async () => {
        const { connect } = await import('amqplib');
        const model = await connect(options.url, { timeout: options.timeoutMs, clientProperties: { connection_name: 'payment-webhook-gateway' } });
        const forget = () => {
          if (opening === attempt) opening = null;
        };
        // Errors also close the connection or channel; 'close' is where we react.
        model.on('error', () => {});
        model.on('close', forget);
        try {
          const channel = await model.createConfirmChannel();
          channel.on('error', () => {});
          channel.on('close', forget);
          const returned = new Set<string>();
          channel.on('return', (message: { properties: { messageId?: string } }) => {
            if (message.properties.messageId) returned.add(message.properties.messageId);
          });
          await channel.assertExchange(options.exchange, 'topic', { durable: true });
          return { model, channel, returned };
        } catch (error) {
          await model.close().catch(() => {});
          throw error;
        }
      })();
      attempt.catch(() => {
        if (opening === attempt) opening = null;
      });
      opening = attempt;
    }
    return opening;
  };

  // Forgotten at once (the next attempt opens anew) and closed whenever it settles.
  const abandon = (connection: Promise<Open>) => {
    if (opening === connection) opening = null;
    connection.then(({ model }) => model.close()).catch(() => {});
  };

  return {
    id: sinkId('amqp', `${where}\n${options.exchange}`),
    kind: 'amqp',
    target: `${where} exchange ${options.exchange}`,
    async deliver(event: OutboundEvent): Promise<DeliveryOutcome> {
      const body = eventBody(event);
      const at = now();
      let timer: NodeJS.Timeout | undefined;
      const connection = open();
      try {
        const { channel, returned } = await withTimeout(connection, options.timeoutMs, 'connecting');
        returned.delete(event.id);
        const confirmed = new Promise<void>((resolve, reject) => {
          channel.publish(
            options.exchange,
            event.type,
            Buffer.from(body, 'utf8'),
            {
              messageId: event.id,
              type: event.type,
              timestamp: Math.floor(at.getTime() / 1000),
              contentType: 'application/json',
              persistent: true,
              mandatory: true,
              appId: 'payment-webhook-gateway',
              headers: sign(event.id, at, body),
            },
            (error) => (error ? reject(new Error(`the broker refused the message (nack): ${errorMessage(error)}`)) : resolve()),
          );
        });
        await Promise.race([confirmed, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new NoAnswer(`no publisher confirm within ${options.timeoutMs} ms`)), options.timeoutMs)))]);
        // The broker sends basic.return before the confirm of the same message.
        if (returned.delete(event.id)) {
          return { kind: 'failed', status: null, error: `returned unroutable: no queue is bound to exchange ${options.exchange} for routing key ${event.type}` };
        }
        return { kind: 'delivered', status: null };
      } catch (error) {
        if (error instanceof NoAnswer) abandon(connection);
        return { kind: 'failed', status: null, error: `AMQP publish to ${where} failed: ${errorMessage(error)}` };
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      const current = opening;
      opening = null;
      await current?.then(({ model }) => model.close()).catch(() => {});
    },
  };
}

/** The broker did not answer in time: the connection it came over is not to be trusted again. */
class NoAnswer extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new NoAnswer(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

