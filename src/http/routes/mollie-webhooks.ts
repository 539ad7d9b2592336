/**
 * POST /webhooks/mollie and /webhooks/mollie/:account: classic `id=...` form posts and
 * signed next-gen JSON events on one route, handed to the intake pipeline with Mollie's
 * definition (src/webhooks/intake.ts, src/webhooks/mollie-receipts.ts).
 */
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { receiveWebhook } from '../../webhooks/intake.js';
import { mollieIntake } from '../../webhooks/mollie-receipts.js';
import type { AppEnv } from '../middleware.js';
import { errorResponses, json, newApiRouter } from '../openapi.js';

/** Body size, read timeout and the in-flight budget are enforced in front of this route (app.ts). */
const description =
  'Mollie\'s classic webhooks (`id=tr_…` form posts, unsigned) and signed next-gen events (JSON, `X-Mollie-Signature`) on one route. The body only names what to fetch; the fetch from Mollie is the verification. The receipt is stored before processing; every accepted body answers the same 200, also for an unknown id.';
const body = {
  required: true,
  content: {
    'application/x-www-form-urlencoded': { schema: { type: 'object' as const, required: ['id'], properties: { id: { type: 'string' as const, example: 'tr_5B8cwPMGnU6qLbRvo7qEZo' } } } },
    'application/json': { schema: { type: 'object' as const, description: 'A next-gen event: `{resource: "event", id, type, entityId, createdAt, _links}`' } },
  },
};
const responses = { 200: json('Received (stored; processed or left due)', z.object({ received: z.literal(true) })), ...errorResponses(400, 401, 404, 413) };
const tags = ['Provider webhooks'];
const signatureHeader = z.object({ 'x-mollie-signature': z.string().optional().meta({ description: 'Required on next-gen events: hex HMAC-SHA256 of the raw body' }) });

const defaultAccountRoute = createRoute({ method: 'post', path: '/', tags, summary: 'Mollie webhooks (default account)', description, request: { headers: signatureHeader, body }, responses });
const accountRoute = createRoute({
  method: 'post',
  path: '/{account}',
  tags,
  summary: 'Mollie webhooks for a named account',
  description,
  request: { headers: signatureHeader, params: z.object({ account: z.string().meta({ description: 'A configured account name (404 `unknown_account` otherwise)' }) }), body },
  responses,
});

export function mollieWebhookRoutes(deps: Deps) {
  const app = newApiRouter();
  const receive = (c: Context<AppEnv>) => receiveWebhook(c, deps, mollieIntake);
  // Documented in full, served without hono's per-request validators: the signature is
  // checked over the raw bytes (no body schema), and the header and account schemas above
  // accept any value, so validating them would only cost every webhook a zod parse.
  app.openAPIRegistry.registerPath(defaultAccountRoute);
  app.openAPIRegistry.registerPath(accountRoute);
  app.post('/', receive);
  app.post('/:account', receive);
  return app;
}
