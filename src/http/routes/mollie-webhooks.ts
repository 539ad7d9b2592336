/**
 * POST /webhooks/mollie and /webhooks/mollie/:account: classic `id=...` form posts and
 * signed next-gen JSON events on one route. Unauthenticated by design (Mollie's classic
 * webhooks carry no credentials); the body is only a hint, the fetch is the verification.
 *
 * verify → record the receipt (durable) → process inline with a deadline → answer 200.
 */
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { MOLLIE_SIGNATURE_HEADER, verifyMollieSignature } from '../../providers/mollie/signature.js';
import { idPrefixKind, parseMollieWebhook } from '../../providers/mollie/webhook.js';
import { receiptHandlers } from '../../webhooks/handlers.js';
import { newMollieReceipt, pendingReceipt, processReceiptsInline } from '../../webhooks/mollie-receipts.js';
import { recordReceipts } from '../../webhooks/receipts.js';
import { AppError, badRequest } from '../errors.js';
import { annotateRequest, type AppEnv } from '../middleware.js';
import { errorResponses, json, newApiRouter } from '../openapi.js';

const ACCOUNT = /^[A-Za-z0-9_-]{1,64}$/;
/** Kept with the receipt for replay and audit; nothing else (no cookies, no proxies' auth). */
const KEPT_HEADERS = ['content-type', 'user-agent', MOLLIE_SIGNATURE_HEADER] as const;

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
  // Each outcome is counted, and written into the request's one log line.
  const count = (c: Context<AppEnv>, outcome: string, fields: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info') => {
    deps.metrics.webhooks.inc({ provider: 'mollie', outcome });
    annotateRequest(c, { provider: 'mollie', outcome, ...fields }, level);
  };

  async function receive(c: Context<AppEnv>, account: string) {
    const provider = deps.providers.mollie;
    if (!provider) {
      count(c, 'not_configured');
      throw new AppError('provider_not_configured', 'Mollie is not configured on this gateway (set MOLLIE_API_KEY); nothing was stored');
    }
    if (!ACCOUNT.test(account) || !provider.hasAccount(account)) {
      count(c, 'unknown_account', { account: account.slice(0, 64) });
      throw new AppError('unknown_account', `no Mollie account named ${JSON.stringify(account)} is configured; nothing was stored`);
    }

    // The raw bytes, read once: the signature covers exactly these.
    const rawBody = new Uint8Array(await c.req.arrayBuffer());
    const secrets = deps.env.MOLLIE_WEBHOOK_SECRETS;
    const signature = verifyMollieSignature(rawBody, c.req.header(MOLLIE_SIGNATURE_HEADER), secrets);
    if (signature === 'invalid') {
      count(c, 'bad_signature', { account, secrets: secrets.length }, 'warn');
      throw new AppError(
        'invalid_signature',
        secrets.length === 0
          ? 'X-Mollie-Signature is present but no MOLLIE_WEBHOOK_SECRETS are configured to check it'
          : 'X-Mollie-Signature does not match the body under any configured secret',
      );
    }
    const webhook = parseMollieWebhook(c.req.header('content-type'), rawBody);
    if (webhook.kind === 'invalid') {
      count(c, 'invalid', { account });
      throw badRequest(`not a Mollie webhook: ${webhook.message}`);
    }
    if (webhook.kind === 'event' && signature === 'absent') {
      // An unsigned event could pre-empt a real event id in the de-duplication index.
      count(c, 'unsigned_event', { account });
      throw new AppError('signature_required', 'Mollie next-gen events must carry X-Mollie-Signature');
    }
    if (webhook.kind === 'classic' && idPrefixKind(webhook.id) === 'other') {
      // Never fetched (not a payment, refund or chargeback id), so nothing to keep: anyone
      // can post these, and storing each would let them fill the table. Counted only.
      count(c, 'not_fetchable', { account, resourceId: webhook.id });
      return c.json({ received: true }, 200);
    }

    const headers: Record<string, string> = { 'x-request-id': c.get('requestId') };
    for (const name of KEPT_HEADERS) {
      const value = c.req.header(name);
      if (value !== undefined) headers[name] = value;
    }
    const receipt = newMollieReceipt({ account, webhook, rawBody, headers, signature });
    const [recorded] = await recordReceipts(deps.db, [receipt]);
    const context = { provider: 'mollie', account, resourceId: receipt.resourceId, eventId: receipt.eventId, receiptId: recorded!.id };
    if (recorded!.duplicate) {
      count(c, 'duplicate', context);
      return c.json({ received: true }, 200);
    }

    // From here on the receipt is durable: whatever happens, Mollie gets its 200.
    const result = await processReceiptsInline(
      deps,
      receiptHandlers,
      [pendingReceipt(recorded!.id, receipt, recorded!.receivedAt)],
      deps.env.MOLLIE_WEBHOOK_DEADLINE_MS,
    );
    const outcome = result.settled
      ? (['processed', 'ignored', 'pending', 'failed'] as const).find((state) => result.counts[state] > 0) ?? 'pending'
      : result.reason;
    count(c, outcome, { ...context, ...(result.settled ? {} : { error: result.error }) });
    // The same answer for every outcome: an unknown id must not look different (Mollie's advice).
    return c.json({ received: true }, 200);
  }

  // Declared without a body schema: the signature is checked over the raw bytes first.
  app.openapi(defaultAccountRoute, ((c: Context<AppEnv>) => receive(c, 'default')) as never);
  app.openapi(accountRoute, ((c: Context<AppEnv>) => receive(c, c.req.param('account')!)) as never);
  return app;
}
