import { Webhook } from 'standardwebhooks';
import { callDeadline } from '../call-deadline.js';
import { errorMessage } from '../primitives/error-message.js';
import { parseRetryAfter } from '../primitives/retry-after.js';
import { ANSWER_BYTES } from './deliveries.js';
import type { OutboundEvent } from './payment-events.js';
import { eventBody, sinkId, type DeliveryOutcome, type EventSink } from './sinks.js';

export interface HttpSinkOptions {
  url: string;
  /** whsec_ secrets: the current one first, then any still honoured during a rotation. */
  secrets: string[];
  /** Bound on the whole attempt, response body included. */
  timeoutMs: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

const USER_AGENT = 'payment-webhook-gateway/0.1 (+standard-webhooks)';
/** How much of a failing sink's answer goes into the delivery's last error. */
const ERROR_SNIPPET_BYTES = 300;

/**
 * Standard Webhooks headers for one attempt. The id is the event's, identical on every
 * retry, so receivers de-duplicate on it; the timestamp is the attempt's, as receivers
 * reject stale ones. During a rotation every secret signs, space-separated, and a
 * receiver holding either secret verifies.
 */
export function signedHeaders(signers: Webhook[], eventId: string, at: Date, body: string): Record<string, string> {
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signers.map((signer) => signer.sign(eventId, at, body)).join(' '),
  };
}

/** Signs one attempt of an event: Standard Webhooks headers for its body at a time. */
export type EventSigner = (eventId: string, at: Date, body: string) => Record<string, string>;

/**
 * The one signing every sink uses (HTTP headers, NATS headers, AMQP headers), so one
 * consumer library verifies events from any of them.
 */
export function createEventSigner(secrets: string[]): EventSigner {
  if (secrets.length === 0) throw new Error('an event sink needs at least one whsec_ secret');
  const signers = secrets.map((secret) => new Webhook(secret));
  return (eventId, at, body) => signedHeaders(signers, eventId, at, body);
}

/** A URL fit for logs and the admin API: no credentials, no query (tokens live there). */
export function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/**
 * `https://user:pass@host/...` is sent as Basic auth to the URL without its userinfo:
 * fetch refuses a URL with credentials, and its error message (logged, stored as the
 * delivery's last error, shown in the console) would repeat the password.
 */
export function splitCredentials(url: string): { url: string; authorization?: string } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { url };
  const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` };
}

export function createHttpSink(options: HttpSinkOptions): EventSink {
  const sign = createEventSigner(options.secrets);
  const endpoint = splitCredentials(options.url);
  const target = describeUrl(options.url);
  const fetchImpl = options.fetch ?? fetch;
  const now = options.now ?? (() => new Date());

  return {
    id: sinkId('http', options.url),
    kind: 'http',
    target,
    async deliver(event: OutboundEvent): Promise<DeliveryOutcome> {
      const body = eventBody(event);
      const at = now();
      const deadline = callDeadline(options.timeoutMs);
      try {
        return await deliverOnce(event, body, at, deadline.signal);
      } finally {
        deadline.end();
      }
    },
  };

  async function deliverOnce(event: OutboundEvent, body: string, at: Date, signal: AbortSignal): Promise<DeliveryOutcome> {
    let response: Response;
    try {
      response = await fetchImpl(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          ...(endpoint.authorization ? { authorization: endpoint.authorization } : {}),
          ...sign(event.id, at, body),
        },
        body,
        // Standard Webhooks: a 3xx is a failure, never followed.
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      // The URL's query may hold a token: an error that quotes the URL gets the loggable form.
      const reason = describeFailure(error, options.timeoutMs).replaceAll(endpoint.url, target).replaceAll(options.url, target);
      return { kind: 'failed', status: null, error: reason };
    }
    const head = await readAnswer(response).catch(() => Buffer.alloc(0));
    const answer = head.toString('utf8');
    const snippet = head.subarray(0, ERROR_SNIPPET_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
    if (response.status >= 200 && response.status < 300) return { kind: 'delivered', status: response.status, answer };
    if (response.status === 410) return { kind: 'gone', status: 410, error: `410 Gone${snippet ? `: ${snippet}` : ''}`, answer };
    return {
      kind: 'failed',
      status: response.status,
      error: `HTTP ${response.status}${snippet ? `: ${snippet}` : ''}`,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), at.getTime()),
      answer,
    };
  }
}

/** Reads the first ANSWER_BYTES of the answer (kept with the attempt) and lets the connection go. */
async function readAnswer(response: Response): Promise<Buffer> {
  if (!response.body) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, ANSWER_BYTES);
}

function describeFailure(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: string })?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  return errorMessage(error);
}
