/**
 * The Mollie adapter: fetches payments through Mollie's official SDK and turns every
 * failure into a `ProviderError` with a machine code and whether a retry can help.
 */
import { Client, HTTPClient } from 'mollie-api-typescript';
import type { RetryConfig } from 'mollie-api-typescript/lib/retries.js';
import {
  ClientError,
  ConnectionError,
  InvalidRequestError,
  RequestAbortedError,
  RequestTimeoutError,
  ResponseValidationError,
  SDKValidationError,
  UnexpectedClientError,
} from 'mollie-api-typescript/models/errors';
import { callDeadline } from '../../call-deadline.js';
import { MoneyError } from '../../money.js';
import { describeTransportFailure } from '../../primitives/error-message.js';
import { parseRetryAfter } from '../../primitives/retry-after.js';
import { fetchPlainGet, type PlainGet } from '../plain-get.js';
import {
  ProviderError,
  type AccountCredentialsSource,
  type FetchOptions,
  type FetchResult,
  type PaymentProvider,
  type PaymentSnapshot,
  type SourcedCredentials,
} from '../types.js';
import { createDirectPaymentGet } from './direct-get.js';
import { MollieMappingError, mapMolliePayment, type MollieAdjustments, type MolliePayment } from './mapping.js';
import { idPrefixKind } from './webhook.js';

export type { RetryConfig as MollieRetryConfig } from 'mollie-api-typescript/lib/retries.js';

export const MOLLIE_DEFAULT_API_URL = 'https://api.mollie.com';
export const MOLLIE_DEFAULT_TIMEOUT_MS = 4000;

/**
 * Worst case for one call: retries start until 3 s have elapsed, then wait at most 1 s,
 * then one last attempt of at most `timeoutMs` (4 s): about 8 s, well inside the 15 s
 * Mollie gives our webhook endpoint. Only 5xx and connection failures are retried this
 * way: a 429 is never retried by the SDK (see requestOptions below).
 */
export const MOLLIE_DEFAULT_RETRY: RetryConfig = {
  strategy: 'backoff',
  backoff: { initialInterval: 200, maxInterval: 1000, exponent: 2, maxElapsedTime: 3000 },
  retryConnectionErrors: true,
};

/** The SDK's own defaults for whatever a partial backoff config leaves out. */
const MOLLIE_SDK_BACKOFF = { initialInterval: 500, maxInterval: 60000, exponent: 1.5, maxElapsedTime: 3600000 };

export interface MollieProviderConfig {
  /** Account name → credentials; 'default' is the env-var account. */
  accounts: Record<string, { apiKey: string }>;
  /** Accounts created at runtime (the account registry): asked for any name not in `accounts`. */
  credentials?: AccountCredentialsSource;
  /** Origin of the API, without /v2 (a trailing /v2 is tolerated). Defaults to Mollie's. */
  apiUrl?: string;
  /** Per attempt, not per call. Default 4000 ms. */
  timeoutMs?: number;
  /** The SDK's retry config; tests pass `{ strategy: 'none' }`. */
  retryConfig?: RetryConfig;
  fetcher?: typeof fetch;
  /**
   * How `fetchPayment` reads a payment: `direct` (default) with one plain GET checked for
   * the fields the mapping reads (direct-get.ts), `sdk` through the official SDK like
   * every other call. Both give the same snapshot.
   */
  paymentFetch?: 'direct' | 'sdk';
  /**
   * The direct GET's transport; default `fetch` (the `fetcher` above, else the global).
   * The Node entry passes Node's own http (src/providers/plain-get-node.ts).
   */
  plainGet?: PlainGet;
}

export interface ListRecentPaymentsOptions {
  /** Stop at the first payment created before this instant (the list is newest first). */
  cutoff: Date;
  /** Page size, 1..250 (Mollie's maximum). Default 250. */
  limit?: number;
  signal?: AbortSignal;
}

