import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { apiActor, recordAuditEntry, requestOrigin } from '../../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { listSinkStates } from '../../events/deliveries.js';
import {
  BULK_REDRIVE_LIMIT,
  DELIVERY_STATES,
  disableSink,
  getDelivery,
  listDeliveries,
  listDeliveryAttempts,
  redriveDeadLetters,
  sendTestEvent,
  sinkAttemptStats,
  type DeliveryAttempt,
  type DeliveryListItem,
} from '../../events/delivery-operations.js';
import { DeadLetter, EventSink, SINK_ID, pageOf } from '../api-schemas.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { AppError } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter, pageCursor } from '../openapi.js';

/**
 * Deliveries and sinks for operators, mounted under /v1 (bearer token):
 *   GET  /deliveries                 every delivery, filtered by sink, state, type and date
 *   GET  /deliveries/:id             one delivery with its attempt history
 *   POST /deliveries/redrive         re-drive the dead letters a filter matches
 *   GET  /event-sinks/:id            one sink with its recent success rate
 *   POST /event-sinks/:id/disable    stop delivering to a sink until it is enabled
 *   POST /event-sinks/:id/test       send a gateway.test event to that sink alone
 */

const isoDate = z.string().meta({ format: 'date-time' });
const instant = z
  .union([z.iso.date(), z.iso.datetime({ offset: true })])
  .meta({ description: 'An ISO 8601 date (midnight UTC) or date-time', example: '2026-01-31' });
const typeFilter = z
  .string()
  .regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$/, 'must be an event type, or a prefix ending in "."')
  .max(100)
  .meta({ description: 'An event type (`payment.paid`) or a prefix ending in a dot (`payment.`)' });
const sinkFilter = z.string().regex(SINK_ID, 'must be a sink id (snk_...)');

const filterShape = {
  sink: sinkFilter.optional(),
  type: typeFilter.optional(),
  from: instant.optional().meta({ description: 'Deliveries created at or after this instant' }),
  to: instant.optional().meta({ description: 'Deliveries created before this instant' }),
};

const listQuery = z.strictObject({ ...filterShape, state: z.enum(DELIVERY_STATES).optional(), limit: pageLimit(50), cursor: pageCursor });

const redriveBody = z.strictObject({
  ...filterShape,
  limit: z.number().int().min(1).max(BULK_REDRIVE_LIMIT).default(BULK_REDRIVE_LIMIT).meta({ description: 'At most this many in one call' }),
});

const Delivery = DeadLetter.pick({ id: true, eventId: true, type: true, sink: true, provider: true, paymentId: true, version: true })
  .extend({
    state: z.enum(DELIVERY_STATES),
    attempts: z.number().int().meta({ description: 'Attempts since the delivery was created or last re-driven' }),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: isoDate,
    lastAttemptAt: isoDate.nullable(),
    nextAttemptAt: isoDate.nullable().meta({ description: 'While pending: when the next attempt is due' }),
    deliveredAt: isoDate.nullable(),
    deadLetteredAt: isoDate.nullable(),
  })
  .meta({ id: 'Delivery', description: 'One event for one sink; never the event itself' });

const Attempt = z
  .object({
    id: z.number().int(),
    attempt: z.number().int().meta({ description: 'The attempt number it ran under (restarts at 1 after a re-drive)' }),
    startedAt: isoDate,
    durationMs: z.number().int(),
    outcome: z.string().meta({ description: '`delivered`, `retry`, `dead`, `gone` (410: sink disabled) or `probe_failed`' }),
    status: z.number().int().nullable().meta({ description: "The sink's HTTP status; null when no HTTP answer came" }),
    error: z.string().nullable(),
    answer: z.string().nullable().meta({ description: "The first 512 bytes of the sink's answer" }),
    probe: z.boolean().meta({ description: "An early try of a sink with retries waiting (costs the delivery nothing)" }),
    superseded: z.boolean().meta({ description: "Another relay had taken the delivery over: this attempt's outcome was not applied" }),
  })
  .meta({ id: 'DeliveryAttempt' });

