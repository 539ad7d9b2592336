import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { BankFeedError, checkRequisition, createBankConnection, deleteBankConnection, type BankDeps } from '../../bank/connections.js';
import { getConnection, listAccounts, listConnections, listTransactions, type ConnectionRow } from '../../bank/queries.js';
import { syncBankAccount } from '../../bank/sync-account.js';
import { toBankConnectionJson, toBankTransactionJson } from '../../bank/view.js';
import { BankApiError } from '../../providers/gocardless-bank/client.js';
import { pageOf } from '../api-schemas.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { AppError, notFound, toErrorResponse } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter, pageCursor } from '../openapi.js';
import { requireJsonBody } from '../validation.js';

const CONNECTION_STATUSES = ['creating', 'awaiting_consent', 'linked', 'rejected', 'expired', 'suspended', 'abandoned', 'deleted'] as const;
const CONNECTION_ID = /^bcn_[a-z0-9]{9,40}$/;
const ACCOUNT_ID = /^bac_[a-z0-9]{9,40}$/;

const createBody = z.object({
  institutionId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'must be a GoCardless institution id (letters, digits, _ or -)'),
  reference: z.string().min(1).max(200),
  redirectUrl: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }),
  maxHistoricalDays: z.number().int().min(1).max(730).optional(),
  accessValidForDays: z.number().int().min(1).max(180).optional(),
});

const listQuery = z.strictObject({
  reference: z.string().min(1).max(200).optional(),
  status: z.enum(CONNECTION_STATUSES).optional(),
  limit: pageLimit(50),
  cursor: pageCursor,
});

const transactionsQuery = z.strictObject({
  connection: z.string().regex(CONNECTION_ID, 'must be a connection id (bcn_...)').optional(),
  account: z.string().regex(ACCOUNT_ID, 'must be an account id (bac_...)').optional(),
  status: z.enum(['pending', 'booked', 'removed']).optional(),
  after: z
    .string()
    .regex(/^(btx_)?\d{1,18}$/, 'must be a transaction id (btx_...) or the nextCursor of a previous page')
    .transform((value) => Number(value.replace(/^btx_/, '')))
    .optional()
    .meta({ description: "A transaction id (`btx_…`), or the previous page's `nextCursor`" }),
  limit: pageLimit(100),
});

const connectionParams = z.object({ id: z.string().meta({ description: 'A connection id (`bcn_…`)' }) });

const BankAccount = z
  .looseObject({
    id: z.string(),
    iban: z.string().nullable(),
    status: z.string(),
    lastSyncedAt: z.string().nullable(),
    nextSyncAt: z.string().nullable(),
    rateLimitedUntil: z.string().nullable(),
  })
  .meta({ id: 'BankAccount' });

const BankConnection = z
  .looseObject({
    id: z.string(),
    reference: z.string(),
    institutionId: z.string(),
    status: z.string().meta({ description: CONNECTION_STATUSES.map((status) => `\`${status}\``).join(', ') }),
    link: z.string().nullable().meta({ description: 'Where the end user gives consent' }),
    accounts: z.array(BankAccount),
    consentExpiresAt: z.string().nullable(),
  })
  .meta({ id: 'BankConnection' });

const BankTransaction = z
  .looseObject({
    id: z.string(),
    connectionId: z.string(),
    accountId: z.string(),
    status: z.string().meta({ description: '`pending`, `booked` or `removed`' }),
    transactionId: z.string().nullable(),
    internalTransactionId: z.string().nullable(),
    bookingDate: z.string().nullable(),
    valueDate: z.string().nullable(),
    amount: z.object({ value: z.string().meta({ description: 'Decimal string, exact (e.g. "-12.50")' }), currency: z.string() }),
    counterparty: z.string().nullable(),
    remittance: z.string().nullable(),
    pendingOf: z.string().optional().meta({ description: 'A booked transaction that settled a pending one: the pending row it replaced' }),
    firstSeenAt: z.string().nullable(),
  })
  .meta({ id: 'BankTransaction' });

