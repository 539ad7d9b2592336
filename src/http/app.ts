import { Hono, type Context } from 'hono';
import type { Deps } from '../deps.js';
import { consoleRoutes } from '../console/routes.js';
import { AppError, toErrorResponse } from './errors.js';
import { requestContext, requestMetrics, requestSpan, requireAdminToken, type AppEnv } from './middleware.js';
import { gocardlessWebhookRoutes } from './routes/gocardless-webhooks.js';
import { outboundEventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { mollieWebhookRoutes } from './routes/mollie-webhooks.js';
import { paymentRoutes } from './routes/payments.js';
import { receiptRoutes, webhookRequestRoutes } from './routes/receipts.js';
import { inboundLog } from '../webhooks/inbound-log.js';
import { bodyLimit } from './body-limit.js';

export const WEBHOOK_BODY_LIMIT = 4 * 1024 * 1024;
export const API_BODY_LIMIT = 64 * 1024;

function tooLarge(c: Context<AppEnv>, limit: number) {
  return toErrorResponse(new AppError(413, 'payload_too_large', `request body exceeds ${limit} bytes`), c);
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
  const app = new Hono<AppEnv>();
  app.use('*', requestContext(deps.logger));
  app.use('*', requestMetrics(deps.metrics));
  app.use('/webhooks/*', requestSpan());
  // Outside the body limits, so a refused oversized request is logged too.
  if (surface !== 'admin') app.use('/webhooks/*', inboundLog(deps));
  app.use('/v1/*', requestSpan());
  app.onError((error, c) => toErrorResponse(error, c));
  app.notFound((c) => toErrorResponse(new AppError(404, 'route_not_found', `no route for ${c.req.method} ${c.req.path}`), c));

  // Refuse oversized bodies from the Content-Length, or while streaming, before buffering them.
  // A GoCardless batch of 250 events is well under 1 MiB; nothing legitimate comes near 4.
  // Mollie's route has its own, smaller limit. It must be the only one in front of it:
  // hono's bodyLimit buffers a body without Content-Length up to its maxSize, so an outer
  // 4 MiB limit would read 4 MiB before the route's 256 KiB one ever saw it.
  app.use('/webhooks/gocardless/*', bodyLimit({ maxSize: WEBHOOK_BODY_LIMIT, onError: (c) => tooLarge(c, WEBHOOK_BODY_LIMIT) }));
  app.use('/v1/*', bodyLimit({ maxSize: API_BODY_LIMIT, onError: (c) => tooLarge(c, API_BODY_LIMIT) }));

  if (surface === 'public') {
    // Registered before the health routes, so these answer first.
    const health = healthRoutes(deps);
    app.get('/readyz', async (c) => {
      const detailed = await health.request('/readyz');
      const { status } = (await detailed.json()) as { status: string };
      return c.json({ status }, detailed.status === 200 ? 200 : 503);
    });
    app.get('/metrics', (c) => toErrorResponse(new AppError(404, 'route_not_found', 'metrics are served on ADMIN_PORT'), c));
  }
  app.route('/', healthRoutes(deps));
  if (surface === 'admin') {
    app.route('/console', consoleRoutes(deps));
    return app;
  }
  app.route('/webhooks/mollie', mollieWebhookRoutes(deps));
  app.route('/webhooks/gocardless', gocardlessWebhookRoutes(deps));

  const v1 = new Hono<AppEnv>();
  v1.use('*', requireAdminToken(deps.env.ADMIN_TOKEN));
  v1.route('/payments', paymentRoutes(deps));
  v1.route('/receipts', receiptRoutes(deps));
  v1.route('/webhook-requests', webhookRequestRoutes(deps));
  v1.route('/', outboundEventRoutes(deps));
  app.route('/v1', v1);
  if (surface === 'all') app.route('/console', consoleRoutes(deps));

  return app;
}

export type App = ReturnType<typeof createApp>;
