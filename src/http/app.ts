import { Hono, type Context } from 'hono';
import type { Deps } from '../deps.js';
import { consoleRoutes } from '../console/routes.js';
import { AppError, toErrorResponse } from './errors.js';
import { requestContext, requireAdminToken, type AppEnv } from './middleware.js';
import { bankConnectionRoutes, bankTransactionRoutes } from './routes/bank-connections.js';
import { gocardlessWebhookRoutes } from './routes/gocardless-webhooks.js';
import { outboundEventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { mollieWebhookRoutes } from './routes/mollie-webhooks.js';
import { paymentRoutes } from './routes/payments.js';
import { bodyLimit } from './body-limit.js';

export const WEBHOOK_BODY_LIMIT = 4 * 1024 * 1024;
export const API_BODY_LIMIT = 64 * 1024;

function tooLarge(c: Context<AppEnv>, limit: number) {
  return toErrorResponse(new AppError(413, 'payload_too_large', `request body exceeds ${limit} bytes`), c);
}

/** The whole HTTP surface, the same on Node and on Workers. */
export function createApp(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.use('*', requestContext(deps.logger));
  app.onError((error, c) => toErrorResponse(error, c));
  app.notFound((c) => toErrorResponse(new AppError(404, 'route_not_found', `no route for ${c.req.method} ${c.req.path}`), c));

  // Refuse oversized bodies from the Content-Length, or while streaming, before buffering them.
  // A GoCardless batch of 250 events is well under 1 MiB; nothing legitimate comes near 4.
  // Mollie's route has its own, smaller limit. It must be the only one in front of it:
  // hono's bodyLimit buffers a body without Content-Length up to its maxSize, so an outer
  // 4 MiB limit would read 4 MiB before the route's 256 KiB one ever saw it.
  app.use('/webhooks/gocardless/*', bodyLimit({ maxSize: WEBHOOK_BODY_LIMIT, onError: (c) => tooLarge(c, WEBHOOK_BODY_LIMIT) }));
  app.use('/v1/*', bodyLimit({ maxSize: API_BODY_LIMIT, onError: (c) => tooLarge(c, API_BODY_LIMIT) }));

  app.route('/', healthRoutes(deps));
  app.route('/webhooks/mollie', mollieWebhookRoutes(deps));
  app.route('/webhooks/gocardless', gocardlessWebhookRoutes(deps));

  const v1 = new Hono<AppEnv>();
  v1.use('*', requireAdminToken(deps.env.ADMIN_TOKEN));
  v1.route('/payments', paymentRoutes(deps));
  v1.route('/bank-connections', bankConnectionRoutes(deps));
  v1.route('/bank-transactions', bankTransactionRoutes(deps));
  v1.route('/', outboundEventRoutes(deps));
  app.route('/v1', v1);
  app.route('/console', consoleRoutes(deps));

  return app;
}

export type App = ReturnType<typeof createApp>;
