import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { PROVIDERS } from '../../providers/types.js';
import { listWebhookRequests, type InboundRequest } from '../../webhooks/inbound-log.js';
import { listReceipts, RECEIPT_STATES, type ReceiptListItem } from '../../webhooks/receipts.js';
import { PAYMENT_ID, pageOf } from '../api-schemas.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter, pageCursor } from '../openapi.js';

const listQuery = z.strictObject({
  provider: z.enum(PROVIDERS).optional(),
  state: z.enum(RECEIPT_STATES).optional(),
  resourceId: z.string().regex(PAYMENT_ID, 'must be 1-64 letters, digits, _ or -').optional(),
  limit: pageLimit(50),
  cursor: pageCursor,
});

const Receipt = z
  .object({
    id: z.number().int(),
    provider: z.string().meta({ description: '`mollie` or `gocardless`' }),
    account: z.string(),
    eventId: z.string().nullable(),
    resourceType: z.string().nullable(),
    resourceId: z.string().nullable(),
    signature: z.string().meta({ description: '`valid`, `absent` or `fetched`' }),
    state: z.string().meta({ description: RECEIPT_STATES.map((state) => `\`${state}\``).join(', ') }),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    receivedAt: z.string(),
    processedAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable(),
  })
  .meta({ id: 'Receipt', description: 'An acknowledged webhook (or one event of a GoCardless batch), without its body or headers' });

const tags = ['Operations'];

const receiptsRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'Webhook receipts, newest first',
  description: '`state=failed` lists what waits for an operator.',
  security: BEARER,
  request: { query: listQuery },
  responses: { 200: json('A page of receipts', pageOf(Receipt)), ...errorResponses(400, 401, 503) },
});

/** A receipt as the API shows it: everything but the raw body and headers. */
function toReceiptJson(receipt: ReceiptListItem) {
  return {
    id: receipt.id,
    provider: receipt.provider,
    account: receipt.account,
    eventId: receipt.eventId,
    resourceType: receipt.resourceType,
    resourceId: receipt.resourceId,
    signature: receipt.signature,
    state: receipt.state,
    attempts: receipt.attempts,
    lastError: receipt.lastError,
    receivedAt: receipt.receivedAt.toISOString(),
    processedAt: receipt.processedAt?.toISOString() ?? null,
    nextAttemptAt: receipt.nextAttemptAt?.toISOString() ?? null,
  };
}

/** GET /v1/receipts: the webhooks the gateway acknowledged, newest first, filtered. */
export function receiptRoutes(deps: Pick<Deps, 'db'>) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  app.openapi(receiptsRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: number } => typeof (v as { b?: unknown })?.b === 'number') : undefined;
    const rows = await listReceipts(deps.db, { provider: query.provider, state: query.state, resourceId: query.resourceId, beforeId: cursor?.b, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page.map(toReceiptJson), nextCursor: rows.length > query.limit && last ? encodeCursor({ b: last.id }) : null }, 200);
  });
  return app;
}

const requestsQuery = z.strictObject({
  provider: z.enum(PROVIDERS).optional(),
  outcome: z.string().regex(/^[a-z_]{1,40}$/, 'must be an outcome such as accepted or bad_signature').optional(),
  limit: pageLimit(50),
  cursor: pageCursor,
});

const InboundRequestJson = z
  .object({
    id: z.number().int(),
    receivedAt: z.string(),
    provider: z.string(),
    account: z.string(),
    status: z.number().int(),
    outcome: z.string(),
    source: z.string(),
    userAgent: z.string().nullable(),
    bodyBytes: z.number().int().nullable(),
    durationMs: z.number().int(),
    requestId: z.string(),
    suppressedBefore: z.number().int(),
  })
  .meta({ id: 'InboundRequest', description: 'One request to a webhook route, refused ones too; never its body' });

const requestsRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'The inbound log: every request to a webhook route, newest first',
  security: BEARER,
  request: { query: requestsQuery },
  responses: { 200: json('A page of inbound requests', pageOf(InboundRequestJson)), ...errorResponses(400, 401, 503) },
});

function toRequestJson(request: InboundRequest) {
  return {
    id: request.id,
    receivedAt: request.receivedAt.toISOString(),
    provider: request.provider,
    account: request.account,
    status: request.status,
    outcome: request.outcome,
    source: request.source,
    userAgent: request.userAgent,
    bodyBytes: request.bodyBytes,
    durationMs: request.durationMs,
    requestId: request.requestId,
    suppressedBefore: request.suppressed,
  };
}

/** GET /v1/webhook-requests: the inbound log, every request to a webhook route (refused ones too), newest first. */
export function webhookRequestRoutes(deps: Pick<Deps, 'db'>) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  app.openapi(requestsRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: number } => typeof (v as { b?: unknown })?.b === 'number') : undefined;
    const rows = await listWebhookRequests(deps.db, { provider: query.provider, outcome: query.outcome, beforeId: cursor?.b, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page.map(toRequestJson), nextCursor: rows.length > query.limit && last ? encodeCursor({ b: last.id }) : null }, 200);
  });
  return app;
}
