/**
 * A small typed GoCardless API client over fetch (no SDK: gc-node has no base-URL
 * option and no request timeout, docs/providers.md#gocardless-node-sdk). It implements
 * the provider port for payments and adds `listEvents` for recovering missed webhooks.
 *
 * Failures become ProviderError with a machine code and whether a retry can help;
 * this client never retries by itself, the caller's poller owns the schedule.
 */
import { z } from 'zod';
import { callDeadline } from '../../call-deadline.js';
import { parseRetryAfter } from '../../primitives/retry-after.js';
import { ProviderError, type AccountCredentialsSource, type FetchOptions, type FetchResult, type PaymentProvider } from '../types.js';
import {
  GoCardlessMappingError,
  goCardlessNeedsRefunds,
  goCardlessPaymentEnvelopeSchema,
  goCardlessRefundsPageSchema,
  mapGoCardlessPaymentResource,
  type GoCardlessRefund,
} from './mapping.js';
import { goCardlessEventSchema, type GoCardlessEvent } from './webhook.js';

export const GOCARDLESS_LIVE_API_URL = 'https://api.gocardless.com';
export const GOCARDLESS_SANDBOX_API_URL = 'https://api-sandbox.gocardless.com';
/** Pinned by every official client (docs/providers.md#gocardless-api-polling-and-recovery). */
export const GOCARDLESS_API_VERSION = '2015-07-06';

export interface GoCardlessAccountConfig {
  accessToken: string;
}

export interface GoCardlessProviderConfig {
  accounts: Record<string, GoCardlessAccountConfig>;
  /** Accounts created at runtime (the account registry): asked for any name not in `accounts`. */
  credentials?: AccountCredentialsSource;
  /** Defaults to the live API. */
  apiUrl?: string;
  /** Per request, covering headers and body. Default 4000 ms. */
  timeoutMs?: number;
  fetcher?: typeof fetch;
  /** Reported on snapshots; inferred from the two official hosts when omitted. */
  mode?: 'live' | 'test' | null;
  /** For computing retryAfterMs from an absolute reset time; defaults to Date.now. */
  now?: () => number;
}

export interface GoCardlessRateLimit {
  limit?: number;
  remaining?: number;
  resetAt?: Date;
}

export interface ListEventsOptions {
  /** Cursor from a previous page's `after`. */
  after?: string;
  before?: string;
  /** 1..500; GoCardless defaults to 50. */
  limit?: number;
  resourceType?: string;
  action?: string;
  /** Single-resource filter, e.g. `{ payment: 'PM123' }`. GoCardless refuses it together with resourceType. */
  links?: Record<string, string>;
  createdAt?: { gt?: string | Date; gte?: string | Date; lt?: string | Date; lte?: string | Date };
  signal?: AbortSignal;
}

export interface GoCardlessEventsPage {
  events: GoCardlessEvent[];
  /** Pass as `after` for the next page; null when this was the last one. */
  after: string | null;
  before: string | null;
  rateLimit: GoCardlessRateLimit;
}

export type GoCardlessProvider = PaymentProvider & {
  listEvents(account: string, options?: ListEventsOptions): Promise<GoCardlessEventsPage>;
  /** The creditor the account's access token acts for (GET /creditors): who the token belongs to. */
  getCreditorId(account: string, options?: FetchOptions): Promise<string>;
};

const errorEnvelopeSchema = z.object({
  error: z.looseObject({
    message: z.string().optional(),
    documentation_url: z.string().optional(),
    type: z.string().optional(),
    request_id: z.string().optional(),
    code: z.number().optional(),
    errors: z
      .array(z.looseObject({ reason: z.string().optional(), message: z.string().optional(), field: z.string().optional() }))
      .optional(),
  }),
});

const eventsPageSchema = z.looseObject({
  events: z.array(goCardlessEventSchema),
  meta: z.looseObject({
    cursors: z.object({ before: z.string().nullish(), after: z.string().nullish() }),
    limit: z.number().optional(),
  }),
});

const creditorsPageSchema = z.looseObject({ creditors: z.array(z.looseObject({ id: z.string().min(1) })) });