export interface MollieProvider extends PaymentProvider {
  readonly name: 'mollie';
  /**
   * The payment id behind a webhook id: `tr_` as-is, `re_`/`chb_` looked up through the
   * refunds/chargebacks lists, anything else (or an unknown refund/chargeback) null.
   */
  resolvePaymentId(account: string, id: string, options?: FetchOptions): Promise<string | null>;
  /** Newest first, until the cutoff; for the reconciliation sweep. */
  listRecentPayments(account: string, options: ListRecentPaymentsOptions): AsyncIterable<PaymentSnapshot>;
}

/**
 * Narrows a configured provider to the Mollie adapter, with its webhook helpers. Checks
 * the methods rather than the name: a test double named 'mollie' may only fetch.
 */
export function isMollieProvider(provider: PaymentProvider | undefined): provider is MollieProvider {
  const candidate = provider as Partial<MollieProvider> | undefined;
  return (
    candidate?.name === 'mollie' &&
    typeof candidate.resolvePaymentId === 'function' &&
    typeof candidate.listRecentPayments === 'function'
  );
}

/** Clients of stored accounts kept per process (a client is a few objects; 10,000 fit easily). */
const MAX_STORED_CLIENTS = 20_000;

interface MollieTarget {
  client: Client;
  /** An organization token or OAuth grant: test-mode payments need testmode=true. */
  organizationLevel: boolean;
  /** The profile an organization token serves: sent with every list. */
  profileId?: string;
  /** The bearer to send now (the direct payment GET sends it itself). */
  bearer(): Promise<string>;
}

/** Statuses whose Response may not carry a body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

const PAYMENT_ID = /^tr_[A-Za-z0-9]+$/;
const SUB_RESOURCE_ID = /^(re|chb)_[A-Za-z0-9]+$/;

function mollieDetail(error: ClientError): string {
  if (error instanceof ResponseValidationError) return error.message;
  try {
    const body = JSON.parse(error.body) as { title?: unknown; detail?: unknown };
    if (typeof body.detail === 'string') return `${String(body.title ?? '')}: ${body.detail}`.replace(/^: /, '');
  } catch {
    // not JSON: fall through to the status line
  }
  return error.rawResponse.statusText || 'no detail';
}

/**
 * One place that decides what a failed Mollie call means for the caller. The SDK's HTTP
 * errors are never attached as `cause`: they hold the Request, Authorization header
 * included, and a logged cause would leak the API key.
 */
export function toMollieProviderError(error: unknown, signal?: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  const fail = (code: ProviderError['code'], message: string, retryable: boolean, retryAfterMs?: number, cause?: unknown) =>
    new ProviderError('mollie', code, message, retryable, retryAfterMs, cause === undefined ? undefined : { cause });

  if (signal?.aborted) return fail('timeout', 'Mollie request aborted by the caller', true, undefined, signal.reason);
  // Before ClientError: a validation failure is a ClientError subclass with a 2xx status.
  if (error instanceof ResponseValidationError) {
    return fail('bad_response', `Mollie response did not match the expected schema: ${error.message}`, false);
  }
  if (error instanceof ClientError) {
    const status = error.statusCode;
    const detail = mollieDetail(error);
    if (status === 429) {
      return fail('rate_limited', `Mollie rate limit: ${detail}`, true, parseRetryAfter(error.headers.get('retry-after'), Date.now()));
    }
    if (status === 401 || status === 403) return fail('unauthorized', `Mollie rejected the API key (${status}): ${detail}`, false);
    if (status === 408) return fail('timeout', `Mollie answered 408: ${detail}`, true);
    if (status >= 500) return fail('unavailable', `Mollie answered ${status}: ${detail}`, true);
    // 2xx with the wrong content type, or a 4xx we did not expect.
    return fail('bad_response', `unexpected Mollie response ${status}: ${detail}`, false);
  }
  if (error instanceof RequestTimeoutError) return fail('timeout', 'Mollie request timed out', true, undefined, error.cause);
  if (error instanceof RequestAbortedError) return fail('timeout', 'Mollie request was aborted', true, undefined, error.cause);
  if (error instanceof ConnectionError) {
    return fail('unavailable', `cannot reach Mollie: ${describeTransportFailure(error.cause)}`, true, undefined, error.cause);
  }
  if (error instanceof MollieMappingError || error instanceof MoneyError) {
    return fail('bad_response', `cannot map the Mollie payment: ${error.message}`, false, undefined, error);
  }
  if (error instanceof SDKValidationError || error instanceof InvalidRequestError) {
    return fail('bad_response', `Mollie SDK rejected the request: ${error.message}`, false);
  }
  if (error instanceof UnexpectedClientError) {
    return fail('unavailable', `unexpected Mollie client failure: ${describeTransportFailure(error.cause)}`, true);
  }
  return fail('unavailable', `unexpected failure calling Mollie: ${describeTransportFailure(error)}`, true, undefined, error);
}

