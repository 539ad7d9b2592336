import { Hono } from 'hono';
import { z } from 'zod';
import { apiActor, recordAuditEntry, requestOrigin } from '../../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { enableSink, listDeadLetters, listSinkStates, redriveDeadLetter } from '../../events/deliveries.js';
import { FEED_START, readEventFeed, type FeedPosition } from '../../events/event-feed.js';
import { PROVIDERS } from '../../providers/types.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { AppError, badRequest } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { parseQuery } from '../validation.js';

/**
 * The outbound side's HTTP surface, mounted under /v1 (bearer token):
 *   GET  /events                     the pull API, paged by an opaque cursor
 *   GET  /dead-letters               deliveries that ran out of retries
 *   POST /dead-letters/:id/redrive   queue one again with a fresh schedule
 *   GET  /event-sinks                sinks and their state
 *   POST /event-sinks/:id/enable     lift a 410's disablement
 */

const feedQuery = z.object({
  after: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  provider: z.enum(PROVIDERS).optional(),
  paymentId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -').optional(),
});

const deadLetterQuery = z.object({
  sink: z.string().regex(/^snk_[0-9a-f]{16}$/, 'must be a sink id (snk_...)').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

interface FeedCursor {
  t: string;
  i: number;
}

const isFeedCursor = (value: unknown): value is FeedCursor =>
  typeof (value as FeedCursor | null)?.t === 'string' &&
  /^\d{1,20}$/.test((value as FeedCursor).t) &&
  Number.isSafeInteger((value as FeedCursor).i) &&
  (value as FeedCursor).i >= 0;

const toCursor = (position: FeedPosition) => encodeCursor({ t: position.txId, i: position.id } satisfies FeedCursor);

function deliveryIdParam(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw badRequest('dead letter id must be a number');
  return Number(value);
}

function sinkIdParam(value: string): string {
  if (!/^snk_[0-9a-f]{16}$/.test(value)) throw badRequest('sink id must look like snk_<16 hex digits>');
  return value;
}

export function outboundEventRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  // An endless feed: nextCursor is never null. An empty page hands back the cursor it
  // was given, so a consumer just keeps polling with it.
  app.get('/events', async (c) => {
    const query = parseQuery(feedQuery, c.req.query());
    const after = query.after ? decodeCursor(query.after, isFeedCursor) : undefined;
    const page = await readEventFeed(deps.db, {
      after: after ? { txId: after.t, id: after.i } : FEED_START,
      limit: query.limit,
      provider: query.provider,
      paymentId: query.paymentId,
    });
    return c.json({ data: page.events, nextCursor: page.events.length > 0 || !query.after ? toCursor(page.next) : query.after });
  });

  app.get('/dead-letters', async (c) => {
    const query = parseQuery(deadLetterQuery, c.req.query());
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { a: number } => Number.isSafeInteger((v as { a?: unknown } | null)?.a)) : undefined;
    const rows = await listDeadLetters(deps.db, { sinkId: query.sink, afterId: cursor?.a, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page, nextCursor: rows.length > query.limit && last ? encodeCursor({ a: last.id }) : null });
  });

  app.post('/dead-letters/:id/redrive', async (c) => {
    const id = deliveryIdParam(c.req.param('id'));
    const redriven = await redriveDeadLetter(deps.db, id);
    await recordAuditEntry(deps.db, { actor: apiActor(deps.env.ADMIN_TOKEN!), action: 'delivery.redrive', target: `delivery:${id}`, outcome: redriven ? 'applied' : 'no_change', ...requestOrigin(c) });
    if (!redriven) throw new AppError(404, 'dead_letter_not_found', `no dead letter ${id} (already re-driven, or never dead)`);
    return c.json({ id, state: 'pending' }, 202);
  });

  app.get('/event-sinks', async (c) => c.json({ data: await listSinkStates(deps.db) }));

  app.post('/event-sinks/:id/enable', async (c) => {
    const id = sinkIdParam(c.req.param('id'));
    const enabled = await enableSink(deps.db, id);
    await recordAuditEntry(deps.db, { actor: apiActor(deps.env.ADMIN_TOKEN!), action: 'sink.enable', target: `sink:${id}`, outcome: enabled ? 'applied' : 'no_change', ...requestOrigin(c) });
    if (!enabled) throw new AppError(404, 'sink_not_found', `no event sink ${id}`);
    const [sink] = await listSinkStates(deps.db, { id });
    return c.json(sink);
  });

  return app;
}
