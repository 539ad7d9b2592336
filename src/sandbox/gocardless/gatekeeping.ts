/**
 * The API's gatekeeping, in the order a request meets it: the request log, latency, due
 * timeline steps, faults (down, forced errors, forced 429s), authentication, the version
 * header and the rate limit. The control API under /__sandbox skips all of it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { MiddlewareHandler } from 'hono';
import { GOCARDLESS_API_VERSION } from '../../providers/gocardless/client.js';
import { MAX_LOGGED_REQUESTS, type GoCardlessStore, type SandboxRequestRecord } from './state.js';
import { gcError, httpDate } from './wire.js';

export type SandboxEnv = { Bindings: HttpBindings; Variables: { rateLimitHeaders: Record<string, string> | null; requestRecord: SandboxRequestRecord | null } };

export function gatekeeping(store: GoCardlessStore, lifetime: { signal: AbortSignal }): MiddlewareHandler<SandboxEnv> {
  const { requests, fetchCounts, tick, accessTokens, rateLimitPerMinute } = store;
  return async (c, next) => {
    if (c.req.path.startsWith('/__sandbox')) return next();
    const record: SandboxRequestRecord = {
      at: new Date().toISOString(),
      method: c.req.method,
      path: c.req.path + new URL(c.req.url).search,
      status: null,
      tokenIndex: null,
      version: c.req.header('gocardless-version') ?? null,
    };
    requests.push(record);
    if (requests.length > MAX_LOGGED_REQUESTS) requests.splice(0, requests.length - MAX_LOGGED_REQUESTS);
    const paymentMatch = /^\/payments\/([^/]+)$/.exec(c.req.path);
    if (paymentMatch && c.req.method === 'GET') {
      let id = paymentMatch[1]!;
      try {
        id = decodeURIComponent(id);
      } catch {
        // counted under the raw segment
      }
      fetchCounts.set(id, (fetchCounts.get(id) ?? 0) + 1);
    }

    if (store.faults.latencyMs > 0) {
      try {
        await sleep(store.faults.latencyMs, undefined, { signal: lifetime.signal });
      } catch {
        // closing
      }
    }
    tick();

    if (store.faults.down === 'reset') {
      c.env.incoming.socket.destroy();
      return RESPONSE_ALREADY_SENT;
    }

    const now = Date.now();
    const rateWindow = store.countRequest(now);
    const rateLimitHeaders: Record<string, string> = {
      'ratelimit-limit': String(rateLimitPerMinute),
      'ratelimit-remaining': String(Math.max(0, rateLimitPerMinute - rateWindow.count)),
      'ratelimit-reset': httpDate(rateWindow.startedAt + 60_000),
    };

    let response: Response | undefined;
    if (store.faults.down === 'unavailable') {
      response = new Response('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>', { status: 503, headers: { 'content-type': 'text/html' } });
    } else if (store.faults.errorNext > 0) {
      store.faults.errorNext -= 1;
      response = gcError(store.faults.errorStatus, 'gocardless', 'internal_server_error', 'Uh-oh! Something went wrong. We have been notified and will look into it.');
    } else if (store.faults.rateLimitNext > 0) {
      store.faults.rateLimitNext -= 1;
      const resetAt = now + store.faults.rateLimitResetMs;
      rateLimitHeaders['ratelimit-remaining'] = '0';
      if (store.faults.rateLimitHeader === 'retry-after') delete rateLimitHeaders['ratelimit-reset'];
      else rateLimitHeaders['ratelimit-reset'] = httpDate(resetAt);
      if (store.faults.rateLimitHeader !== 'ratelimit-reset') rateLimitHeaders['retry-after'] = String(Math.ceil(store.faults.rateLimitResetMs / 1000));
      response = gcError(429, 'invalid_api_usage', 'rate_limit_exceeded', 'Rate limit exceeded');
    } else {
      const authorization = c.req.header('authorization');
      const token = authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
      const tokenIndex = token === undefined ? -1 : accessTokens.indexOf(token);
      if (!authorization) {
        response = gcError(401, 'invalid_api_usage', 'missing_authorization_header', 'Authorization header missing');
      } else if (tokenIndex < 0) {
        response = gcError(401, 'invalid_api_usage', 'access_token_not_found', 'Access token not found');
      } else {
        record.tokenIndex = tokenIndex;
        if (record.version === null) {
          response = gcError(400, 'invalid_api_usage', 'missing_version_header', "Missing 'GoCardless-Version' header");
        } else if (record.version !== GOCARDLESS_API_VERSION) {
          // [U] the real reason code for an unknown version.
          response = gcError(400, 'invalid_api_usage', 'version_not_found', `Version ${JSON.stringify(record.version)} not found; this sandbox speaks ${GOCARDLESS_API_VERSION}`);
        } else if (rateWindow.count > rateLimitPerMinute) {
          rateLimitHeaders['ratelimit-remaining'] = '0';
          response = gcError(429, 'invalid_api_usage', 'rate_limit_exceeded', 'Rate limit exceeded');
        }
      }
    }

    if (!response) {
      await next();
      response = c.res;
    }
    for (const [name, value] of Object.entries(rateLimitHeaders)) response.headers.set(name, value);
    if (record.version !== null) response.headers.set('gocardless-version', record.version);
    record.status = response.status;
    c.res = response;
    return c.res;
  };
}
