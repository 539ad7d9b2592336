import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { accountSecretsFromEnv } from '../../accounts/accounts.js';
import { finishMollieConnect, MollieConnectError, startMollieConnect, type MollieConnectDeps } from '../../accounts/mollie-connect.js';
import { mollieOAuthAppFromEnv } from '../../accounts/mollie-oauth-app.js';
import { toAccountJson } from '../../accounts/view.js';
import type { Deps } from '../../deps.js';
import { AppError, toErrorResponse } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { BEARER, errorResponses, json, newApiRouter } from '../openapi.js';
import { Account, accountName, toAppError } from './accounts.js';

const tags = ['Accounts'];

const ConnectStart = z
  .object({
    authorizeUrl: z.string().meta({ description: "Send the merchant here (Mollie's authorize page)" }),
    state: z.string().meta({ description: 'Signed; carries the account name; part of authorizeUrl' }),
    expiresAt: z.string().meta({ description: 'The merchant must approve before this (10 minutes)' }),
    redirectUri: z.string().meta({ description: 'Where Mollie sends the merchant back; must be registered with the Mollie app' }),
  })
  .meta({ id: 'MollieConnectStart' });

const connectRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'Start onboarding a merchant with Mollie OAuth: the authorize URL',
  description:
    'Answers the URL of Mollie\'s authorize page for an account to be called `name`, with a signed state that lasts 10 minutes. When the merchant approves, Mollie sends their browser to the callback, which creates the account. Needs `MOLLIE_OAUTH_CLIENT_ID` and `MOLLIE_OAUTH_CLIENT_SECRET` and `ACCOUNT_SECRETS_KEY` (503 without them).',
  security: BEARER,
  request: { query: z.strictObject({ name: accountName }) },
  responses: { 200: json('The authorize URL', ConnectStart), ...errorResponses(400, 401, 409, 503) },
});

const callbackRoute = createRoute({
  method: 'get',
  path: '/callback',
  tags,
  summary: "Mollie OAuth callback: exchanges the code and creates the account (the merchant's browser lands here)",
  description:
    'Public: authenticated by the signed `state`, not the admin token. A forged or expired state answers 400 and nothing is exchanged. The code is exchanged for tokens and the account created as `POST /v1/accounts` would: 201 new, 200 when the Mollie organization already has an account (its own name; an OAuth account gets the new tokens, which mends it if broken), 409 when the name belongs to another organization, 422 when Mollie refuses the code (`invalid_grant`) or the merchant did not approve.',
  request: {
    query: z.object({
      state: z.string().min(1).max(2048),
      code: z.string().min(1).max(2048).optional(),
      error: z.string().max(200).optional().meta({ description: 'Sent by Mollie when the merchant did not approve' }),
      error_description: z.string().max(2000).optional(),
    }),
  },
  responses: {
    200: json('The existing account of this organization', Account),
    201: json('A new account', Account),
    ...errorResponses(400, 409, 422, 502, 503),
  },
});

function toConnectError(error: unknown): unknown {
  if (!(error instanceof MollieConnectError)) return toAppError(error);
  switch (error.code) {
    case 'oauth_not_configured':
      return new AppError('oauth_not_configured', error.message);
    case 'invalid_state':
      return new AppError('invalid_oauth_state', error.message);
    case 'oauth_client_refused':
      return new AppError('provider_unauthorized', error.message);
    default: {
      const unknown: never = error.code;
      return new AppError('internal', `unhandled connect error ${String(unknown)}`);
    }
  }
}

const origin = (c: Context) => new URL(c.req.url).origin;

function connectDeps(deps: Pick<Deps, 'db' | 'env'>): MollieConnectDeps {
  return { db: deps.db, env: deps.env, secrets: accountSecretsFromEnv(deps.env), oauth: mollieOAuthAppFromEnv(deps.env) };
}

/** GET /v1/accounts/mollie/connect (admin): mounted under /v1 before the account routes. */
export function mollieConnectRoutes(deps: Pick<Deps, 'db' | 'env'>) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  const connect = connectDeps(deps);
  app.onError((error, c) => toErrorResponse(toConnectError(error), c));
  app.openapi(connectRoute, async (c) => {
    const started = await startMollieConnect(connect, { name: c.req.valid('query').name, origin: origin(c) });
    return c.json(started, 200);
  });
  return app;
}

/**
 * GET /v1/accounts/mollie/connect/callback (public): mounted on the app itself, ahead of
 * /v1 and its admin-token check, since Mollie sends the merchant's browser here.
 */
export function mollieConnectCallbackRoutes(deps: Pick<Deps, 'db' | 'env'>) {
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  const connect = connectDeps(deps);
  app.onError((error, c) => toErrorResponse(toConnectError(error), c));
  app.openapi(callbackRoute, async (c) => {
    const query = c.req.valid('query');
    const { created, account } = await finishMollieConnect(connect, { state: query.state, code: query.code, error: query.error, errorDescription: query.error_description });
    return created ? c.json(toAccountJson(account, origin(c)), 201) : c.json(toAccountJson(account, origin(c)), 200);
  });
  return app;
}