const DeliveryWithAttempts = Delivery.extend({ attemptHistory: z.array(Attempt).meta({ description: 'Newest first, across re-drives (at most 200)' }) }).meta({
  id: 'DeliveryWithAttempts',
});

const SinkWithStats = EventSink.extend({
  last24h: z.object({
    attempts: z.number().int(),
    delivered: z.number().int(),
    successRate: z.number().nullable().meta({ description: 'delivered / attempts; null without attempts' }),
    averageMs: z.number().int().nullable(),
    slowestMs: z.number().int().nullable(),
  }),
}).meta({ id: 'EventSinkWithStats' });

const idParams = z.object({ id: z.string().regex(/^\d{1,15}$/, 'delivery id must be a number') });
const sinkParams = z.object({ id: z.string().regex(SINK_ID, 'sink id must look like snk_<16 hex digits>') });
const noQuery = z.strictObject({});
const tags = ['Events'];

const listRoute = createRoute({
  method: 'get',
  path: '/deliveries',
  tags,
  summary: 'Deliveries, newest first, by sink, state, event type and date',
  security: BEARER,
  request: { query: listQuery },
  responses: { 200: json('A page of deliveries', pageOf(Delivery)), ...errorResponses(400, 401, 503) },
});

const oneRoute = createRoute({
  method: 'get',
  path: '/deliveries/{id}',
  tags,
  summary: 'One delivery with every attempt at it',
  security: BEARER,
  request: { params: idParams, query: noQuery },
  responses: { 200: json('The delivery', DeliveryWithAttempts), ...errorResponses(400, 401, 404, 503) },
});

const bulkRedriveRoute = createRoute({
  method: 'post',
  path: '/deliveries/redrive',
  tags,
  summary: 'Re-drive the dead letters a filter matches, oldest first',
  description: 'Each goes back in the queue with a fresh retry schedule, as `POST /v1/dead-letters/{id}/redrive` does. `more: true`: call again for the rest.',
  security: BEARER,
  request: { query: noQuery, body: { content: { 'application/json': { schema: redriveBody } }, required: true } },
  responses: {
    202: json('Queued again', z.object({ redriven: z.number().int(), more: z.boolean() })),
    ...errorResponses(400, 401, 415, 503),
  },
});

const sinkRoute = createRoute({
  method: 'get',
  path: '/event-sinks/{id}',
  tags,
  summary: 'One sink, with its success rate over the last 24 hours',
  security: BEARER,
  request: { params: sinkParams, query: noQuery },
  responses: { 200: json('The sink', SinkWithStats), ...errorResponses(400, 401, 404, 503) },
});

const disableRoute = createRoute({
  method: 'post',
  path: '/event-sinks/{id}/disable',
  tags,
  summary: 'Stop delivering to a sink; its events wait until it is enabled',
  security: BEARER,
  request: { params: sinkParams, query: noQuery },
  responses: { 200: json('The sink', EventSink), ...errorResponses(400, 401, 404, 503) },
});

const testRoute = createRoute({
  method: 'post',
  path: '/event-sinks/{id}/test',
  tags,
  summary: 'Send a `gateway.test` event to this sink alone',
  description: 'Delivered by the relay like any event (a disabled sink gets it once enabled); follow it with `GET /v1/deliveries/{deliveryId}`.',
  security: BEARER,
  request: { params: sinkParams, query: noQuery },
  responses: { 202: json('Queued', z.object({ eventId: z.string(), deliveryId: z.number().int() })), ...errorResponses(400, 401, 404, 503) },
});

/** A date-only value is midnight UTC. */
export const parseInstant = (value: string | undefined) => (value === undefined ? undefined : new Date(value.length === 10 ? `${value}T00:00:00Z` : value));

