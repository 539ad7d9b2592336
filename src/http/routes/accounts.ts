import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { AccountError, accountSecretsFromEnv, createAccount, disableAccount, patchAccount, type AccountDeps } from '../../accounts/accounts.js';
import { checkAccountNow, type AccountCheckDeps } from '../../accounts/check-job.js';
import { CredentialsShapeError, goCardlessCredentials, mollieCredentials } from '../../accounts/credentials.js';
import { findAccount, listAccounts } from '../../accounts/listing.js';
import { toAccountJson } from '../../accounts/view.js';
import { PROVIDERS } from '../../providers/types.js';
import { pageOf } from '../api-schemas.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { AppError, badRequest, notFound, toErrorResponse } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter, pageCursor } from '../openapi.js';
import { requireJsonBody } from '../validation.js';

const ACCOUNT_STATUSES = ['active', 'broken', 'disabled'] as const;

export const accountName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be 1-64 lowercase letters, digits, _ or -, starting with a letter or digit')
  // Kept free for GET /v1/accounts/mollie/connect (onboarding with Mollie OAuth).
  .refine((name) => name !== 'connect', '"connect" is reserved')
  .meta({ description: 'The `:account` of `/webhooks/<provider>/:account`' });

const webhookSecrets = z
  .array(z.string().min(1).max(500))
  .max(10)
  .meta({ description: "The account's own webhook signing secrets, newest first (several during a rotation); never returned" });

const createBody = z.discriminatedUnion('provider', [
  z.object({ provider: z.literal('mollie'), name: accountName, credentials: mollieCredentials, webhookSecrets: webhookSecrets.optional() }),
  z.object({ provider: z.literal('gocardless'), name: accountName, credentials: goCardlessCredentials, webhookSecrets: webhookSecrets.optional() }),
]);

const patchBody = z
  .object({
    credentials: z.union([mollieCredentials, goCardlessCredentials]).optional().meta({ description: 'New credentials of the same provider-side identity; checked with the provider' }),
    webhookSecrets: webhookSecrets.optional().meta({ description: 'Replaces the secrets; `[]` removes them' }),
    disabled: z.boolean().optional(),
  })
  .refine((body) => body.credentials !== undefined || body.webhookSecrets !== undefined || body.disabled !== undefined, 'give credentials, webhookSecrets or disabled');

const listQuery = z.strictObject({
  provider: z.enum(PROVIDERS).optional(),
  status: z.enum(ACCOUNT_STATUSES).optional(),
  limit: pageLimit(50),
  cursor: pageCursor,
});

const accountParams = z.object({
  provider: z.enum(PROVIDERS),
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be an account name').meta({ description: 'The account name' }),
});

export const Account = z
  .looseObject({
    provider: z.enum(PROVIDERS),
    name: z.string(),
    status: z.enum(ACCOUNT_STATUSES),
    externalId: z.string().nullable().meta({ description: 'Who the credentials belong to at the provider (Mollie `pfl_`/`org_`, GoCardless creditor); null for the env-configured account' }),
    webhookUrl: z.string().meta({ description: "Paste into the provider's dashboard" }),
    credentials: z.object({ kind: z.string().meta({ description: '`apiKey`, `organizationToken`, `oauth` or `accessToken`' }), last4: z.string() }),
    source: z.enum(['api', 'environment']).meta({ description: '`environment`: the read-only `default` account of MOLLIE_API_KEY / GOCARDLESS_ACCESS_TOKEN' }),
    lastCheckedAt: z.string().nullable(),
    brokenSince: z.string().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string().nullable(),
  })
  .meta({ id: 'Account' });

const tags = ['Accounts'];

const createRouteDecl = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Create an account (idempotent per provider-side identity)',
  description:
    'The credentials are checked with the provider, which also says who they belong to. The same identity again answers 200 with the existing account under its first name; a name that belongs to another identity answers 409; credentials the provider refuses answer 422 with its message and nothing is stored. Needs `ACCOUNT_SECRETS_KEY` (503 without it).',
  security: BEARER,
  middleware: [requireJsonBody] as const,
  request: { body: { required: true, content: { 'application/json': { schema: createBody } } } },
  responses: {
    200: json('The existing account of this identity', Account),
    201: json('A new account', Account),
    ...errorResponses(400, 401, 409, 415, 422, 502, 503),
  },
});

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'List accounts: the env-configured ones first, then by creation',
  security: BEARER,
  request: { query: listQuery },
  responses: { 200: json('A page of accounts', pageOf(Account)), ...errorResponses(400, 401, 503) },
});

const getRoute = createRoute({
  method: 'get',
  path: '/{provider}/{name}',
  tags,
  summary: 'One account',
  security: BEARER,
  request: { params: accountParams, query: z.strictObject({}) },
  responses: { 200: json('The account', Account), ...errorResponses(400, 401, 404, 503) },
});

