import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { getPayment, listPayments } from '../../db/queries/payments.js';
import { syncPayment, type SyncDeps } from '../../payments/sync-payment.js';
import { toPaymentJson } from '../../payments/payment-view.js';
import { PAYMENT_STATUSES, PROVIDERS } from '../../providers/types.js';
import { PAYMENT_ID, Payment, pageOf } from '../api-schemas.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { notFound } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter, pageCursor } from '../openapi.js';
import { requireJsonBody } from '../validation.js';

/** The return page waits longer for a busy payment than a webhook would. */
const RETURN_PAGE_LOCK_WAIT_MS = 8000;

const paymentParams = z.object({
  provider: z.enum(PROVIDERS).meta({ description: 'An unknown provider answers 404 `unknown_provider`' }),
  id: z.string().regex(PAYMENT_ID, 'payment id must be 1-64 letters, digits, _ or -').meta({ description: "The provider's payment id" }),
});

const listQuery = z.strictObject({
  provider: z.enum(PROVIDERS).optional(),
  status: z.enum(PAYMENT_STATUSES).optional(),
  limit: pageLimit(50),
  cursor: pageCursor,
});

const trackBody = z.object({
  provider: z.enum(PROVIDERS),
  id: z.string().regex(PAYMENT_ID, 'must be 1-64 letters, digits, _ or -'),
  account: z.string().min(1).max(64).default('default'),
});

const syncQuery = z.strictObject({
  account: z.string().optional().meta({ description: 'Account to fetch from when the payment is not tracked yet (default: its stored account, else `default`)' }),
});

const tags = ['Payments'];

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'List payments, newest first',
  description: 'Cursors are stable under inserts: a new payment never shifts a page already handed out.',
  security: BEARER,
  request: { query: listQuery },
  responses: { 200: json('A page of payments', pageOf(Payment)), ...errorResponses(400, 401, 503) },
});

const trackRoute = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Start tracking a payment created elsewhere',
  description: 'Fetches it from the provider now and keeps it synced from then on.',
  security: BEARER,
  middleware: [requireJsonBody] as const,
  request: { body: { required: true, content: { 'application/json': { schema: trackBody } } } },
  responses: {
    200: json('Already tracked (or not new): the payment', Payment),
    201: json('Newly tracked: the payment', Payment),
    ...errorResponses(400, 401, 404, 409, 415, 502, 503),
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/{provider}/{id}',
  tags,
  summary: 'One payment',
  security: BEARER,
  request: { params: paymentParams, query: z.strictObject({}) },
  responses: { 200: json('The payment', Payment), ...errorResponses(400, 401, 404, 503) },
});

const syncRoute = createRoute({
  method: 'post',
  path: '/{provider}/{id}/sync',
  tags,
  summary: 'Sync now (the customer\'s return page) and return the payment',
  description: 'Goes through the same lock and guarded write as every webhook and poll.',
  security: BEARER,
  request: { params: paymentParams, query: syncQuery },
  responses: { 200: json('The payment as just synced', Payment), ...errorResponses(400, 401, 404, 409, 502, 503) },
});

export function paymentRoutes(deps: SyncDeps) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();

  app.openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor
      ? decodeCursor(query.cursor, (v): v is { b: number } => typeof (v as { b?: unknown })?.b === 'number')
      : undefined;
    // One extra row tells whether another page exists.
    const rows = await listPayments(deps.db, {
      provider: query.provider,
      status: query.status,
      limit: query.limit + 1,
      beforeId: cursor?.b,
    });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({
      data: page.map(toPaymentJson),
      nextCursor: rows.length > query.limit && last ? encodeCursor({ b: last.id }) : null,
    }, 200);
  });

  app.openapi(trackRoute, async (c) => {
    const body = c.req.valid('json');
    const result = await syncPayment(deps, { provider: body.provider, account: body.account, providerPaymentId: body.id, source: 'track', lockWaitMs: RETURN_PAGE_LOCK_WAIT_MS });
    if (result.outcome === 'not_found') throw notFound(`${body.provider} payment ${body.id} at the provider`);
    const row = await getPayment(deps.db, body.provider, body.id);
    if (!row) throw notFound(`payment ${body.provider}/${body.id}`);
    return c.json(toPaymentJson(row), result.outcome === 'changed' && result.previous === null ? 201 : 200);
  });

  app.openapi(getRoute, async (c) => {
    const { provider, id } = c.req.valid('param');
    const row = await getPayment(deps.db, provider, id);
    if (!row) throw notFound(`payment ${provider}/${id}`);
    return c.json(toPaymentJson(row), 200);
  });

  // The customer's return page: sync now, through the same verb as every other trigger.
  app.openapi(syncRoute, async (c) => {
    const { provider, id } = c.req.valid('param');
    const stored = await getPayment(deps.db, provider, id);
    const account = c.req.valid('query').account ?? stored?.account ?? 'default';
    const result = await syncPayment(deps, { provider, account, providerPaymentId: id, source: 'sync', lockWaitMs: RETURN_PAGE_LOCK_WAIT_MS });
    if (result.outcome === 'not_found') throw notFound(`${provider} payment ${id} at the provider`);
    const row = await getPayment(deps.db, provider, id);
    if (!row) throw notFound(`payment ${provider}/${id}`);
    return c.json(toPaymentJson(row), 200);
  });

  return app;
}