export function toDeliveryJson(delivery: DeliveryListItem) {
  return {
    ...delivery,
    state: delivery.state as (typeof DELIVERY_STATES)[number],
    createdAt: delivery.createdAt.toISOString(),
    lastAttemptAt: delivery.lastAttemptAt?.toISOString() ?? null,
    nextAttemptAt: delivery.state === 'pending' ? delivery.nextAttemptAt.toISOString() : null,
    deliveredAt: delivery.deliveredAt?.toISOString() ?? null,
    deadLetteredAt: delivery.deadLetteredAt?.toISOString() ?? null,
  };
}

const toAttemptJson = (attempt: DeliveryAttempt) => ({ ...attempt, startedAt: attempt.startedAt.toISOString() });

export function deliveryRoutes(deps: Deps) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  const actor = () => apiActor(deps.env.ADMIN_TOKEN!);

  app.openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: number } => Number.isSafeInteger((v as { b?: unknown } | null)?.b)) : undefined;
    const rows = await listDeliveries(deps.db, {
      sinkId: query.sink,
      state: query.state,
      type: query.type,
      from: parseInstant(query.from),
      to: parseInstant(query.to),
      beforeId: cursor?.b,
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page.map(toDeliveryJson), nextCursor: rows.length > query.limit && last ? encodeCursor({ b: last.id }) : null }, 200);
  });

  app.openapi(oneRoute, async (c) => {
    const id = Number(c.req.valid('param').id);
    const delivery = await getDelivery(deps.db, id);
    if (!delivery) throw new AppError('delivery_not_found', `no delivery ${id}`);
    const attempts = await listDeliveryAttempts(deps.db, id);
    return c.json({ ...toDeliveryJson(delivery), attemptHistory: attempts.map(toAttemptJson) }, 200);
  });

  app.openapi(bulkRedriveRoute, async (c) => {
    const body = c.req.valid('json');
    const filter = { sinkId: body.sink, type: body.type, from: parseInstant(body.from), to: parseInstant(body.to) };
    const result = await redriveDeadLetters(deps.db, filter, body.limit);
    await recordAuditEntry(deps.db, {
      actor: actor(),
      action: 'delivery.bulk_redrive',
      target: 'deliveries',
      outcome: result.redriven > 0 ? 'applied' : 'no_change',
      detail: { filter: { sink: body.sink, type: body.type, from: body.from, to: body.to }, redriven: result.redriven, more: result.more },
      ...requestOrigin(c),
    });
    return c.json(result, 202);
  });

  app.openapi(sinkRoute, async (c) => {
    const { id } = c.req.valid('param');
    const [sink] = await listSinkStates(deps.db, { id });
    if (!sink) throw new AppError('sink_not_found', `no event sink ${id}`);
    const { attempts, delivered, successRate, averageMs, slowestMs } = await sinkAttemptStats(deps.db, id, 24);
    return c.json({ ...sink, last24h: { attempts, delivered, successRate, averageMs, slowestMs } }, 200);
  });

  app.openapi(disableRoute, async (c) => {
    const { id } = c.req.valid('param');
    const disabled = await disableSink(deps.db, id, 'disabled by an operator');
    await recordAuditEntry(deps.db, { actor: actor(), action: 'sink.disable', target: `sink:${id}`, outcome: disabled ? 'applied' : 'no_change', ...requestOrigin(c) });
    if (!disabled) throw new AppError('sink_not_found', `no event sink ${id}`);
    const [sink] = await listSinkStates(deps.db, { id });
    return c.json(sink!, 200);
  });

  app.openapi(testRoute, async (c) => {
    const { id } = c.req.valid('param');
    const sent = await sendTestEvent(deps.db, { sinkId: id, requestedBy: actor() });
    await recordAuditEntry(deps.db, {
      actor: actor(),
      action: 'sink.test',
      target: `sink:${id}`,
      outcome: sent ? 'applied' : 'no_change',
      detail: sent ? { ...sent } : undefined,
      ...requestOrigin(c),
    });
    if (!sent) throw new AppError('sink_not_found', `no event sink ${id}`);
    return c.json(sent, 202);
  });

  return app;
}
