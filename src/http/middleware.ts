import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { SpanKind } from '@opentelemetry/api';
import type { Metrics } from '../observability/metrics.js';
import { tracingEnabled, withSpan } from '../observability/tracing.js';
import type { Logger } from 'pino';
import { AppError } from './errors.js';
import { sourceOf, type FailedAttempts } from './failed-attempts.js';

/** What a handler adds to its request's log line. */
export interface RequestLogFields {
  fields: Record<string, unknown>;
  level: 'info' | 'warn';
}

export type AppEnv = { Variables: { requestId: string; logger: Logger; requestLog?: RequestLogFields } };

/**
 * Adds fields (provider, payment id, outcome, ...) to the request's one log line, and
 * raises its level to `warn` when asked, instead of writing a second line.
 */
export function annotateRequest(c: Context<AppEnv>, fields: Record<string, unknown>, level: 'info' | 'warn' = 'info'): void {
  const current = c.get('requestLog');
  c.set('requestLog', { fields: { ...current?.fields, ...fields }, level: current?.level === 'warn' ? 'warn' : level });
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Gives every request an id (the caller's, when sane) and one structured log line. */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : `req_${randomUUID().replaceAll('-', '')}`;
    const child = logger.child({ requestId });
    c.set('requestId', requestId);
    c.set('logger', child);
    // Set before any response exists: c.json, c.body and the error answers carry it from
    // there. Set on a finished response instead, hono would rebuild that response, and the
    // Node adapter would then write it through a body stream instead of in one piece.
    c.header('x-request-id', requestId);
    const started = performance.now();
    await next();
    if (c.res.headers.get('x-request-id') !== requestId) stampRequestId(c, requestId);
    const annotation = c.get('requestLog');
    child[annotation?.level ?? 'info'](
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started), ...annotation?.fields },
      'request',
    );
  };
}

/** For a response built without the context's headers (a `new Response` passed through). */
function stampRequestId(c: Context<AppEnv>, requestId: string): void {
  try {
    c.res.headers.set('x-request-id', requestId);
  } catch {
    // Immutable headers (a fetched Response): hono copies the response.
    c.header('x-request-id', requestId);
  }
}

/**
 * The request-duration histogram, labelled by the route's pattern (never the raw path: ids
 * would make a series per payment) and by outcome. An unmatched path is one `unmatched` route.
 */
export function requestMetrics(metrics: Metrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = c.res.status;
      const route = routePath(c);
      metrics.httpRequestDuration.observe(
        {
          method: c.req.method,
          route: status === 404 && route.endsWith('*') ? 'unmatched' : route,
          status: String(status),
          outcome: status >= 500 ? 'server_error' : status >= 400 ? 'client_error' : 'ok',
        },
        (performance.now() - started) / 1000,
      );
    }
  };
}

/** The server span a webhook's (or an API call's) trace starts from, named by route pattern. */
export function requestSpan(): MiddlewareHandler<AppEnv> {
  return (c, next) => {
    // With tracing off the span would record nothing: no attributes to gather.
    if (!tracingEnabled()) return next();
    return withSpan(
      c.req.method,
      { 'http.request.method': c.req.method, 'url.path': c.req.path, 'gateway.request_id': c.get('requestId') },
      async (span) => {
        await next();
        const route = routePath(c);
        span.updateName(`${c.req.method} ${route}`);
        span.setAttributes({ 'http.route': route, 'http.response.status_code': c.res.status });
      },
      SpanKind.SERVER,
    );
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Bearer-token check for /v1; hashing both sides makes the comparison constant-time at
 * any length. Wrong tokens are throttled (failed-attempts.ts); the right one always passes.
 */
export function requireAdminToken(token: string | undefined, failedAttempts?: FailedAttempts): MiddlewareHandler<AppEnv> {
  const expected = token ? digest(token) : undefined;
  return async (c, next) => {
    if (!expected) throw new AppError('admin_disabled', 'the admin API is disabled: set ADMIN_TOKEN to enable it');
    const header = c.req.header('authorization') ?? '';
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are Bearer.
    const match = /^Bearer (.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      c.header('WWW-Authenticate', 'Bearer');
      // Only a token presented counts as an attempt; a request with none is simply refused.
      const waitS = header === '' ? 0 : (failedAttempts?.fail(sourceOf(c)) ?? 0);
      if (waitS > 0) {
        c.header('Retry-After', String(waitS));
        throw new AppError('too_many_failed_attempts', `too many wrong bearer tokens; retry after ${waitS} s`, true);
      }
      throw new AppError('unauthorized', 'missing or wrong bearer token');
    }
    await next();
  };
}