const tags = ['Bank feeds'];

const createRouteDecl = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Create a bank connection (idempotent by reference)',
  description: 'The same `reference` again while its connection is neither expired nor rejected answers 200 with the same connection and link, and makes no second requisition.',
  security: BEARER,
  middleware: [requireJsonBody] as const,
  request: { body: { required: true, content: { 'application/json': { schema: createBody } } } },
  responses: {
    200: json('The existing live connection for this reference', BankConnection),
    201: json('A new connection: send the end user to `link`', BankConnection),
    ...errorResponses(400, 401, 409, 415, 422, 502, 503),
  },
});

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'List bank connections, newest first',
  security: BEARER,
  request: { query: listQuery },
  responses: { 200: json('A page of connections', pageOf(BankConnection)), ...errorResponses(400, 401, 503) },
});

const getRoute = createRoute({
  method: 'get',
  path: '/{id}',
  tags,
  summary: 'One bank connection with its accounts',
  security: BEARER,
  request: { params: connectionParams, query: z.strictObject({}) },
  responses: { 200: json('The connection', BankConnection), ...errorResponses(400, 401, 404, 503) },
});

const syncRoute = createRoute({
  method: 'post',
  path: '/{id}/sync',
  tags,
  summary: "Sync now, within the bank's limits",
  description: 'A requisition still waiting for consent is looked at; each linked account is synced if its daily budget allows. 429 with `Retry-After` when every account has spent it.',
  security: BEARER,
  request: { params: connectionParams, query: z.strictObject({}) },
  responses: {
    200: json('The connection, with each account\'s sync outcome in `sync`', BankConnection),
    ...errorResponses(400, 401, 404, 409, 429, 502, 503),
  },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/{id}',
  tags,
  summary: 'Stop a bank connection and free its reference',
  security: BEARER,
  request: { params: connectionParams, query: z.strictObject({}) },
  responses: { 200: json('The connection, deleted', BankConnection), ...errorResponses(400, 401, 404, 503) },
});

const transactionsRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'Imported bank transactions, oldest first',
  description: 'Page with `after` (the previous answer\'s `nextCursor`). To follow changes as they happen, read the `bank.transaction.*` events.',
  security: BEARER,
  request: { query: transactionsQuery },
  responses: { 200: json('A page of transactions', pageOf(BankTransaction)), ...errorResponses(400, 401, 503) },
});

function connectionId(c: Context): string {
  const id = c.req.param('id') ?? '';
  if (!CONNECTION_ID.test(id)) throw new AppError('bad_request', 'connection id must look like bcn_...');
  return id;
}

function toAppError(error: unknown, c: Context): unknown {
  if (error instanceof BankApiError) {
    // GoCardless itself failed or refused during a route's own call (a requisition check).
    if (error.retryAfterMs) c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
    if (error.kind === 'daily_limit' || error.kind === 'rate_limited') return new AppError('bank_rate_limited', `GoCardless: ${error.message}`, true);
    return new AppError('bank_unavailable', `GoCardless: ${error.message}`, error.retryable);
  }
  if (!(error instanceof BankFeedError)) return error;
  if (error.retryAfterMs) c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  switch (error.code) {
    case 'not_configured':
      return new AppError('bank_not_configured', error.message);
    case 'reference_conflict':
      return new AppError('reference_conflict', error.message);
    case 'creation_in_progress':
      return new AppError('creation_in_progress', error.message, true);
    case 'bank_refused':
      return new AppError('bank_refused', error.message);
    case 'bank_unavailable':
      return new AppError('bank_unavailable', error.message, true);
    case 'not_found':
      return new AppError('not_found', error.message);
    default: {
      const unknown: never = error.code;
      return new AppError('internal', `unhandled bank error ${String(unknown)}`);
    }
  }
}

async function connectionJson(deps: BankDeps, rows: ConnectionRow[]) {
  const accounts = await listAccounts(deps.db, rows.map((row) => row.id), deps.env.BANK_DAILY_CALLS);
  return rows.map((row) => toBankConnectionJson(row, accounts));
}

