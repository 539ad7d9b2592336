import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { apiActor, recordAuditEntry, requestOrigin } from '../../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { enableSink, listDeadLetters, listSinkStates, redriveDeadLetter } from '../../events/deliveries.js';
import { FEED_START, readEventById, readEventFeed, type FeedPosition } from '../../events/event-feed.js';
import { PROVIDERS } from '../../providers/types.js';
import { DeadLetter, EventSink, OutboundEventEnvelope, PAYMENT_ID, SINK_ID, pageOf } from '../api-schemas.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { AppError, badRequest } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter, pageCursor } from '../openapi.js';

/**
 * The outbound side's HTTP surface, mounted under /v1 (bearer token):
 *   GET  /events                     the pull API, paged by an opaque cursor
 *   GET  /events/:id                 one event
 *   GET  /dead-letters               deliveries that ran out of retries
 *   POST /dead-letters/:id/redrive   queue one again with a fresh schedule
 *   GET  /event-sinks                sinks and their state
 *   POST /event-sinks/:id/enable     lift a 410's disablement
 */

/** `payment.paid` (exact) or `payment.` (every type with that prefix); comma-separated for several. */
const EVENT_TYPE_FILTER = /^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$/;

const feedQuery = z.strictObject({
  cursor: pageCursor,
  after: z.string().max(200).optional().meta({ deprecated: true, description: 'Deprecated name of `cursor` (still accepted)' }),
  limit: pageLimit(100),
  provider: z.enum(PROVIDERS).optional(),
  paymentId: z.string().regex(PAYMENT_ID, 'must be 1-64 letters, digits, _ or -').optional(),
  type: z
    .string()
    .max(500)
    .refine((value) => value.split(',').every((part) => EVENT_TYPE_FILTER.test(part)), 'must be event types or prefixes ending in ".", comma-separated')
    .optional()
    .meta({ description: 'Only these types: `payment.paid`, or a prefix ending in a dot (`payment.`); comma-separated for several', example: 'payment.paid,refund.' }),
});

