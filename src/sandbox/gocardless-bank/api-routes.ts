/**
 * The Bank Account Data API's routes under `/api/v2`, answering with its bodies,
 * status codes and rate-limit headers, plus the consent page the requisition's
 * `link` points at.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono, type Context } from 'hono';
import { SANDBOX_INSTITUTION_ID, type BankSandboxState, type SandboxAccount } from './state.js';
import { transactionsAnswer } from './transactions.js';

const INSTITUTIONS = [
  { id: SANDBOX_INSTITUTION_ID, name: 'Sandbox Finance', bic: 'SFIN0000', transaction_total_days: '730', max_access_valid_for_days: '180', countries: ['XX'], logo: '' },
  { id: 'SANDBOXSLOW_SSLW0000', name: 'Sandbox Slow Bank', bic: 'SSLW0000', transaction_total_days: '90', max_access_valid_for_days: '90', countries: ['XX'], logo: '' },
];

const error = (c: Context, status: 400 | 401 | 403 | 404 | 409, summary: string, detail: string) =>
  c.json({ summary, detail, status_code: status }, status);

export function bankApiRoutes(state: BankSandboxState) {
  const app = new Hono();
  const { settings } = state;

  app.use('/api/v2/*', async (c, next) => {
    if (settings.latencyMs > 0) await sleep(settings.latencyMs);
    if (c.req.path.startsWith('/api/v2/token/')) return next();
    const token = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    if (!state.validAccess(token)) return error(c, 401, 'Invalid token', 'Token is invalid or expired');
    return next();
  });

  app.post('/api/v2/token/new/', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { secret_id?: string; secret_key?: string };
    if (body.secret_id !== settings.secretId || body.secret_key !== settings.secretKey) {
      return error(c, 401, 'Authentication failed', 'No active account found with the given credentials');
    }
    return c.json(state.mintToken());
  });

  app.post('/api/v2/token/refresh/', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { refresh?: string };
    const refreshed = body.refresh ? state.refreshToken(body.refresh) : null;
    if (!refreshed) return error(c, 401, 'Invalid token', 'Token is invalid or expired');
    return c.json(refreshed);
  });

  app.get('/api/v2/institutions/', (c) => c.json(INSTITUTIONS));
  app.get('/api/v2/institutions/:id/', (c) => {
    const institution = INSTITUTIONS.find((i) => i.id === c.req.param('id'));
    return institution ? c.json(institution) : error(c, 404, 'Not found.', 'Not found.');
  });

  app.post('/api/v2/agreements/enduser/', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { institution_id?: string; max_historical_days?: number; access_valid_for_days?: number; access_scope?: string[] } | null;
    if (!body?.institution_id || !INSTITUTIONS.some((i) => i.id === body.institution_id)) {
      return c.json({ institution_id: { summary: 'Unknown Institution ID', detail: `Get Institution IDs from /institutions/?country={$COUNTRY_CODE}` }, status_code: 400 }, 400);
    }
    if (body.access_valid_for_days !== undefined && (body.access_valid_for_days < 1 || body.access_valid_for_days > 180)) {
      return c.json({ access_valid_for_days: { summary: 'Incorrect access_valid_for_days', detail: 'access_valid_for_days must be > 0 and <= 180' }, status_code: 400 }, 400);
    }
    return c.json(state.createAgreement({ ...body, institution_id: body.institution_id }), 201);
  });

  app.get('/api/v2/agreements/enduser/:id/', (c) => {
    const agreement = state.agreements.get(c.req.param('id'));
    return agreement ? c.json(agreement) : error(c, 404, 'Not found.', 'Not found.');
  });

  app.post('/api/v2/requisitions/', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { institution_id?: string; redirect?: string; reference?: string; agreement?: string; user_language?: string } | null;
    if (!body?.institution_id || !body.redirect || !body.reference) return c.json({ summary: 'Invalid request', detail: 'institution_id, redirect and reference are required', status_code: 400 }, 400);
    if (body.agreement && !state.agreements.has(body.agreement)) return c.json({ agreement: { summary: 'Invalid agreement', detail: 'Unknown agreement id' }, status_code: 400 }, 400);
    const created = state.createRequisition({ ...body, institution_id: body.institution_id, redirect: body.redirect, reference: body.reference });
    if (created === 'reference_taken') {
      return c.json({ reference: { summary: 'Client reference must be unique', detail: `Client reference '${body.reference}' already exists` }, status_code: 400 }, 400);
    }
    return c.json(created, 201);
  });

  app.get('/api/v2/requisitions/', (c) => {
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 100) || 100, 1), 100);
    const offset = Math.max(Number(c.req.query('offset') ?? 0) || 0, 0);
    const all = [...state.requisitions.keys()].map((id) => state.getRequisition(id)!);
    const url = new URL(c.req.url);
    const at = (value: number) => {
      url.searchParams.set('limit', String(limit));
      url.searchParams.set('offset', String(value));
      return url.toString();
    };
    return c.json({
      count: all.length,
      next: offset + limit < all.length ? at(offset + limit) : null,
      previous: offset > 0 ? at(Math.max(0, offset - limit)) : null,
      results: all.slice(offset, offset + limit),
    });
  });

  app.get('/api/v2/requisitions/:id/', (c) => {
    const requisition = state.getRequisition(c.req.param('id'));
    return requisition ? c.json(requisition) : error(c, 404, 'Not found.', 'Not found.');
  });

  app.delete('/api/v2/requisitions/:id/', (c) => {
    const id = c.req.param('id');
    if (!state.requisitions.delete(id)) return error(c, 404, 'Not found.', 'Not found.');
    return c.json({ summary: 'Requisition deleted', detail: `Requisition ${id} deleted with all its End User Agreements` });
  });

  app.get('/api/v2/accounts/:id/', (c) => {
    const account = state.getAccount(c.req.param('id'));
    if (!account) return error(c, 404, 'Not found.', 'Not found.');
    const { booked: _booked, pending: _pending, requisitionId: _requisition, ...metadata } = account;
    return c.json(metadata);
  });

  const scoped = (scope: string, answer: (c: Context, account: SandboxAccount) => Response) => async (c: Context) => {
    const account = state.getAccount(c.req.param('id')!);
    if (!account) return error(c, 404, 'Not found.', 'Not found.');
    const record = (status: number) => state.recordCall({ at: Date.now(), accountId: account.id, scope, status });
    if (account.status === 'EXPIRED' || account.status === 'SUSPENDED') {
      record(401);
      return error(c, 401, 'Access has expired or it has been revoked', 'End User Agreement (EUA) has expired or was revoked. To restore access reconnect the account.');
    }
    if (account.status === 'ERROR') {
      record(409);
      return error(c, 409, 'Account is in ERROR state', "Couldn't update account: the institution answered with an error");
    }
    const limit = state.takeDailyCall(account.id, scope);
    headers(c, limit.ok ? limit.remaining : 0, limit.resetS);
    if (!limit.ok) {
      record(429);
      return c.json(
        { summary: 'Rate limit exceeded', detail: `The rate limit for this resource is ${settings.dailyLimit}/day. Please try again in ${limit.resetS} seconds`, status_code: 429 },
        429,
      );
    }
    record(200);
    account.last_accessed = state.iso();
    return answer(c, account);
  };

  function headers(c: Context, remaining: number, resetS: number) {
    const prefix = settings.headerStyle === 'x' ? 'X-RateLimit-' : 'HTTP_X_RATELIMIT_';
    const name = (suffix: string) => (settings.headerStyle === 'x' ? `${prefix}${suffix}` : `${prefix}${suffix.toUpperCase().replaceAll('-', '_')}`);
    c.header(name('Account-Success-Limit'), String(settings.dailyLimit));
    c.header(name('Account-Success-Remaining'), String(remaining));
    c.header(name('Account-Success-Reset'), String(resetS));
  }

  app.get(
    '/api/v2/accounts/:id/transactions/',
    scoped('transactions', (c, account) => c.json(transactionsAnswer(account, c.req.query('date_from'), c.req.query('date_to'), state.iso()))),
  );
  app.get('/api/v2/accounts/:id/details/', scoped('details', (c, account) => c.json({ account: { iban: account.iban, currency: 'EUR', ownerName: account.owner_name } })));
  app.get(
    '/api/v2/accounts/:id/balances/',
    scoped('balances', (c) => c.json({ balances: [{ balanceAmount: { amount: '0.00', currency: 'EUR' }, balanceType: 'interimAvailable' }] })),
  );

  // The consent page: the end user arrives here from the requisition's link. `?outcome=reject` refuses.
  app.get('/psd2/start/:id/:institution', (c) => {
    const outcome = c.req.query('outcome') === 'reject' ? 'reject' : 'link';
    const requisition = state.completeConsent(c.req.param('id'), outcome);
    if (!requisition) return c.text('unknown requisition', 404);
    const target = new URL(requisition.redirect);
    target.searchParams.set('ref', requisition.reference);
    if (outcome === 'reject') target.searchParams.set('error', 'UserCancelledSession');
    return c.redirect(target.toString(), 302);
  });

  return app;
}
