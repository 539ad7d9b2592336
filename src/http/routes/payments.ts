import { Hono } from 'hono';
import { z } from 'zod';
import { getPayment, listPayments } from '../../db/queries/payments.js';
import type { Deps } from '../../deps.js';
import { syncPayment } from '../../payments/sync-payment.js';
import { toPaymentJson } from '../../payments/payment-view.js';
import { PAYMENT_STATUSES, PROVIDERS, isProviderName, type ProviderName } from '../../providers/types.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { AppError, badRequest, notFound } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { parseJsonBody, parseQuery } from '../validation.js';

const PAYMENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The return page waits longer for a busy payment than a webhook would. */
const RETURN_PAGE_LOCK_WAIT_MS = 8000;

function providerParam(value: string): ProviderName {
  if (!isProviderName(value)) throw new AppError(404, 'unknown_provider', `unknown provider ${JSON.stringify(value)}; expected one of ${PROVIDERS.join(', ')}`);
  return value;
}

function paymentIdParam(value: string): string {
  if (!PAYMENT_ID.test(value)) throw badRequest('payment id must be 1-64 letters, digits, _ or -');
  return value;
}

const listQuery = z.object({
  provider: z.enum(PROVIDERS).optional(),
  status: z.enum(PAYMENT_STATUSES).optional(),
  limit: pageLimit(50),
  cursor: z.string().max(200).optional(),
});

const trackBody = z.object({
  provider: z.enum(PROVIDERS),
  id: z.string().regex(PAYMENT_ID, 'must be 1-64 letters, digits, _ or -'),
  account: z.string().min(1).max(64).default('default'),
});

export function paymentRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  app.get('/', async (c) => {
    const query = parseQuery(listQuery, c.req.query());
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
    });
  });

  app.post('/', async (c) => {
    const body = trackBody.parse(await parseJsonBody(c));
    const result = await syncPayment(deps, { provider: body.provider, account: body.account, providerPaymentId: body.id, source: 'track', lockWaitMs: RETURN_PAGE_LOCK_WAIT_MS });
    if (result.outcome === 'not_found') throw notFound(`${body.provider} payment ${body.id} at the provider`);
    const row = await getPayment(deps.db, body.provider, body.id);
    if (!row) throw notFound(`payment ${body.provider}/${body.id}`);
    return c.json(toPaymentJson(row), result.outcome === 'changed' && result.previous === null ? 201 : 200);
  });

  app.get('/:provider/:id', async (c) => {
    const provider = providerParam(c.req.param('provider'));
    const id = paymentIdParam(c.req.param('id'));
    const row = await getPayment(deps.db, provider, id);
    if (!row) throw notFound(`payment ${provider}/${id}`);
    return c.json(toPaymentJson(row));
  });

  // The customer's return page: sync now, through the same verb as every other trigger.
  app.post('/:provider/:id/sync', async (c) => {
    const provider = providerParam(c.req.param('provider'));
    const id = paymentIdParam(c.req.param('id'));
    const stored = await getPayment(deps.db, provider, id);
    const account = c.req.query('account') ?? stored?.account ?? 'default';
    const result = await syncPayment(deps, { provider, account, providerPaymentId: id, source: 'sync', lockWaitMs: RETURN_PAGE_LOCK_WAIT_MS });
    if (result.outcome === 'not_found') throw notFound(`${provider} payment ${id} at the provider`);
    const row = await getPayment(deps.db, provider, id);
    if (!row) throw notFound(`payment ${provider}/${id}`);
    return c.json(toPaymentJson(row));
  });

  return app;
}
