/**
 * Posts webhooks the way Mollie does: classic `id=tr_...` form posts and signed
 * next-gen JSON events, retried until an HTTP 200 arrives, on Mollie's retry schedule
 * compressed by a scale factor so tests and the local stack finish in seconds.
 */
import { randomBytes } from 'node:crypto';
import { signMollieBody } from '../providers/mollie/signature.js';
import { sleep } from '../abortable-sleep.js';

/** Delay before each attempt (the first is immediate): 10 attempts over 26 h (docs/providers.md#mollie-classic-webhooks). */
export const MOLLIE_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  60_000,
  120_000,
  240_000,
  480_000,
  960_000,
  1_740_000,
  3_600_000,
  7_200_000,
  79_200_000,
];
/** Mollie gives up on an attempt after 15 s. */
export const MOLLIE_WEBHOOK_TIMEOUT_MS = 15_000;
export const MOLLIE_WEBHOOK_USER_AGENT = 'Mollie HTTP client/1.0';
/** 1 min → 600 ms; the whole 26 h schedule → about 15.6 min. */
export const DEFAULT_WEBHOOK_SCALE = 0.01;
/** A scaled timeout below this would fail on an ordinary busy machine rather than test anything. */
export const MIN_SCALED_TIMEOUT_MS = 1000;

export interface WebhookAttempt {
  /** 1-based. */
  attempt: number;
  startedAt: Date;
  durationMs: number;
  /** HTTP status, or null when the attempt failed before a response (timeout, refused). */
  status: number | null;
  error?: string;
}

export interface WebhookDeliveryResult {
  /** True when an attempt got exactly 200, as Mollie requires. */
  delivered: boolean;
  attempts: WebhookAttempt[];
}

export interface WebhookSendOptions {
  /** Multiplies every delay in the schedule, and the per-attempt timeout. Default 0.01. */
  scale?: number;
  /** Unscaled delays before each attempt; its length is the number of attempts. */
  schedule?: readonly number[];
  /** Absolute per-attempt timeout; default 15 s × scale, at least 1 s. */
  timeoutMs?: number;
  /** Stops waiting and retrying; the result so far is returned, never thrown. */
  signal?: AbortSignal;
  fetcher?: typeof fetch;
  /** Called after each attempt, e.g. to log progress. */
  onAttempt?: (attempt: WebhookAttempt) => void;
}

/** POST `body` until a 200 arrives or the schedule runs out. */
export async function deliverOnMollieSchedule(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: WebhookSendOptions = {},
): Promise<WebhookDeliveryResult> {
  const scale = options.scale ?? DEFAULT_WEBHOOK_SCALE;
  if (!(scale > 0)) throw new Error(`webhook schedule scale must be positive, got ${scale}`);
  const schedule = options.schedule ?? MOLLIE_RETRY_SCHEDULE_MS;
  const timeoutMs = options.timeoutMs ?? Math.max(MIN_SCALED_TIMEOUT_MS, MOLLIE_WEBHOOK_TIMEOUT_MS * scale);
  const fetcher = options.fetcher ?? fetch;
  const attempts: WebhookAttempt[] = [];

  for (const [index, delay] of schedule.entries()) {
    await sleep(delay * scale, options.signal);
    if (options.signal?.aborted) break;
    const startedAt = new Date();
    const attempt: WebhookAttempt = { attempt: index + 1, startedAt, durationMs: 0, status: null };
    try {
      const signal = options.signal
        ? AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs);
      // Mollie re-sends a redirected POST as a body-less GET; we just count a redirect as a failure.
      const response = await fetcher(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
      attempt.status = response.status;
      // The receiver's body is irrelevant, but reading it frees the connection.
      await response.arrayBuffer().catch(() => undefined);
    } catch (error) {
      attempt.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    attempt.durationMs = Date.now() - startedAt.getTime();
    attempts.push(attempt);
    options.onAttempt?.(attempt);
    if (attempt.status === 200) return { delivered: true, attempts };
  }
  return { delivered: false, attempts };
}

/** A classic webhook: `id=<resource id>` as a form post, no signature. */
export function sendMollieClassicWebhook(
  url: string,
  id: string,
  options?: WebhookSendOptions,
): Promise<WebhookDeliveryResult> {
  const body = new URLSearchParams({ id }).toString();
  return deliverOnMollieSchedule(
    url,
    body,
    {
      'User-Agent': MOLLIE_WEBHOOK_USER_AGENT,
      'Content-Type': 'application/x-www-form-urlencoded',
      Accept: '*/*',
    },
    options,
  );
}

const ENTITY_PATHS: Record<string, string> = {
  tr: 'payments',
  re: 'refunds',
  chb: 'chargebacks',
  pl: 'payment-links',
  sub: 'subscriptions',
  cst: 'customers',
};

/** Mollie timestamps carry an explicit offset and no milliseconds. */
export function mollieTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

export function randomMollieId(prefix: string, length = 10): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  let id = '';
  for (const byte of bytes) id += alphabet[byte % alphabet.length];
  return `${prefix}_${id}`;
}

export interface MollieEventInput {
  /** Default: a random event_... id. */
  id?: string;
  type: string;
  entityId: string;
  /** The entity as its GET endpoint returns it; embedded only in snapshot mode. */
  entity?: unknown;
  /** 'snapshot' embeds the entity, 'simple' sends only entityId. Default 'snapshot' when an entity is given. */
  mode?: 'snapshot' | 'simple';
  createdAt?: Date;
}

/** The event object a next-gen webhook carries (same shape as GET /v2/events/{id}). */
export function buildMollieEvent(input: MollieEventInput): Record<string, unknown> {
  const id = input.id ?? randomMollieId('event', 21);
  const mode = input.mode ?? (input.entity === undefined ? 'simple' : 'snapshot');
  const path = ENTITY_PATHS[input.entityId.split('_')[0] ?? ''];
  return {
    resource: 'event',
    id,
    type: input.type,
    entityId: input.entityId,
    createdAt: mollieTimestamp(input.createdAt ?? new Date()),
    _embedded: mode === 'snapshot' ? { entity: input.entity ?? null } : null,
    _links: {
      self: { href: `https://api.mollie.com/v2/events/${id}`, type: 'application/hal+json' },
      documentation: { href: 'https://docs.mollie.com/guides/webhooks', type: 'text/html' },
      ...(path ? { entity: { href: `/v2/${path}/${input.entityId}`, type: 'application/hal+json' } } : {}),
    },
  };
}

export interface EventSendOptions extends WebhookSendOptions {
  /** The webhook subscription's signing secret. */
  secret: string;
  /** Send `sha256=<hex>` instead of bare hex (Mollie's SDKs accept both). */
  prefixSignature?: boolean;
}

/** A next-gen webhook: the JSON event, signed over the exact bytes sent. */
export function sendMollieEventWebhook(
  url: string,
  event: MollieEventInput | Record<string, unknown>,
  options: EventSendOptions,
): Promise<WebhookDeliveryResult & { body: string }> {
  const payload = 'resource' in event ? event : buildMollieEvent(event as MollieEventInput);
  // Serialise once: the signature covers these bytes and nothing re-encodes them.
  const body = JSON.stringify(payload);
  const signature = signMollieBody(body, options.secret);
  return deliverOnMollieSchedule(
    url,
    body,
    {
      'User-Agent': MOLLIE_WEBHOOK_USER_AGENT,
      'Content-Type': 'application/json',
      Accept: '*/*',
      'X-Mollie-Signature': options.prefixSignature ? `sha256=${signature}` : signature,
    },
    options,
  ).then((result) => ({ ...result, body }));
}
