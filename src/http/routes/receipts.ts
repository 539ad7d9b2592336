import { Hono } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { PROVIDERS } from '../../providers/types.js';
import { listWebhookRequests, type InboundRequest } from '../../webhooks/inbound-log.js';
import { listReceipts, RECEIPT_STATES, type ReceiptListItem } from '../../webhooks/receipts.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { AppEnv } from '../middleware.js';
import { parseQuery } from '../validation.js';

const listQuery = z.object({
  provider: z.enum(PROVIDERS).optional(),
  state: z.enum(RECEIPT_STATES).optional(),
  resourceId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
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
export function receiptRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.get('/', async (c) => {
    const query = parseQuery(listQuery, c.req.query());
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: number } => typeof (v as { b?: unknown })?.b === 'number') : undefined;
    const rows = await listReceipts(deps.db, { provider: query.provider, state: query.state, resourceId: query.resourceId, beforeId: cursor?.b, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page.map(toReceiptJson), nextCursor: rows.length > query.limit && last ? encodeCursor({ b: last.id }) : null });
  });
  return app;
}

const requestsQuery = z.object({
  provider: z.enum(PROVIDERS).optional(),
  outcome: z.string().regex(/^[a-z_]{1,40}$/, 'must be an outcome such as accepted or bad_signature').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
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
export function webhookRequestRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.get('/', async (c) => {
    const query = parseQuery(requestsQuery, c.req.query());
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: number } => typeof (v as { b?: unknown })?.b === 'number') : undefined;
    const rows = await listWebhookRequests(deps.db, { provider: query.provider, outcome: query.outcome, beforeId: cursor?.b, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json({ data: page.map(toRequestJson), nextCursor: rows.length > query.limit && last ? encodeCursor({ b: last.id }) : null });
  });
  return app;
}
