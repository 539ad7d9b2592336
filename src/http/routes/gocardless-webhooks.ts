/**
 * `POST /webhooks/gocardless` (default account) and `/webhooks/gocardless/:account`: a
 * signed batch, handed to the intake pipeline with GoCardless's definition
 * (src/webhooks/intake.ts, src/webhooks/gocardless-receipts.ts): verified over the raw
 * bytes, every event stored, 204, then processed in the background.
 */
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { gocardlessIntake } from '../../webhooks/gocardless-receipts.js';
import { receiveWebhook } from '../../webhooks/intake.js';
import type { AppEnv } from '../middleware.js';
import { errorResponses, newApiRouter } from '../openapi.js';

const description =
  'A signed batch of GoCardless events (`Webhook-Signature`: hex HMAC-SHA256 of the raw body under one of `GOCARDLESS_WEBHOOK_SECRETS`). Every event is stored as a receipt before the 204; processing continues in the background. Duplicated event ids are stored once.';
const body = {
  required: true,
  content: { 'application/json': { schema: { type: 'object' as const, required: ['events'], properties: { events: { type: 'array' as const, items: { type: 'object' as const } } } } } },
};
const responses = { 204: { description: 'Every event of the batch is stored (new or duplicate)' }, ...errorResponses(400, 404, 413, 498) };
const tags = ['Provider webhooks'];
const signatureHeader = z.object({ 'webhook-signature': z.string().optional().meta({ description: 'Hex HMAC-SHA256 of the raw body (498 when missing or wrong)' }) });

const defaultAccountRoute = createRoute({ method: 'post', path: '/', tags, summary: 'GoCardless webhooks (default account)', description, request: { headers: signatureHeader, body }, responses });
const accountRoute = createRoute({
  method: 'post',
  path: '/{account}',
  tags,
  summary: 'GoCardless webhooks for a named account',
  description,
  request: { headers: signatureHeader, params: z.object({ account: z.string().meta({ description: 'A configured account name (404 `unknown_account` otherwise, after the signature check)' }) }), body },
  responses,
});

export function gocardlessWebhookRoutes(deps: Deps) {
  const app = newApiRouter();
  const receive = (c: Context<AppEnv>) => receiveWebhook(c, deps, gocardlessIntake);
  // Declared without a body schema: the signature is checked over the raw bytes first.
  app.openapi(defaultAccountRoute, receive as never);
  app.openapi(accountRoute, receive as never);
  return app;
}
