import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { errorMessage } from '../primitives/error-message.js';
import { createEventSigner, describeUrl } from './http-sink.js';
import type { OutboundEvent } from './payment-events.js';
import { eventBody, sinkId, type DeliveryOutcome, type EventSink } from './sinks.js';

export interface NatsSinkOptions {
  /** nats:// or tls:// URLs of one cluster; credentials in the first one are used for all. */
  servers: string[];
  /** Events go to `<prefix>.<event type>.<provider>`. */
  subjectPrefix: string;
  /** whsec_ secrets: the current one first, then any still honoured during a rotation. */
  secrets: string[];
  /** Bound on connecting and on waiting for the stream's publish acknowledgement. */
  timeoutMs: number;
  now?: () => Date;
}

/** Events that belong to no provider (gateway.*) end their subject with this token. */
const NO_PROVIDER = 'none';

/**
 * The subject of an event: the prefix, the event type's own tokens, then the provider,
 * so consumers filter by wildcard (`<prefix>.payment.paid.*`, `<prefix>.*.*.mollie`,
 * `<prefix>.>`). Anything a subject token cannot hold becomes `_`.
 */
export function natsSubject(prefix: string, event: OutboundEvent): string {
  const provider = typeof event.data.provider === 'string' && event.data.provider ? event.data.provider : NO_PROVIDER;
  const token = (value: string) => value.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
  return [prefix, ...event.type.split('.').map(token), token(provider)].join('.');
}

/**
 * Publishes each event to NATS JetStream with the event id as Nats-Msg-Id, and counts it
 * delivered only on the stream's acknowledgement. A retry after a lost acknowledgement
 * (or a publish the client buffered while reconnecting and flushed later) is dropped by
 * the stream's duplicate window, so each event is stored once. The stream itself is the
 * operator's: its subjects must cover `<prefix>.>`; without one the attempt fails with a
 * message saying so, and the events wait in the outbox.
 */
export function createNatsSink(options: NatsSinkOptions): EventSink {
  const sign = createEventSigner(options.secrets);
  const now = options.now ?? (() => new Date());
  const { servers, user, pass } = splitServerCredentials(options.servers);
  const target = `${servers.map(describeUrl).join(',')} ${options.subjectPrefix}.>`;
  let client: Promise<{ nc: NatsConnection; js: JetStreamClient; headers: typeof natsHeaders }> | null = null;

  // One connection per sink and process, opened on first use; the client reconnects by
  // itself. One that closed for good (or never opened) is replaced on the next attempt.
  // The client library is loaded then too: processes without this sink never load it.
  const connected = () => {
    if (!client) {
      const opening = (async () => {
        const [{ connect, headers }, { jetstream }] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
        const nc = await connect({ servers, user, pass, name: 'payment-webhook-gateway', timeout: options.timeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
        void nc.closed().then(() => {
          if (client === opening) client = null;
        });
        return { nc, js: jetstream(nc, { timeout: options.timeoutMs }), headers };
      })();
      opening.catch(() => {
        if (client === opening) client = null;
      });
      client = opening;
    }
    return client;
  };

  return {
    id: sinkId('nats', `${servers.join(',')}\n${options.subjectPrefix}`),
    kind: 'nats',
    target,
    async deliver(event: OutboundEvent): Promise<DeliveryOutcome> {
      const subject = natsSubject(options.subjectPrefix, event);
      const body = eventBody(event);
      try {
        const { js, headers } = await connected();
        const hdrs = headers();
        hdrs.set('content-type', 'application/json');
        for (const [name, value] of Object.entries(sign(event.id, now(), body))) hdrs.set(name, value);
        // A duplicate acknowledgement means the stream already holds this event: delivered.
        await js.publish(subject, body, { msgID: event.id, headers: hdrs, timeout: options.timeoutMs });
        return { kind: 'delivered', status: null };
      } catch (error) {
        return { kind: 'failed', status: null, error: describeNatsFailure(error, subject, options) };
      }
    },
    async close() {
      const open = client;
      client = null;
      await open?.then(({ nc }) => nc.close()).catch(() => {});
    },
  };
}

/** The client takes credentials as options, and logs and errors should never show them. */
function splitServerCredentials(urls: string[]): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = urls.map((url) => {
    const parsed = new URL(url);
    if (parsed.username && user === undefined) {
      user = decodeURIComponent(parsed.username);
      pass = decodeURIComponent(parsed.password);
    }
    return `${parsed.protocol}//${parsed.host}`;
  });
  return { servers, user, pass };
}

function describeNatsFailure(error: unknown, subject: string, options: NatsSinkOptions): string {
  const name = (error as { name?: string })?.name ?? '';
  const message = errorMessage(error);
  // The server answers "no responders" when no stream takes the subject; the client
  // reports that as JetStream not being enabled, which is also possible.
  if (name === 'NoRespondersError' || /no responders|jetstream is not enabled/i.test(message)) {
    return `no JetStream stream takes ${subject} (or JetStream is off on the server): create one whose subjects cover ${options.subjectPrefix}.>`;
  }
  if (name === 'TimeoutError' || /timeout/i.test(message)) return `no publish acknowledgement within ${options.timeoutMs} ms (${message})`;
  return `NATS publish failed: ${message}`;
}
