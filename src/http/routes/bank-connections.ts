import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { BankFeedError, checkRequisition, createBankConnection, deleteBankConnection } from '../../bank/connections.js';
import { getConnection, listAccounts, listConnections, listTransactions, type ConnectionRow } from '../../bank/queries.js';
import { syncBankAccount } from '../../bank/sync-account.js';
import { toBankConnectionJson, toBankTransactionJson } from '../../bank/view.js';
import type { Deps } from '../../deps.js';
import { BankApiError } from '../../providers/gocardless-bank/client.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { AppError, notFound } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { parseJsonBody, parseQuery } from '../validation.js';

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

const listQuery = z.object({
  reference: z.string().min(1).max(200).optional(),
  status: z.enum(CONNECTION_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

const transactionsQuery = z.object({
  connection: z.string().regex(CONNECTION_ID, 'must be a connection id (bcn_...)').optional(),
  account: z.string().regex(ACCOUNT_ID, 'must be an account id (bac_...)').optional(),
  status: z.enum(['pending', 'booked', 'removed']).optional(),
  after: z
    .string()
    .regex(/^(btx_)?\d{1,18}$/, 'must be a transaction id (btx_...) or the nextCursor of a previous page')
    .transform((value) => Number(value.replace(/^btx_/, '')))
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

function connectionId(c: Context): string {
  const id = c.req.param('id') ?? '';
  if (!CONNECTION_ID.test(id)) throw new AppError(400, 'bad_request', 'connection id must look like bcn_...');
  return id;
}

function toAppError(error: unknown, c: Context): unknown {
  if (error instanceof BankApiError) {
    // GoCardless itself failed or refused during a route's own call (a requisition check).
    if (error.retryAfterMs) c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
    if (error.kind === 'daily_limit' || error.kind === 'rate_limited') return new AppError(503, 'bank_rate_limited', `GoCardless: ${error.message}`, true);
    return new AppError(502, 'bank_unavailable', `GoCardless: ${error.message}`, error.retryable);
  }
  if (!(error instanceof BankFeedError)) return error;
  if (error.retryAfterMs) c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  switch (error.code) {
    case 'not_configured':
      return new AppError(503, 'bank_not_configured', error.message);
    case 'reference_conflict':
      return new AppError(409, 'reference_conflict', error.message);
    case 'creation_in_progress':
      return new AppError(409, 'creation_in_progress', error.message, true);
    case 'bank_refused':
      return new AppError(422, 'bank_refused', error.message);
    case 'bank_unavailable':
      return new AppError(502, 'bank_unavailable', error.message, true);
    case 'not_found':
      return new AppError(404, 'not_found', error.message);
    default: {
      const unknown: never = error.code;
      return new AppError(500, 'internal', `unhandled bank error ${String(unknown)}`);
    }
  }
}

/** Bank errors become HTTP errors here; anything else goes on to the app's one error mapping. */
function bankHandler(handler: (c: Context<AppEnv>) => Promise<Response>) {
  return async (c: Context<AppEnv>) => {
    try {
      return await handler(c);
    } catch (error) {
      throw toAppError(error, c);
    }
  };
}

async function connectionJson(deps: Deps, rows: ConnectionRow[]) {
  const accounts = await listAccounts(deps.db, rows.map((row) => row.id), deps.env.BANK_DAILY_CALLS);
  return rows.map((row) => toBankConnectionJson(row, accounts));
}

/** POST/GET /v1/bank-connections, GET /:id, POST /:id/sync, DELETE /:id. */
export function bankConnectionRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  app.post('/', bankHandler(async (c) => {
    const body = createBody.parse(await parseJsonBody(c));
    const { connection, created } = await createBankConnection(deps, body);
    const [json] = await connectionJson(deps, [connection]);
    return c.json(json, created ? 201 : 200);
  }));

  app.get('/', bankHandler(async (c) => {
    const query = parseQuery(listQuery, c.req.query());
    const cursor = query.cursor ? decodeCursor(query.cursor, (v): v is { b: string } => typeof (v as { b?: unknown })?.b === 'string') : undefined;
    const rows = await listConnections(deps.db, { reference: query.reference, status: query.status, beforeId: cursor?.b, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    return c.json({ data: await connectionJson(deps, page), nextCursor: rows.length > query.limit && page.length > 0 ? encodeCursor({ b: page.at(-1)!.id }) : null });
  }));

  app.get('/:id', bankHandler(async (c) => {
    const row = await getConnection(deps.db, connectionId(c));
    if (!row) throw notFound(`bank connection ${c.req.param('id')}`);
    const [json] = await connectionJson(deps, [row]);
    return c.json(json);
  }));

  // Now, within the bank's limits: a requisition still waiting is looked at; each account is synced if its budget allows.
  app.post('/:id/sync', bankHandler(async (c) => {
    const id = connectionId(c);
    let row = await getConnection(deps.db, id);
    if (!row) throw notFound(`bank connection ${id}`);
    if (row.status === 'awaiting_consent') row = await checkRequisition(deps, row);
    if (row.status !== 'linked' && row.status !== 'awaiting_consent') {
      const [json] = await connectionJson(deps, [row]);
      throw new AppError(409, 'connection_not_syncable', `connection ${id} is ${row.status}; create a new one for this reference`, false, json);
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
        throw new AppError(429, 'bank_daily_limit', `every account of ${id} has used its ${deps.env.BANK_DAILY_CALLS} calls for today or is paused by the bank; see Retry-After`, true, json);
      }
    }
    const [json] = await connectionJson(deps, [(await getConnection(deps.db, id))!]);
    return c.json({ ...json, sync: results });
  }));

  app.delete('/:id', bankHandler(async (c) => {
    const row = await deleteBankConnection(deps, connectionId(c));
    if (!row) throw notFound(`bank connection ${c.req.param('id')}`);
    const [json] = await connectionJson(deps, [(await getConnection(deps.db, row.id))!]);
    return c.json(json);
  }));

  return app;
}

/** GET /v1/bank-transactions: ascending by id; `after` continues from the previous page's nextCursor. */
export function bankTransactionRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.get('/', async (c) => {
    const query = parseQuery(transactionsQuery, c.req.query());
    const rows = await listTransactions(deps.db, { connectionId: query.connection, accountId: query.account, status: query.status, afterId: query.after, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    return c.json({ data: page.map(toBankTransactionJson), nextCursor: rows.length > query.limit ? `btx_${page.at(-1)!.id}` : null });
  });
  return app;
}