const patchRoute = createRoute({
  method: 'patch',
  path: '/{provider}/{name}',
  tags,
  summary: 'Change credentials or webhook secrets, disable or enable',
  description: 'New credentials are checked with the provider and must belong to the same identity (409 otherwise). The env-configured `default` accounts are read-only (409).',
  security: BEARER,
  middleware: [requireJsonBody] as const,
  request: { params: accountParams, query: z.strictObject({}), body: { required: true, content: { 'application/json': { schema: patchBody } } } },
  responses: { 200: json('The account', Account), ...errorResponses(400, 401, 404, 409, 415, 422, 502, 503) },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/{provider}/{name}',
  tags,
  summary: 'Disable an account (history kept; its name and identity stay taken)',
  security: BEARER,
  request: { params: accountParams, query: z.strictObject({}) },
  responses: { 200: json('The account, disabled', Account), ...errorResponses(400, 401, 404, 409, 503) },
});

const checkRoute = createRoute({
  method: 'post',
  path: '/{provider}/{name}/check',
  tags,
  summary: 'Check the credentials with the provider now',
  description:
    'The same cheap authenticated call as the periodic check (`ACCOUNT_CHECK_INTERVAL_MS`). A refusal breaks the account (`gateway.account.broken`), a working answer mends a broken one (`gateway.account.recovered`), an outage only notes `lastError`; the answer is the account as the check left it. The env-configured `default` accounts are not stored (409).',
  security: BEARER,
  request: { params: accountParams, query: z.strictObject({}) },
  responses: { 200: json('The account after the check', Account), ...errorResponses(400, 401, 404, 409, 503) },
});

export function toAppError(error: unknown): unknown {
  if (error instanceof CredentialsShapeError) return badRequest(`credentials: ${error.message}`);
  if (!(error instanceof AccountError)) return error;
  switch (error.code) {
    case 'secrets_not_configured':
      return new AppError('secrets_not_configured', error.message);
    case 'name_taken':
      return new AppError('account_name_taken', error.message);
    case 'read_only':
      return new AppError('account_read_only', error.message);
    case 'identity_mismatch':
      return new AppError('account_identity_mismatch', error.message);
    case 'credentials_refused':
      return new AppError('credentials_refused', error.message);
    case 'provider_unavailable':
      return new AppError('provider_unavailable', error.message, true);
    case 'provider_bad_response':
      return new AppError('provider_bad_response', error.message, error.retryable);
    case 'not_found':
      return new AppError('not_found', error.message);
    default: {
      const unknown: never = error.code;
      return new AppError('internal', `unhandled account error ${String(unknown)}`);
    }
  }
}

const origin = (c: Context) => new URL(c.req.url).origin;

const isPosition = (value: unknown): value is { e: number; a: number } =>
  typeof value === 'object' && value !== null && Number.isInteger((value as { e?: unknown }).e) && Number.isInteger((value as { a?: unknown }).a);

/** POST/GET /v1/accounts, GET/PATCH/DELETE /:provider/:name, POST /:provider/:name/check. */
export function accountRoutes(deps: AccountCheckDeps) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  const accountDeps: AccountDeps = { db: deps.db, env: deps.env, secrets: accountSecretsFromEnv(deps.env), logger: deps.logger };
  app.onError((error, c) => toErrorResponse(toAppError(error), c));

  app.openapi(createRouteDecl, async (c) => {
    const { created, account } = await createAccount(accountDeps, c.req.valid('json'));
    return created ? c.json(toAccountJson(account, origin(c)), 201) : c.json(toAccountJson(account, origin(c)), 200);
  });

  app.openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    const cursor = query.cursor ? decodeCursor(query.cursor, isPosition) : undefined;
    const page = await listAccounts(deps.db, deps.env, origin(c), {
      provider: query.provider,
      status: query.status,
      limit: query.limit,
      from: cursor ? { envGiven: cursor.e, afterId: cursor.a } : undefined,
    });
    return c.json({ data: page.data, nextCursor: page.next ? encodeCursor({ e: page.next.envGiven, a: page.next.afterId }) : null }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const { provider, name } = c.req.valid('param');
    const account = await findAccount(deps.db, deps.env, origin(c), provider, name);
    if (!account) throw notFound(`${provider} account ${name}`);
    return c.json(account, 200);
  });

  app.openapi(patchRoute, async (c) => {
    const { provider, name } = c.req.valid('param');
    const account = await patchAccount(accountDeps, provider, name, c.req.valid('json'));
    return c.json(toAccountJson(account, origin(c)), 200);
  });

  app.openapi(checkRoute, async (c) => {
    const { provider, name } = c.req.valid('param');
    const { account } = await checkAccountNow(deps, provider, name);
    return c.json(toAccountJson(account, origin(c)), 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const { provider, name } = c.req.valid('param');
    const account = await disableAccount(accountDeps, provider, name);
    return c.json(toAccountJson(account, origin(c)), 200);
  });

  return app;
}