/** POST/GET /v1/bank-connections, GET /:id, POST /:id/sync, DELETE /:id. */
export function bankConnectionRoutes(deps: BankDeps) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  // Bank errors become HTTP errors here; anything else goes on to the app's one error mapping.
  app.onError((error, c) => toErrorResponse(toAppError(error, c), c));

  app.openapi(createRouteDecl, async (c) => {
    const body = c.req.valid('json');
    const { connection, created } = await createBankConnection(deps, body);
    const [json] = await connectionJson(deps, [connection]);
    return created ? c.json(json!, 201) : c.json(json!, 200);
  });

  app.openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: string } => typeof (v as { b?: unknown })?.b === 'string') : undefined;
    const rows = await listConnections(deps.db, { reference: query.reference, status: query.status, beforeId: cursor?.b, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    return c.json({ data: await connectionJson(deps, page), nextCursor: rows.length > query.limit && page.length > 0 ? encodeCursor({ b: page.at(-1)!.id }) : null }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const row = await getConnection(deps.db, connectionId(c));
    if (!row) throw notFound(`bank connection ${c.req.param('id')}`);
    const [json] = await connectionJson(deps, [row]);
    return c.json(json!, 200);
  });

  // Now, within the bank's limits: a requisition still waiting is looked at; each account is synced if its budget allows.
  app.openapi(syncRoute, async (c) => {
    const id = connectionId(c);
    let row = await getConnection(deps.db, id);
    if (!row) throw notFound(`bank connection ${id}`);
    if (row.status === 'awaiting_consent') row = await checkRequisition(deps, row);
    if (row.status !== 'linked' && row.status !== 'awaiting_consent') {
      const [json] = await connectionJson(deps, [row]);
      throw new AppError('connection_not_syncable', `connection ${id} is ${row.status}; create a new one for this reference`, false, json);
    }
    const results: Record<string, string> = {};
    if (row.status === 'linked') {
      const accounts = (await listAccounts(deps.db, [id], deps.env.BANK_DAILY_CALLS)).filter((account) => account.next_sync_at !== null);
      const waits: number[] = [];
      for (const account of accounts) {
        const outcome = await syncBankAccount(deps, { ...account, reference: row.reference });
        results[account.id] = outcome.outcome;
        if (outcome.outcome === 'limited') waits.push(outcome.until.getTime() - Date.now());
      }
      if (accounts.length > 0 && waits.length === accounts.length) {
        const [json] = await connectionJson(deps, [(await getConnection(deps.db, id))!]);
        c.header('Retry-After', String(Math.max(1, Math.ceil(Math.min(...waits) / 1000))));
        throw new AppError('bank_daily_limit', `every account of ${id} has used its ${deps.env.BANK_DAILY_CALLS} calls for today or is paused by the bank; see Retry-After`, true, json);
      }
    }
    const [json] = await connectionJson(deps, [(await getConnection(deps.db, id))!]);
    return c.json({ ...json!, sync: results }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const row = await deleteBankConnection(deps, connectionId(c));
    if (!row) throw notFound(`bank connection ${c.req.param('id')}`);
    const [json] = await connectionJson(deps, [(await getConnection(deps.db, row.id))!]);
    return c.json(json!, 200);
  });

  return app;
}

/** GET /v1/bank-transactions: ascending by id; `after` continues from the previous page's nextCursor. */
export function bankTransactionRoutes(deps: Pick<BankDeps, 'db'>) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  app.openapi(transactionsRoute, async (c) => {
    const query = c.req.valid('query');
    const rows = await listTransactions(deps.db, { connectionId: query.connection, accountId: query.account, status: query.status, afterId: query.after, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    return c.json({ data: page.map(toBankTransactionJson), nextCursor: rows.length > query.limit ? `btx_${page.at(-1)!.id}` : null }, 200);
  });
  return app;
}
