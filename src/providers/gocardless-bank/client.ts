/**
 * A typed client for GoCardless Bank Account Data (`/api/v2`). Plain fetch: the
 * official Node SDK (nordigen-node) keeps its token in the process and does not
 * surface the rate-limit headers, and fetch runs unchanged on Workers.
 *
 * Bearer tokens come from a TokenSource (tokens.ts keeps them in Postgres so that a
 * fleet mints one); a 401 invalidates the token once and retries with a fresh one.
 */
import type { z } from 'zod';
import { errorMessage } from '../../primitives/error-message.js';
import {
  accountSchema,
  agreementSchema,
  errorBodySchema,
  institutionSchema,
  requisitionPageSchema,
  requisitionSchema,
  tokenNewSchema,
  tokenRefreshSchema,
  transactionsSchema,
  type AccessScope,
  type Account,
  type Agreement,
  type Institution,
  type Requisition,
  type RequisitionPage,
  type TokenNew,
  type TransactionsResponse,
} from './schemas.js';

export type BankErrorKind = 'daily_limit' | 'rate_limited' | 'access_refused' | 'not_found' | 'bad_request' | 'unavailable';

export class BankApiError extends Error {
  override readonly name = 'BankApiError';
  constructor(
    readonly kind: BankErrorKind,
    readonly status: number,
    message: string,
    /** When the limit resets, for daily_limit and rate_limited. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'unavailable';
  }
}

export interface RateLimitInfo {
  limit?: number;
  remaining?: number;
  resetSeconds?: number;
  accountSuccessLimit?: number;
  accountSuccessRemaining?: number;
  accountSuccessResetSeconds?: number;
}

/**
 * Reads both spellings seen in the wild: `X-RateLimit-*` and `HTTP_X_RATELIMIT_*`
 * (header names are case-insensitive; the underscores are part of the second name).
 */
export function readRateLimitHeaders(headers: Headers): RateLimitInfo {
  const read = (suffix: string): number | undefined => {
    for (const name of [`x-ratelimit-${suffix}`, `http_x_ratelimit_${suffix.replaceAll('-', '_')}`]) {
      const value = headers.get(name);
      if (value !== null && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
    }
    return undefined;
  };
  return {
    limit: read('limit'),
    remaining: read('remaining'),
    resetSeconds: read('reset'),
    accountSuccessLimit: read('account-success-limit'),
    accountSuccessRemaining: read('account-success-remaining'),
    accountSuccessResetSeconds: read('account-success-reset'),
  };
}

const TRY_AGAIN = /try again in (\d+) seconds/i;
const DAILY = /daily request limit|\/day\b|per day/i;

/**
 * A 429 is either the bank's daily limit on one account's scope (it pauses that
 * account and scope until the reset, and is not an error) or GoCardless's own
 * per-minute/hour limit (retry soon). The body's detail and the account-success
 * headers tell them apart.
 */
export function classify429(body: unknown, info: RateLimitInfo, now: number = Date.now()): BankApiError {
  const parsed = errorBodySchema.safeParse(body);
  const detail = parsed.success && typeof parsed.data.detail === 'string' ? parsed.data.detail : '';
  const summary = parsed.success ? (parsed.data.summary ?? '') : '';
  const seconds = Number(TRY_AGAIN.exec(detail)?.[1] ?? NaN);
  const daily = DAILY.test(detail) || (parsed.success && parsed.data.type === 'RateLimitError') || info.accountSuccessRemaining === 0;
  const resetSeconds = Number.isFinite(seconds)
    ? seconds
    : daily
      ? (info.accountSuccessResetSeconds ?? info.resetSeconds ?? secondsToUtcMidnight(now))
      : (info.resetSeconds ?? 60);
  return new BankApiError(daily ? 'daily_limit' : 'rate_limited', 429, `${summary || 'rate limited'}: ${detail || 'no detail'}`.trim(), resetSeconds * 1000);
}

function secondsToUtcMidnight(now: number): number {
  const next = new Date(now);
  next.setUTCHours(24, 0, 0, 0);
  return Math.ceil((next.getTime() - now) / 1000);
}

export interface TokenSource {
  access(): Promise<string>;
  /** The API refused this token: make the next access() get another. */
  invalidate(token: string): Promise<void>;
}

export interface BankClientOptions {
  /** Origin, e.g. https://bankaccountdata.gocardless.com; `/api/v2` is added. */
  baseUrl: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export interface CreateAgreementInput {
  institutionId: string;
  maxHistoricalDays: number;
  accessValidForDays: number;
  accessScope?: AccessScope[];
}

export interface CreateRequisitionInput {
  institutionId: string;
  redirect: string;
  reference: string;
  agreement: string;
  userLanguage?: string;
}

export interface TransactionsQuery {
  dateFrom?: string;
  dateTo?: string;
}

export interface BankTransport {
  /** Unauthenticated calls (token endpoints). */
  call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown, token?: string): Promise<{ data: T; rateLimit: RateLimitInfo }>;
}

export function createBankTransport(options: BankClientOptions): BankTransport {
  const doFetch = options.fetch ?? fetch;
  const base = `${options.baseUrl.replace(/\/+$/, '')}/api/v2`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    async call(method, path, schema, body, token) {
      let response: Response;
      try {
        response = await doFetch(`${base}${path}`, {
          method,
          headers: {
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new BankApiError('unavailable', 0, `${method} ${path}: ${errorMessage(error)}`);
      }
      const rateLimit = readRateLimitHeaders(response.headers);
      const text = await response.text();
      let json: unknown = undefined;
      try {
        json = text === '' ? {} : JSON.parse(text);
      } catch {
        if (response.ok) throw new BankApiError('unavailable', response.status, `${method} ${path}: answer is not JSON`);
      }
      if (response.status === 429) throw classify429(json, rateLimit);
      if (!response.ok) throw errorFor(method, path, response.status, json);
      const parsed = schema.safeParse(json);
      if (!parsed.success) throw new BankApiError('unavailable', response.status, `${method} ${path}: unexpected answer: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      return { data: parsed.data, rateLimit };
    },
  };
}

function errorFor(method: string, path: string, status: number, body: unknown): BankApiError {
  const parsed = errorBodySchema.safeParse(body);
  const detail = parsed.success ? [parsed.data.summary, typeof parsed.data.detail === 'string' ? parsed.data.detail : JSON.stringify(parsed.data.detail ?? '')].filter(Boolean).join(': ') : '';
  const message = `${method} ${path} → ${status}${detail ? ` ${detail}` : ''}`;
  if (status === 401 || status === 403) return new BankApiError('access_refused', status, message);
  if (status === 404) return new BankApiError('not_found', status, message);
  // 409 "account is being processed", 5xx: the same call can succeed later.
  if (status >= 500 || status === 409) return new BankApiError('unavailable', status, message);
  return new BankApiError('bad_request', status, message);
}

export interface BankClient {
  mintToken(secretId: string, secretKey: string): Promise<TokenNew>;
  refreshToken(refresh: string): Promise<{ access: string; access_expires: number }>;
  listInstitutions(country?: string): Promise<Institution[]>;
  createAgreement(input: CreateAgreementInput): Promise<Agreement>;
  getAgreement(id: string): Promise<Agreement>;
  createRequisition(input: CreateRequisitionInput): Promise<Requisition>;
  getRequisition(id: string): Promise<Requisition>;
  listRequisitions(page: { limit: number; offset: number }): Promise<RequisitionPage>;
  deleteRequisition(id: string): Promise<void>;
  getAccount(id: string): Promise<Account>;
  getTransactions(accountId: string, query?: TransactionsQuery): Promise<{ data: TransactionsResponse; rateLimit: RateLimitInfo }>;
}

export function createBankClient(transport: BankTransport, tokens: TokenSource): BankClient {
  // One retry with a fresh token when the stored one was refused (revoked, rotated secrets).
  async function authed<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown) {
    const token = await tokens.access();
    try {
      return await transport.call(method, path, schema, body, token);
    } catch (error) {
      if (!(error instanceof BankApiError) || error.status !== 401) throw error;
      await tokens.invalidate(token);
      return transport.call(method, path, schema, body, await tokens.access());
    }
  }
  const anything = { safeParse: (value: unknown) => ({ success: true as const, data: value }) } as unknown as z.ZodType<unknown>;
  return {
    mintToken: async (secretId, secretKey) => (await transport.call('POST', '/token/new/', tokenNewSchema, { secret_id: secretId, secret_key: secretKey })).data,
    refreshToken: async (refresh) => (await transport.call('POST', '/token/refresh/', tokenRefreshSchema, { refresh })).data,
    listInstitutions: async (country) =>
      (await authed('GET', `/institutions/${country ? `?country=${encodeURIComponent(country)}` : ''}`, institutionSchema.array())).data,
    createAgreement: async (input) =>
      (
        await authed('POST', '/agreements/enduser/', agreementSchema, {
          institution_id: input.institutionId,
          max_historical_days: input.maxHistoricalDays,
          access_valid_for_days: input.accessValidForDays,
          access_scope: input.accessScope ?? ['balances', 'details', 'transactions'],
        })
      ).data,
    getAgreement: async (id) => (await authed('GET', `/agreements/enduser/${encodeURIComponent(id)}/`, agreementSchema)).data,
    createRequisition: async (input) =>
      (
        await authed('POST', '/requisitions/', requisitionSchema, {
          institution_id: input.institutionId,
          redirect: input.redirect,
          reference: input.reference,
          agreement: input.agreement,
          user_language: input.userLanguage ?? 'EN',
        })
      ).data,
    getRequisition: async (id) => (await authed('GET', `/requisitions/${encodeURIComponent(id)}/`, requisitionSchema)).data,
    listRequisitions: async ({ limit, offset }) => (await authed('GET', `/requisitions/?limit=${limit}&offset=${offset}`, requisitionPageSchema)).data,
    deleteRequisition: async (id) => {
      await authed('DELETE', `/requisitions/${encodeURIComponent(id)}/`, anything);
    },
    getAccount: async (id) => (await authed('GET', `/accounts/${encodeURIComponent(id)}/`, accountSchema)).data,
    getTransactions: async (accountId, query = {}) => {
      const params = new URLSearchParams();
      if (query.dateFrom) params.set('date_from', query.dateFrom);
      if (query.dateTo) params.set('date_to', query.dateTo);
      const qs = params.size > 0 ? `?${params}` : '';
      return authed('GET', `/accounts/${encodeURIComponent(accountId)}/transactions/${qs}`, transactionsSchema);
    },
  };
}