/** Every item of a paged list (the SDK follows `_links.next`). */
async function collect<P, T>(pages: AsyncIterable<P>, items: (page: P) => T[] | undefined): Promise<T[]> {
  const all: T[] = [];
  for await (const page of pages) all.push(...(items(page) ?? []));
  return all;
}

function isStatus(error: unknown, ...statuses: number[]): boolean {
  return error instanceof ClientError && !(error instanceof ResponseValidationError) && statuses.includes(error.statusCode);
}

export function normaliseApiUrl(apiUrl: string): string {
  // The SDK joins relative `v2/...` paths itself, so a configured .../v2 would double it.
  return apiUrl.replace(/\/+$/, '').replace(/\/v2$/, '');
}

export function createMollieProvider(config: MollieProviderConfig): MollieProvider {
  const timeoutMs = config.timeoutMs ?? MOLLIE_DEFAULT_TIMEOUT_MS;
  const baseFetch = config.fetcher ?? fetch;
  const serverURL = normaliseApiUrl(config.apiUrl ?? MOLLIE_DEFAULT_API_URL);
  const retryConfig = config.retryConfig ?? MOLLIE_DEFAULT_RETRY;

  // The SDK's own timeoutMs is silently skipped when the caller passes a signal, so the
  // per-attempt timeout lives in the fetcher, combined with whatever signal the SDK set.
  // The body is read here, inside the limit, so the timer is gone when the call is.
  const httpClient = new HTTPClient({
    fetcher: async (input, init) => {
      const request = input instanceof Request && init === undefined ? input : new Request(input, init);
      const deadline = callDeadline(timeoutMs, request.signal);
      try {
        const response = await baseFetch(request, { signal: deadline.signal });
        const body = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer();
        return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
      } finally {
        deadline.end();
      }
    },
  });

  const directGet =
    (config.paymentFetch ?? 'direct') === 'direct'
      ? createDirectPaymentGet({
          serverURL,
          // Called as a plain function: workerd refuses a global fetch invoked as a method of another object ("Illegal invocation").
          get: config.plainGet ?? fetchPlainGet((input, init) => baseFetch(input, init)),
          timeoutMs,
          backoff: retryConfig.strategy === 'backoff' ? { ...MOLLIE_SDK_BACKOFF, ...retryConfig.backoff } : null,
        })
      : null;

  const clients = new Map<string, Client>();
  for (const [account, { apiKey }] of Object.entries(config.accounts)) {
    // security is explicit: without it the SDK reads CLIENT_API_KEY from the environment.
    clients.set(account, new Client({ security: { apiKey }, serverURL, httpClient, retryConfig }));
  }

  /**
   * Clients of stored accounts, by name, each for one version of the credentials (a PATCH
   * or an OAuth refresh seals new ones and so builds a new client). Least recently used
   * first out past the cap.
   */
  const storedClients = new Map<string, { fingerprint: string; target: MollieTarget }>();

  function buildStoredClient(sourced: SourcedCredentials): MollieTarget {
    const { credentials } = sourced;
    switch (credentials.kind) {
      case 'apiKey':
        return {
          client: new Client({ security: { apiKey: credentials.apiKey }, serverURL, httpClient, retryConfig }),
          organizationLevel: false,
          bearer: () => Promise.resolve(credentials.apiKey),
        };
      case 'organizationToken':
      case 'oauth': {
        // Every Mollie credential travels as a bearer, but each SDK operation names the
        // schemes it accepts (payments: apiKey, advancedAccessToken or oAuth): all three
        // carry the token. The function is asked before each call, so an OAuth token
        // refreshed in between is the one sent.
        const security = async () => {
          const token = await sourced.bearer();
          return { apiKey: token, advancedAccessToken: token, oAuth: token };
        };
        // Organization-level credentials see every profile: Mollie wants the profileId on
        // lists (and creations). OAuth credentials hold none; their lists go without it.
        // Passed on each call, not as the SDK's global profileId/testmode: the SDK accepts
        // those only with a synchronous security holding an access_ token, and this one is
        // asked per call.
        const profileId = credentials.kind === 'organizationToken' ? credentials.profileId : undefined;
        return { client: new Client({ security, serverURL, httpClient, retryConfig }), organizationLevel: true, bearer: () => sourced.bearer(), ...(profileId ? { profileId } : {}) };
      }
      case 'accessToken':
        throw new ProviderError('mollie', 'unknown_account', 'a GoCardless access token cannot call Mollie', false);
      default: {
        const unknown: never = credentials;
        throw new Error(`unknown credentials kind ${String((unknown as { kind?: unknown }).kind)}`);
      }
    }
  }

  async function clientFor(account: string): Promise<MollieTarget> {
    const fixed = clients.get(account);
    if (fixed) return { client: fixed, organizationLevel: false, bearer: () => Promise.resolve(config.accounts[account]!.apiKey) };
    const sourced = config.credentials ? await config.credentials.credentialsFor('mollie', account) : null;
    if (!sourced) {
      throw new ProviderError('mollie', 'unknown_account', `no Mollie account named ${JSON.stringify(account)} is configured`, false);
    }
    const cached = storedClients.get(account);
    storedClients.delete(account);
    const target = cached && cached.fingerprint === sourced.fingerprint ? cached.target : buildStoredClient(sourced);
    storedClients.set(account, { fingerprint: sourced.fingerprint, target });
    if (storedClients.size > MAX_STORED_CLIENTS) storedClients.delete(storedClients.keys().next().value!);
    return target;
  }

  // 5xx and connection failures are retried by the SDK; a 429 is not. The SDK would retry
  // it within seconds whatever the Retry-After says; instead the 429 surfaces at once and
  // pauses the account for every path until its Retry-After (rate-limit-pause.ts).
  const requestOptions = (signal: AbortSignal | undefined) => ({ retryCodes: ['5xx'], ...(signal ? { fetchOptions: { signal } } : {}) });

  async function fetchPayment(account: string, providerPaymentId: string, options?: FetchOptions): Promise<FetchResult> {
    const { client, organizationLevel, bearer } = await clientFor(account);
    // Not a payment id: Mollie would 404 it anyway; skip the call (and never build odd paths).
    if (!PAYMENT_ID.test(providerPaymentId)) return { kind: 'not_found' };
    // Organization-level credentials need testmode (below), which only the SDK path sends.
    if (directGet && !organizationLevel) {
      const result = await directGet(await bearer(), providerPaymentId, options?.signal);
      if (result.kind === 'not_found') return result;
      if (result.payment.id !== providerPaymentId) {
        throw toMollieProviderError(new MollieMappingError(`asked Mollie for ${providerPaymentId} and got ${result.payment.id}`));
      }
      try {
        return { kind: 'found', snapshot: mapMolliePayment(result.payment, account, await listAdjustments(client, result.payment, options?.signal)) };
      } catch (error) {
        throw toMollieProviderError(error, options?.signal);
      }
    }
    try {
      let payment;
      try {
        payment = await client.payments.get({ paymentId: providerPaymentId }, requestOptions(options?.signal));
      } catch (error) {
        // Organization-level credentials see a test-mode payment only when asked with
        // testmode=true (Mollie answers 404 otherwise); the mode of a payment is not known
        // before it is fetched, so a 404 is asked again in test mode.
        if (!organizationLevel || !isStatus(error, 404)) throw error;
        payment = await client.payments.get({ paymentId: providerPaymentId, testmode: true }, requestOptions(options?.signal));
      }
      if (payment.id !== providerPaymentId) {
        throw new MollieMappingError(`asked Mollie for ${providerPaymentId} and got ${payment.id}`);
      }
      return { kind: 'found', snapshot: mapMolliePayment(payment, account, await listAdjustments(client, payment, options?.signal)) };
    } catch (error) {
      if (isStatus(error, 404, 410)) return { kind: 'not_found' };
      throw toMollieProviderError(error, options?.signal);
    }
  }

  /**
   * The payment's refunds and chargebacks, listed only when the payment links to them
   * (Mollie adds `_links.refunds` / `_links.chargebacks` once there are any), so a payment
   * without any still costs one request. Not `?embed=refunds,chargebacks` on the payment:
   * the SDK's payment schema has no `_embedded` and drops it.
   */
  async function listAdjustments(client: Client, payment: MolliePayment, signal: AbortSignal | undefined): Promise<MollieAdjustments> {
    // The SDK renames `_links` to `links`; the direct GET keeps the wire's `_links`.
    const wire = payment as { links?: Record<string, unknown>; _links?: Record<string, unknown> };
    const links = wire.links ?? wire._links ?? {};
    const request = { paymentId: payment.id, limit: 250 };
    const [refunds, chargebacks] = await Promise.all([
      links.refunds ? collect(await client.refunds.list(request, requestOptions(signal)), (page) => page.result.embedded.refunds) : undefined,
      links.chargebacks ? collect(await client.chargebacks.list(request, requestOptions(signal)), (page) => page.result.embedded.chargebacks) : undefined,
    ]);
    return { refunds, chargebacks };
  }

  async function resolvePaymentId(account: string, id: string, options?: FetchOptions): Promise<string | null> {
    const { client, organizationLevel, profileId } = await clientFor(account);
    const kind = idPrefixKind(id);
    if (kind === 'payment') return id;
    if (kind === 'other' || !SUB_RESOURCE_ID.test(id)) return null;
    // Organization-level credentials look in live mode, then in test mode (see fetchPayment).
    for (const testmode of organizationLevel ? [undefined, true] : [undefined]) {
      // `from` starts the list AT the given item, so a one-item page is the item itself,
      // unless the id is unknown (Mollie: 400 invalid cursor) or the list moved on.
      const request = { from: id, limit: 1, ...(profileId ? { profileId } : {}), ...(testmode ? { testmode } : {}) };
      try {
        const found =
          kind === 'refund'
            ? (await client.refunds.all(request, requestOptions(options?.signal))).result.embedded.refunds[0]
            : (await client.chargebacks.all(request, requestOptions(options?.signal))).result.embedded.chargebacks[0];
        if (found && found.id === id) return found.paymentId;
      } catch (error) {
        if (!isStatus(error, 400, 404, 410)) throw toMollieProviderError(error, options?.signal);
      }
    }
    return null;
  }

  async function* listRecentPayments(account: string, options: ListRecentPaymentsOptions): AsyncGenerator<PaymentSnapshot> {
    const { client, organizationLevel, profileId } = await clientFor(account);
    const limit = Math.min(250, Math.max(1, Math.trunc(options.limit ?? 250)));
    const cutoff = options.cutoff.getTime();
    // Organization-level credentials list one mode at a time: live, then test.
    const modes: Array<boolean | undefined> = organizationLevel ? [false, true] : [undefined];
    try {
      for (const testmode of modes) {
        const pages = await client.payments.list(
          { limit, sort: 'desc', ...(testmode === undefined ? {} : { testmode }), ...(profileId ? { profileId } : {}) },
          requestOptions(options.signal),
        );
        listing: for await (const page of pages) {
          for (const payment of page.result.embedded.payments ?? []) {
            const createdAt = Date.parse(payment.createdAt);
            if (Number.isNaN(createdAt)) {
              throw new MollieMappingError(`payment ${payment.id} has an unreadable createdAt ${JSON.stringify(payment.createdAt)}`);
            }
            if (createdAt < cutoff) break listing;
            yield mapMolliePayment(payment, account);
          }
        }
      }
    } catch (error) {
      throw toMollieProviderError(error, options.signal);
    }
  }

  return {
    name: 'mollie',
    hasAccount: (account) => clients.has(account),
    fetchPayment,
    resolvePaymentId,
    listRecentPayments,
  };
}
