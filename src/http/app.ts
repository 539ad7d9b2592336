import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../deps.js';
import { consoleRoutes } from '../console/routes.js';
import { AppError, toErrorResponse } from './errors.js';
import { annotateRequest, requestContext, requestMetrics, requestSpan, requireAdminToken, type AppEnv } from './middleware.js';
import { accountRoutes } from './routes/accounts.js';
import { bankConnectionRoutes, bankTransactionRoutes } from './routes/bank-connections.js';
import { gocardlessWebhookRoutes } from './routes/gocardless-webhooks.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { outboundEventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { mollieConnectCallbackRoutes, mollieConnectRoutes } from './routes/mollie-connect.js';
import { mollieWebhookRoutes } from './routes/mollie-webhooks.js';
import { paymentRoutes } from './routes/payments.js';
import { receiptRoutes, webhookRequestRoutes } from './routes/receipts.js';
import { inboundLog } from '../webhooks/inbound-log.js';
import { bodyLimit } from './body-limit.js';
import { bodyGuard, createBodyBudget } from './body-guard.js';
import { createFailedAttempts } from './failed-attempts.js';
import { createRouteTable, registerConsolePaths } from './route-table.js';
import { buildOpenApiDocument, newApiRouter, type OpenApiDocument } from './openapi.js';
import { ReferencePage, REFERENCE_CSP } from './reference-page.js';

/**
 * The largest GoCardless webhook body accepted. GoCardless sends at most 250 events a
 * batch; a sandbox batch of 250 payment events is about 110 KB, and 250 events each
 * carrying the most metadata GoCardless allows (3 keys of 50 characters, values of 500,
 * on both `metadata` and `resource_metadata`) about 940 KB (`npx tsx
 * scripts/measure-gocardless-batches.ts`). Twice that leaves room for escaped text.
 */
export const WEBHOOK_BODY_LIMIT = 2 * 1024 * 1024;
/** A classic Mollie webhook is a few dozen bytes; a snapshot event a few kB. */
export const MOLLIE_WEBHOOK_BODY_LIMIT = 256 * 1024;
export const API_BODY_LIMIT = 64 * 1024;

function tooLarge(c: Context<AppEnv>, limit: number) {
  return toErrorResponse(new AppError('payload_too_large', `request body exceeds ${limit} bytes`), c);
}

/**
 * Which routes a listener serves. `all` (one port, the default): everything. With
 * ADMIN_PORT the public port is `public` (webhooks, /v1, /healthz and a /readyz that says
 * only ready or not) and the internal one `admin` (/metrics, /readyz with every check's
 * detail, the console, /healthz): scrapes, dependency errors and the console stay off the
 * port the internet reaches.
 */
export type AppSurface = 'all' | 'public' | 'admin';