function inferMode(apiUrl: string): 'live' | 'test' | null {
  try {
    const host = new URL(apiUrl).host;
    if (host === new URL(GOCARDLESS_LIVE_API_URL).host) return 'live';
    if (host === new URL(GOCARDLESS_SANDBOX_API_URL).host) return 'test';
  } catch {
    // An unparseable URL fails loudly on the first request instead.
  }
  return null;
}

/** Seconds (delta or epoch) or an HTTP date, as an absolute time. */
function parseResetTime(value: string | null, nowMs: number): Date | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    const seconds = Number(trimmed);
    // Small numbers are a delay (Retry-After style), large ones a Unix time.
    return new Date(seconds < 1e9 ? nowMs + seconds * 1000 : seconds * 1000);
  }
  const ms = Date.parse(trimmed);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function parseIntHeader(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

function readRateLimit(headers: Headers, nowMs: number): GoCardlessRateLimit {
  const rateLimit: GoCardlessRateLimit = {};
  const limit = parseIntHeader(headers.get('ratelimit-limit'));
  const remaining = parseIntHeader(headers.get('ratelimit-remaining'));
  const resetAt = parseResetTime(headers.get('ratelimit-reset'), nowMs);
  if (limit !== undefined) rateLimit.limit = limit;
  if (remaining !== undefined) rateLimit.remaining = remaining;
  if (resetAt !== undefined) rateLimit.resetAt = resetAt;
  return rateLimit;
}

function hasErrorEnvelope(text: string): boolean {
  try {
    return errorEnvelopeSchema.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
}

/** "404 invalid_api_usage: Resource not found (resource_not_found) [request_id …]" from GoCardless's error envelope. */
function describeErrorBody(status: number, text: string): string {
  let parsed: z.infer<typeof errorEnvelopeSchema> | undefined;
  try {
    const result = errorEnvelopeSchema.safeParse(JSON.parse(text));
    if (result.success) parsed = result.data;
  } catch {
    // Not JSON (a proxy's HTML page, say); fall through to a snippet.
  }
  if (!parsed) {
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    return snippet === '' ? `HTTP ${status}` : `HTTP ${status}: ${snippet}`;
  }
  const { error } = parsed;
  const reasons = (error.errors ?? [])
    .map((item) => [item.field, item.reason].filter(Boolean).join(' ') + (item.message && item.message !== error.message ? `: ${item.message}` : ''))
    .filter((item) => item !== '');
  let message = `HTTP ${status}${error.type ? ` ${error.type}` : ''}: ${error.message ?? 'no message'}`;
  if (reasons.length > 0) message += ` (${reasons.join('; ')})`;
  if (error.request_id) message += ` [request_id ${error.request_id}]`;
  return message;
}

export function createGoCardlessProvider(config: GoCardlessProviderConfig): GoCardlessProvider {
  const apiUrl = (config.apiUrl ?? GOCARDLESS_LIVE_API_URL).replace(/\/+$/, '');
  const timeoutMs = config.timeoutMs ?? 4000;
  const mode = config.mode !== undefined ? config.mode : inferMode(apiUrl);
  const now = config.now ?? Date.now;
  // Resolved per call so a test can stub globalThis.fetch after construction.
  const fetcher: typeof fetch = config.fetcher ?? ((input, init) => globalThis.fetch(input, init));

  async function tokenFor(account: string): Promise<string> {
    const entry = Object.hasOwn(config.accounts, account) ? config.accounts[account] : undefined;
    if (entry) return entry.accessToken;
    const sourced = config.credentials ? await config.credentials.credentialsFor('gocardless', account) : null;
    if (!sourced) {
      throw new ProviderError('gocardless', 'unknown_account', `no GoCardless account named ${JSON.stringify(account)} is configured`, false);
    }
    return sourced.bearer();
  }

  interface RawResponse {
    status: number;
    headers: Headers;
    text: string;
    rateLimit: GoCardlessRateLimit;
  }

  /** One GET; throws ProviderError for transport failures, 401/403, 429 and 5xx. */
  async function get(account: string, path: string, signal: AbortSignal | undefined): Promise<RawResponse> {
    const token = await tokenFor(account);
    const label = `GoCardless GET ${path.split('?')[0]}`;
    if (signal?.aborted) {
      throw new ProviderError('gocardless', 'timeout', `${label} was aborted by the caller before it started`, true, undefined, { cause: signal.reason });
    }
    const deadline = callDeadline(timeoutMs, signal);

    let response: Response;
    let text: string;
    try {
      response = await fetcher(`${apiUrl}${path}`, {
        method: 'GET',
        headers: {
          Authorization: `Bearer ${token}`,
          'GoCardless-Version': GOCARDLESS_API_VERSION,
          Accept: 'application/json',
        },
        redirect: 'manual',
        signal: deadline.signal,
      });
      // The deadline covers the body too: a server that stalls mid-body is as slow as one that never answers.
      text = await response.text();
    } catch (error) {
      if (deadline.timedOut && !signal?.aborted) {
        throw new ProviderError('gocardless', 'timeout', `${label} timed out after ${timeoutMs} ms`, true, undefined, { cause: error });
      }
      if (signal?.aborted) {
        throw new ProviderError('gocardless', 'timeout', `${label} was aborted by the caller`, true, undefined, { cause: signal.reason });
      }
      const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      throw new ProviderError('gocardless', 'unavailable', `${label} failed: ${reason}`, true, undefined, { cause: error });
    } finally {
      deadline.end();
    }

    const nowMs = now();
    const rateLimit = readRateLimit(response.headers, nowMs);
    const status = response.status;
    if (status === 401 || status === 403) {
      throw new ProviderError('gocardless', 'unauthorized', `${label}: ${describeErrorBody(status, text)}`, false);
    }
    if (status === 429) {
      const retryAfterMs = rateLimit.resetAt
        ? Math.max(0, rateLimit.resetAt.getTime() - nowMs)
        : parseRetryAfter(response.headers.get('retry-after'), nowMs);
      throw new ProviderError('gocardless', 'rate_limited', `${label}: ${describeErrorBody(status, text)}`, true, retryAfterMs);
    }
    if (status >= 500) {
      throw new ProviderError('gocardless', 'unavailable', `${label}: ${describeErrorBody(status, text)}`, true);
    }
    return { status, headers: response.headers, text, rateLimit };
  }

  function parseJson(label: string, text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      // A truncated 2xx body is more likely a dropped connection than a contract change.
      throw new ProviderError('gocardless', 'bad_response', `${label}: response body is not JSON`, true, undefined, { cause: error });
    }
  }

  function unexpectedStatus(label: string, response: RawResponse): ProviderError {
    // Other 4xx mean this request is wrong (bad parameter, missing header); repeating it cannot help.
    return new ProviderError('gocardless', 'bad_response', `${label}: ${describeErrorBody(response.status, response.text)}`, false);
  }

  async function fetchPayment(account: string, providerPaymentId: string, options: FetchOptions = {}): Promise<FetchResult> {
    const path = `/payments/${encodeURIComponent(providerPaymentId)}`;
    const label = `GoCardless GET ${path}`;
    const response = await get(account, path, options.signal);
    if (response.status === 404) {
      // Only GoCardless's own answer means "no such payment". A bare or HTML 404 comes
      // from something else (a wrong apiUrl, a proxy) and must not make payments vanish.
      if (hasErrorEnvelope(response.text)) return { kind: 'not_found' };
      throw new ProviderError('gocardless', 'bad_response', `${label}: ${describeErrorBody(404, response.text)} (not GoCardless's error envelope; is apiUrl right?)`, false);
    }
    if (response.status < 200 || response.status >= 300) throw unexpectedStatus(label, response);

    const parsed = goCardlessPaymentEnvelopeSchema.safeParse(parseJson(label, response.text));
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
      throw new ProviderError('gocardless', 'bad_response', `${label}: unexpected payment body: ${issues}`, false);
    }
    const payment = parsed.data.payments;
    if (payment.id !== providerPaymentId) {
      throw new ProviderError('gocardless', 'bad_response', `${label}: asked for ${providerPaymentId} but got ${payment.id}`, false);
    }
    // A second call only for a payment with refunds (or a refund event): not on every fetch.
    const refunds = goCardlessNeedsRefunds(payment, options.adjustments === true) ? await listRefunds(account, payment.id, options.signal) : undefined;
    try {
      return { kind: 'found', snapshot: mapGoCardlessPaymentResource(payment, { account, mode }, refunds) };
    } catch (error) {
      if (error instanceof GoCardlessMappingError) {
        throw new ProviderError('gocardless', 'bad_response', `${label}: ${error.message}`, false, undefined, { cause: error });
      }
      throw error;
    }
  }

  /** Every refund of a payment: `GET /refunds?payment=`, page by page. */
  async function listRefunds(account: string, paymentId: string, signal: AbortSignal | undefined): Promise<GoCardlessRefund[]> {
    const label = 'GoCardless GET /refunds';
    const refunds: GoCardlessRefund[] = [];
    let after: string | null = null;
    do {
      const query = new URLSearchParams({ payment: paymentId, limit: '500' });
      if (after !== null) query.set('after', after);
      const response = await get(account, `/refunds?${query.toString()}`, signal);
      if (response.status < 200 || response.status >= 300) throw unexpectedStatus(label, response);
      const parsed = goCardlessRefundsPageSchema.safeParse(parseJson(label, response.text));
      if (!parsed.success) {
        const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
        throw new ProviderError('gocardless', 'bad_response', `${label}: unexpected refunds body: ${issues}`, false);
      }
      refunds.push(...parsed.data.refunds.filter((refund) => refund.links?.payment === undefined || refund.links.payment === paymentId));
      after = parsed.data.meta?.cursors.after ?? null;
    } while (after !== null);
    return refunds;
  }

  async function listEvents(account: string, options: ListEventsOptions = {}): Promise<GoCardlessEventsPage> {
    const query = new URLSearchParams();
    if (options.after !== undefined) query.set('after', options.after);
    if (options.before !== undefined) query.set('before', options.before);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.resourceType !== undefined) query.set('resource_type', options.resourceType);
    if (options.action !== undefined) query.set('action', options.action);
    for (const [key, value] of Object.entries(options.links ?? {})) query.set(key, value);
    for (const [bound, value] of Object.entries(options.createdAt ?? {})) {
      if (value !== undefined) query.set(`created_at[${bound}]`, value instanceof Date ? value.toISOString() : value);
    }
    const search = query.toString();
    const path = `/events${search === '' ? '' : `?${search}`}`;
    const label = 'GoCardless GET /events';

    const response = await get(account, path, options.signal);
    if (response.status < 200 || response.status >= 300) throw unexpectedStatus(label, response);
    const parsed = eventsPageSchema.safeParse(parseJson(label, response.text));
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
      throw new ProviderError('gocardless', 'bad_response', `${label}: unexpected events body: ${issues}`, false);
    }
    return {
      events: parsed.data.events,
      after: parsed.data.meta.cursors.after ?? null,
      before: parsed.data.meta.cursors.before ?? null,
      rateLimit: response.rateLimit,
    };
  }

  async function getCreditorId(account: string, options: FetchOptions = {}): Promise<string> {
    const label = 'GoCardless GET /creditors';
    // A token belongs to one organisation; its first creditor names it.
    const response = await get(account, '/creditors?limit=1', options.signal);
    if (response.status < 200 || response.status >= 300) throw unexpectedStatus(label, response);
    const parsed = creditorsPageSchema.safeParse(parseJson(label, response.text));
    if (!parsed.success) throw new ProviderError('gocardless', 'bad_response', `${label}: unexpected creditors body`, false);
    const creditor = parsed.data.creditors[0];
    if (!creditor) throw new ProviderError('gocardless', 'bad_response', `${label}: the token's organisation has no creditor`, false);
    return creditor.id;
  }

  return {
    name: 'gocardless',
    hasAccount: (account) => Object.hasOwn(config.accounts, account),
    fetchPayment,
    listEvents,
    getCreditorId,
  };
}
