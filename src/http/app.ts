import { Hono } from 'hono';
import type { Deps } from '../deps.js';
import { AppError, toErrorResponse } from './errors.js';
import { requestContext, requireAdminToken, type AppEnv } from './middleware.js';
import { healthRoutes } from './routes/health.js';
import { paymentRoutes } from './routes/payments.js';

/** The whole HTTP surface, the same on Node and on Workers. */
export function createApp(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.use('*', requestContext(deps.logger));
  app.onError((error, c) => toErrorResponse(error, c));
  app.notFound((c) => toErrorResponse(new AppError(404, 'route_not_found', `no route for ${c.req.method} ${c.req.path}`), c));

  app.route('/', healthRoutes(deps));

  const v1 = new Hono<AppEnv>();
  v1.use('*', requireAdminToken(deps.env.ADMIN_TOKEN));
  v1.route('/payments', paymentRoutes(deps));
  app.route('/v1', v1);

  return app;
}

export type App = ReturnType<typeof createApp>;
