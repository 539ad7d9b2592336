import type { Context } from 'hono';
import { ZodError } from 'zod';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { LockBusyError } from '../lock/locker.js';
import { SecretsError } from '../accounts/secrets.js';
import { ProviderError } from '../providers/types.js';
import { UnknownProviderError } from '../payments/sync-payment.js';
import { errorStatus, providerErrorCode, type ErrorCode } from './error-codes.js';
import { annotateRequest } from './middleware.js';

/** An error with a machine code, its HTTP status (from the catalogue, error-codes.ts), and whether a retry can help. */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable = false,
    readonly details?: unknown,
  ) {
    super(message);
    this.status = errorStatus(code);
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const badRequest = (message: string, details?: unknown) => new AppError('bad_request', message, false, details);

/** What a retryable 5xx without a more precise hint tells the caller to wait. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/** The one place where errors become HTTP responses. No stack trace ever leaves. */
export function toErrorResponse(error: unknown, c: Context) {
  const requestId = c.get('requestId') as string | undefined;
  if (!(error instanceof AppError) && clientWentAway(c)) {
    // The client hung up mid-request (its body cut short): its doing, not ours. Logged
    // by the request line at info, without a stack; the answer reaches nobody.
    const code: ErrorCode = 'client_closed_request';
    annotateRequest(c, { code });
    return c.json({ error: { code, message: 'the client closed the connection', retryable: true, requestId } }, errorStatus(code));
  }
  const appError = toAppError(error);
  // The request's one log line names the code the client was given.
  annotateRequest(c, { code: appError.code });
  // Deliberate refusals are already in the request log line; only surprises get a stack.
  if (!(error instanceof AppError) && appError.status >= 500) {
    c.get('logger')?.error({ err: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error) }, 'request failed');
  }
  if (error instanceof ProviderError && error.retryAfterMs) {
    c.header('Retry-After', String(Math.ceil(error.retryAfterMs / 1000)));
  } else if (appError.retryable && appError.status >= 500) {
    // Every retryable 5xx says when to come back; without a hint of the provider's, soon.
    c.header('Retry-After', String(DEFAULT_RETRY_AFTER_SECONDS));
  }
  return c.json(
    {
      error: {
        code: appError.code,
        message: appError.message,
        retryable: appError.retryable,
        requestId,
        ...(appError.details === undefined ? {} : { details: appError.details }),
      },
    },
    appError.status,
  );
}

function clientWentAway(c: Context): boolean {
  try {
    return c.req.raw.signal?.aborted === true;
  } catch {
    return false;
  }
}

function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof ZodError) {
    return badRequest(
      error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '),
      error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    );
  }
  if (error instanceof LockBusyError) {
    return new AppError('payment_busy', 'another sync of this payment is in progress; retry shortly', true);
  }
  if (error instanceof UnknownProviderError) return new AppError('provider_not_configured', error.message);
  if (error instanceof ProviderError) {
    if (error.code === 'unknown_account') return new AppError('unknown_account', error.message);
    return new AppError(providerErrorCode(error.code), `${error.provider}: ${error.message}`, error.retryable);
  }
  if (error instanceof SecretsError) {
    return new AppError('account_unavailable', `${error.message}; nothing was stored`, true);
  }
  if (isDatabaseUnavailable(error)) {
    return new AppError('database_unavailable', 'the database is unreachable; retry later', true);
  }
  return new AppError('internal', 'internal error', true);
}

function isDatabaseUnavailable(error: unknown): boolean {
  // drizzle wraps the driver's error; the connection failure is its cause.
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    if (isConnectionFailure((current as { code?: string }).code)) return true;
  }
  return false;
}

/**
 * Driver and socket codes that mean the database went away under the request. EPIPE is
 * what a write gets when Postgres has already closed the socket (a restart mid-query),
 * before the driver has noticed the close itself.
 */
const CONNECTION_FAILURES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
]);

function isConnectionFailure(code: string | undefined): boolean {
  return code !== undefined && CONNECTION_FAILURES.has(code);
}