const deadLetterQuery = z.strictObject({
  sink: z.string().regex(SINK_ID, 'must be a sink id (snk_...)').optional(),
  limit: pageLimit(50),
  cursor: pageCursor,
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

const deadLetterParams = z.object({ id: z.string().regex(/^\d{1,15}$/, 'dead letter id must be a number') });
const sinkParams = z.object({ id: z.string().regex(SINK_ID, 'sink id must look like snk_<16 hex digits>') });
const eventParams = z.object({ id: z.string().regex(/^evt_[0-9a-f]{32}$/, 'event id must look like evt_<32 hex digits>') });
const noQuery = z.strictObject({});
const tags = ['Events'];

const feedRoute = createRoute({
  method: 'get',
  path: '/events',
  tags,
  summary: 'The event feed (pull API), oldest first',
  description:
    'An endless feed: `nextCursor` is never null, and a page with no new events hands back the cursor it was given, so a consumer keeps polling with it. A consumer paging by cursor never misses an event, also one that committed late.',
  security: BEARER,
  request: { query: feedQuery },
  responses: { 200: json('A page of events', pageOf(OutboundEventEnvelope, z.string())), ...errorResponses(400, 401, 503) },
});

const eventRoute = createRoute({
  method: 'get',
  path: '/events/{id}',
  tags,
  summary: 'One event by its id',
  security: BEARER,
  request: { params: eventParams, query: noQuery },
  responses: { 200: json('The event', OutboundEventEnvelope), ...errorResponses(400, 401, 404, 503) },
});

const deadLettersRoute = createRoute({
  method: 'get',
  path: '/dead-letters',
  tags,
  summary: 'Deliveries that ran out of retries, oldest first',
  security: BEARER,
  request: { query: deadLetterQuery },
  responses: { 200: json('A page of dead letters', pageOf(DeadLetter)), ...errorResponses(400, 401, 503) },
});

const redriveRoute = createRoute({
  method: 'post',
  path: '/dead-letters/{id}/redrive',
  tags,
  summary: 'Queue a dead letter again with a fresh retry schedule',
  security: BEARER,
  request: { params: deadLetterParams, query: noQuery },
  responses: {
    202: json('Queued again', z.object({ id: z.number().int(), state: z.literal('pending') })),
    ...errorResponses(400, 401, 404, 503),
  },
});

const sinksRoute = createRoute({
  method: 'get',
  path: '/event-sinks',
  tags,
  summary: 'Every outbound sink and its state',
  security: BEARER,
  request: { query: noQuery },
  responses: { 200: json('The sinks', z.object({ data: z.array(EventSink) })), ...errorResponses(400, 401, 503) },
});

const enableSinkRoute = createRoute({
  method: 'post',
  path: '/event-sinks/{id}/enable',
  tags,
  summary: "Lift a 410's disablement; delivery resumes in order",
  security: BEARER,
  request: { params: sinkParams, query: noQuery },
  responses: { 200: json('The sink', EventSink), ...errorResponses(400, 401, 404, 503) },
});

export function outboundEventRoutes(deps: Pick<Deps, 'db' | 'env'>) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();

  // An endless feed: nextCursor is never null. An empty page hands back the cursor it
  // was given, so a consumer just keeps polling with it.
  app.openapi(feedRoute, async (c) => {
    const query = c.req.valid('query');
    if (query.cursor !== undefined && query.after !== undefined && query.cursor !== query.after) {
      throw badRequest('pass the position as `cursor` (or the deprecated `after`), not both');
    }
    const given = query.cursor ?? query.after;
    const after = given ? decodeCursor(given, isFeedCursor) : undefined;
    const page = await readEventFeed(deps.db, {
      after: after ? { txId: after.t, id: after.i } : FEED_START,
      limit: query.limit,
      provider: query.provider,
      paymentId: query.paymentId,
      types: query.type?.split(','),
    });
    return c.json({ data: page.events, nextCursor: page.events.length > 0 || !given ? toCursor(page.next) : given }, 200);
  });

  app.openapi(eventRoute, async (c) => {
    const { id } = c.req.valid('param');
    const event = await readEventById(deps.db, id);
    if (!event) throw new AppError('event_not_found', `no event ${id}`);
    return c.json(event, 200);
  });

  app.openapi(deadLettersRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { a: number } => Number.isSafeInteger((v as { a?: unknown } | null)?.a)) : undefined;
    const rows = await listDeadLetters(deps.db, { sinkId: query.sink, afterId: cursor?.a, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page, nextCursor: rows.length > query.limit && last ? encodeCursor({ a: last.id }) : null }, 200);
  });

  app.openapi(redriveRoute, async (c) => {
    const id = Number(c.req.valid('param').id);
    const redriven = await redriveDeadLetter(deps.db, id);
    await recordAuditEntry(deps.db, { actor: apiActor(deps.env.ADMIN_TOKEN!), action: 'delivery.redrive', target: `delivery:${id}`, outcome: redriven ? 'applied' : 'no_change', ...requestOrigin(c) });
    if (!redriven) throw new AppError('dead_letter_not_found', `no dead letter ${id} (already re-driven, or never dead)`);
    return c.json({ id, state: 'pending' as const }, 202);
  });

  app.openapi(sinksRoute, async (c) => c.json({ data: await listSinkStates(deps.db) }, 200));

  app.openapi(enableSinkRoute, async (c) => {
    const { id } = c.req.valid('param');
    const enabled = await enableSink(deps.db, id);
    await recordAuditEntry(deps.db, { actor: apiActor(deps.env.ADMIN_TOKEN!), action: 'sink.enable', target: `sink:${id}`, outcome: enabled ? 'applied' : 'no_change', ...requestOrigin(c) });
    if (!enabled) throw new AppError('sink_not_found', `no event sink ${id}`);
    const [sink] = await listSinkStates(deps.db, { id });
    return c.json(sink!, 200);
  });

  return app;
}