/** The whole HTTP surface, the same on Node and on Workers. */
export function createApp(deps: Deps, options: { surface?: AppSurface } = {}) {
  const surface = options.surface ?? 'all';
  const app: OpenAPIHono<AppEnv> = newApiRouter();
  // One budget for every unauthenticated body this app (this process, this isolate) holds.
  const budget = createBodyBudget(deps.env.WEBHOOK_BODY_BUDGET_BYTES);
  // Wrong admin tokens, on /v1 and at the console's sign-in, counted together.
  const failedAttempts = createFailedAttempts();
  app.use('*', requestContext(deps.logger));
  app.use('*', requestMetrics(deps.metrics));
  app.use('/webhooks/*', requestSpan());
  // Outside the body limits, so a refused oversized request is logged too.
  if (surface !== 'admin') app.use('/webhooks/*', inboundLog(deps));
  app.use('/v1/*', requestSpan());
  app.onError((error, c) => toErrorResponse(error, c));
  const routeTable = createRouteTable(app);
  app.notFound((c) => {
    // A known path asked with another method: 405 with the methods it has.
    const allowed = routeTable.allowedMethods(c.req.path);
    if (allowed.length > 0) {
      c.header('Allow', allowed.join(', '));
      return toErrorResponse(new AppError('method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}; allowed: ${allowed.join(', ')}`), c);
    }
    return toErrorResponse(new AppError('route_not_found', `no route for ${c.req.method} ${c.req.path}`), c);
  });

  // Webhook bodies are read before anything can authenticate them: each reserves its size
  // from the budget (503 + Retry-After when full), must arrive within the body timeout
  // (408), and is refused from its Content-Length, or while streaming, past the route's
  // limit (413), before it is buffered.
  const refused = (provider: 'mollie' | 'gocardless') => (reason: 'busy' | 'body_timeout') =>
    deps.metrics.webhooks.inc({ provider, outcome: reason });
  app.use(
    '/webhooks/gocardless/*',
    bodyGuard({ budget, maxBytes: WEBHOOK_BODY_LIMIT, timeoutMs: deps.env.WEBHOOK_BODY_TIMEOUT_MS, onTooLarge: (c) => tooLarge(c, WEBHOOK_BODY_LIMIT), onRefused: refused('gocardless') }),
  );
  app.use(
    '/webhooks/mollie/*',
    bodyGuard({
      budget,
      maxBytes: MOLLIE_WEBHOOK_BODY_LIMIT,
      timeoutMs: deps.env.WEBHOOK_BODY_TIMEOUT_MS,
      onTooLarge: (c) => {
        deps.metrics.webhooks.inc({ provider: 'mollie', outcome: 'too_large' });
        annotateRequest(c, { provider: 'mollie', outcome: 'too_large' });
        return toErrorResponse(new AppError('payload_too_large', `a Mollie webhook body is at most ${MOLLIE_WEBHOOK_BODY_LIMIT} bytes`), c);
      },
      onRefused: refused('mollie'),
    }),
  );
  app.use('/v1/*', bodyLimit({ maxSize: API_BODY_LIMIT, onError: (c) => tooLarge(c, API_BODY_LIMIT) }));

  if (surface === 'public') {
    // Registered before the health routes, so these answer first.
    const health = healthRoutes(deps);
    app.get('/readyz', async (c) => {
      const detailed = await health.request('/readyz');
      const { status } = (await detailed.json()) as { status: string };
      return c.json({ status }, detailed.status === 200 ? 200 : 503);
    });
    app.get('/metrics', (c) => toErrorResponse(new AppError('route_not_found', 'metrics are served on ADMIN_PORT'), c));
  }
  app.route('/', healthRoutes(deps));
  if (surface === 'admin') {
    app.route('/console', consoleRoutes(deps, { failedAttempts }));
    return app;
  }
  app.route('/webhooks/mollie', mollieWebhookRoutes(deps));
  app.route('/webhooks/gocardless', gocardlessWebhookRoutes(deps));

  // Public, ahead of /v1's admin-token check: the merchant's browser lands here from Mollie,
  // and the signed state authenticates it.
  app.route('/v1/accounts/mollie/connect', mollieConnectCallbackRoutes(deps));
  const v1 = newApiRouter();
  v1.use('*', requireAdminToken(deps.env.ADMIN_TOKEN, failedAttempts));
  v1.route('/payments', paymentRoutes(deps));
  v1.route('/receipts', receiptRoutes(deps));
  v1.route('/webhook-requests', webhookRequestRoutes(deps));
  // Before the account routes, which would read "connect" as an account name.
  v1.route('/accounts/mollie/connect', mollieConnectRoutes(deps));
  v1.route('/accounts', accountRoutes(deps));
  v1.route('/bank-connections', bankConnectionRoutes(deps));
  v1.route('/bank-transactions', bankTransactionRoutes(deps));
  v1.route('/', outboundEventRoutes(deps));
  v1.route('/', deliveryRoutes(deps));
  app.route('/v1', v1);
  if (surface === 'all') app.route('/console', consoleRoutes(deps, { failedAttempts }));
  registerConsolePaths(app.openAPIRegistry);

  // The document is built once, on first request: the routes do not change after this.
  let document: OpenApiDocument | undefined;
  const openApiDocument = () => (document ??= buildOpenApiDocument(app));
  app.openapi(openApiRoute, (c) => c.json(openApiDocument() as never, 200));
  app.openapi(referenceRoute, ((c: Context<AppEnv>) => {
    c.header('Content-Security-Policy', REFERENCE_CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    return c.html(ReferencePage({ document: openApiDocument() }) as never);
  }) as never);

  return app;
}

const openApiRoute = createRoute({
  method: 'get',
  path: '/openapi.json',
  tags: ['Operations'],
  summary: 'This document (OpenAPI 3.1)',
  responses: { 200: { description: 'The OpenAPI document', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } } },
});

const referenceRoute = createRoute({
  method: 'get',
  path: '/docs',
  tags: ['Operations'],
  summary: 'The API reference as a readable page (generated from this document)',
  responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' as const } } } } },
});
