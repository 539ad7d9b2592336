import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { verifyGoCardlessSignature } from '../../providers/gocardless/signature.js';
import { acceptGoCardlessBatch, processGoCardlessReceipts } from '../../webhooks/gocardless-receipts.js';
import { AppError } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { annotateRequest, type AppEnv } from '../middleware.js';
import { errorResponses, newApiRouter } from '../openapi.js';

const ACCOUNT = /^[A-Za-z0-9_-]{1,64}$/;
/** Request headers kept on each receipt, for debugging; the signature is not (it covers the batch). */
const KEPT_HEADERS = ['content-type', 'origin', 'user-agent'] as const;

/**
 * `POST /webhooks/gocardless` (default account) and `/webhooks/gocardless/:account`.
 *
 * Verify over the raw bytes, store every event as a receipt in one round trip, answer
 * 204, then process in the background (deps.background: kept by Node for shutdown,
 * handed to waitUntil on Workers). A 500-event batch is acknowledged in milliseconds,
 * far inside GoCardless's 10 s; whatever the background pass cannot finish stays
 * pending for the receipt worker.
 *
 * Order of checks: signature first, so an unauthenticated caller learns nothing (not
 * even which accounts exist); then the account (404: GoCardless retries, giving an
 * operator time to configure it, and the events API recovery can fill in after); then
 * the body (400: signed by GoCardless but not understood; refused whole, never half-stored).
 */
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

  const receive = async (c: Context<AppEnv>) => {
    const account = c.req.param('account') ?? 'default';
    const log = c.get('logger');
    // Every outcome is counted and written into the request's one log line (warn for a refusal).
    const refuse = (code: ErrorCode, outcome: string, message: string): never => {
      deps.metrics.webhooks.inc({ provider: 'gocardless', outcome });
      annotateRequest(c, { provider: 'gocardless', account: account.slice(0, 64), outcome, reason: message.slice(0, 500) }, 'warn');
      throw new AppError(code, message);
    };

    const provider = deps.providers.gocardless;
    if (!provider) return refuse('provider_not_configured', 'provider_not_configured', 'GoCardless is not configured on this gateway (set GOCARDLESS_ACCESS_TOKEN)');

    const body = new Uint8Array(await c.req.arrayBuffer());
    const secrets = deps.env.GOCARDLESS_WEBHOOK_SECRETS;
    const signature = verifyGoCardlessSignature(body, c.req.header('webhook-signature'), secrets);
    if (signature === 'absent') return refuse('signature_missing', 'signature_missing', 'missing Webhook-Signature header');
    if (signature !== 'valid') {
      if (secrets.length === 0) log.error({ provider: 'gocardless' }, 'GOCARDLESS_WEBHOOK_SECRETS is empty: every GoCardless webhook is refused');
      return refuse('signature_invalid', 'signature_invalid', 'Webhook-Signature does not match the body under any configured secret');
    }

    if (!ACCOUNT.test(account) || !provider.hasAccount(account)) {
      return refuse('unknown_account', 'unknown_account', `no GoCardless account named ${JSON.stringify(account)} is configured`);
    }

    const headers: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const value = c.req.header(name);
      if (value !== undefined) headers[name] = value;
    }
    const accepted = await acceptGoCardlessBatch(deps, { account, body, headers });
    if (!accepted.ok) return refuse('malformed_webhook', 'malformed', accepted.message);

    deps.background.defer(processGoCardlessReceipts(deps, accepted.newReceiptIds));
    const outcome = accepted.newReceiptIds.length === 0 && accepted.received > 0 ? 'duplicate' : 'accepted';
    deps.metrics.webhooks.inc({ provider: 'gocardless', outcome });
    annotateRequest(c, {
      provider: 'gocardless',
      account,
      webhookId: accepted.webhookId,
      events: accepted.received,
      new: accepted.newReceiptIds.length,
      duplicates: accepted.duplicates,
      outcome,
    });
    return c.body(null, 204);
  };

  // Declared without a body schema: the signature is checked over the raw bytes first.
  app.openapi(defaultAccountRoute, receive as never);
  app.openapi(accountRoute, receive as never);
  return app;
}
