import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import type { Context, MiddlewareHandler } from 'hono';
import type { DbOrTx } from '../db/client.js';
import { webhookRequests, type SelectWebhookRequest } from '../db/schema/webhook-requests.js';
import type { Deps } from '../deps.js';
import type { AppEnv } from '../http/middleware.js';
import { createTokenBucket } from '../poller/rate-limiter.js';

/** Rows per second one source may add to the inbound log, per process, after a burst. */
export const INBOUND_LOG_RATE = { ratePerSecond: 5, burst: 20 };

/**
 * The client's address: the last X-Forwarded-For entry (the one our own proxy appended,
 * which the client cannot forge), else the socket's (Node), else unknown.
 */
export function clientAddress(c: Context): string {
  const forwarded = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
  if (forwarded) return forwarded.slice(0, 64);
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

/**
 * Logs every request to a webhook route after it is answered (the row is written off the
 * acknowledgement's path). A source over its rate is not logged; how many of its requests
 * went unlogged is written on its next row and counted in gateway_inbound_log_suppressed_total.
 */
export function inboundLog(deps: Pick<Deps, 'db' | 'background' | 'metrics'>): MiddlewareHandler<AppEnv> {
  const limiter = createTokenBucket(INBOUND_LOG_RATE);
  const suppressed = new Map<string, number>();
  return async (c, next) => {
    const started = performance.now();
    await next();
    const source = clientAddress(c);
    if (limiter.waitMs(source) > 0) {
      suppressed.set(source, (suppressed.get(source) ?? 0) + 1);
      deps.metrics.inboundLogSuppressed.inc();
      return;
    }
    void limiter.take(source);
    const skipped = suppressed.get(source) ?? 0;
    suppressed.delete(source);
    const [, , provider = 'unknown', account = 'default'] = c.req.path.split('/');
    const length = Number(c.req.header('content-length'));
    const outcome = c.get('requestLog')?.fields.outcome;
    deps.background.defer(
      deps.db.insert(webhookRequests).values({
        provider: provider.slice(0, 32),
        account: account.slice(0, 64),
        status: c.res.status,
        outcome: typeof outcome === 'string' ? outcome : c.res.status >= 500 ? 'error' : 'unknown',
        source,
        userAgent: c.req.header('user-agent')?.slice(0, 200) ?? null,
        bodyBytes: Number.isFinite(length) ? length : null,
        durationMs: Math.round(performance.now() - started),
        requestId: c.get('requestId'),
        suppressed: skipped,
      }),
    );
  };
}

export type InboundRequest = SelectWebhookRequest;

/** Newest first, paged by id; filtered by provider and outcome. */
export async function listWebhookRequests(
  db: DbOrTx,
  params: { provider?: string; outcome?: string; beforeId?: number; limit: number },
): Promise<InboundRequest[]> {
  const conditions: SQL[] = [];
  if (params.provider) conditions.push(eq(webhookRequests.provider, params.provider));
  if (params.outcome) conditions.push(eq(webhookRequests.outcome, params.outcome));
  if (params.beforeId !== undefined) conditions.push(lt(webhookRequests.id, params.beforeId));
  return db
    .select()
    .from(webhookRequests)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(webhookRequests.id))
    .limit(params.limit);
}
