/**
 * The HTTP request a unit becomes: the provider's route on the gateway, the headers
 * the provider sends, and a signature recomputed with the local secret over the exact
 * bytes sent (bodies are rewritten by fresh ids and reordering, so an old signature
 * would not match anyway).
 */
import { errorMessage } from '../../primitives/error-message.js';
import { signGoCardlessBody } from '../../providers/gocardless/signature.js';
import { signMollieBody } from '../../providers/mollie/signature.js';
import { GOCARDLESS_SANDBOX_ORIGIN, GOCARDLESS_WEBHOOK_USER_AGENT } from '../../sandbox/gocardless-webhook-sender.js';
import { MOLLIE_WEBHOOK_USER_AGENT } from '../../sandbox/mollie-webhook-sender.js';
import type { ReplayUnit } from './records.js';

export interface ReplaySecrets {
  mollie: string | null;
  gocardless: string | null;
}

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export class MissingSecretError extends Error {
  override readonly name = 'MissingSecretError';
}

function route(gatewayUrl: string, provider: string, account: string): string {
  const base = gatewayUrl.replace(/\/+$/, '');
  return account === 'default' ? `${base}/webhooks/${provider}` : `${base}/webhooks/${provider}/${encodeURIComponent(account)}`;
}

export function webhookRequest(unit: ReplayUnit, gatewayUrl: string, secrets: ReplaySecrets): WebhookRequest {
  const url = route(gatewayUrl, unit.provider, unit.account);
  if (unit.provider === 'mollie') {
    const headers: Record<string, string> = {
      'User-Agent': unit.headers['user-agent'] ?? MOLLIE_WEBHOOK_USER_AGENT,
      'Content-Type': unit.headers['content-type'] ?? (unit.kind === 'classic' ? 'application/x-www-form-urlencoded' : 'application/json'),
      Accept: '*/*',
    };
    if (unit.kind === 'event') {
      if (!secrets.mollie) throw new MissingSecretError(`${unit.source}: a Mollie next-gen event must be signed: pass --mollie-secret (or MOLLIE_WEBHOOK_SECRETS)`);
      headers['X-Mollie-Signature'] = signMollieBody(unit.body, secrets.mollie);
    }
    return { url, headers, body: unit.body };
  }
  if (!secrets.gocardless) throw new MissingSecretError(`${unit.source}: GoCardless batches must be signed: pass --gocardless-secret (or GOCARDLESS_WEBHOOK_SECRETS)`);
  return {
    url,
    headers: {
      Origin: unit.headers.origin ?? GOCARDLESS_SANDBOX_ORIGIN,
      'User-Agent': unit.headers['user-agent'] ?? GOCARDLESS_WEBHOOK_USER_AGENT,
      'Content-Type': 'application/json',
      'Webhook-Signature': signGoCardlessBody(unit.body, secrets.gocardless),
    },
    body: unit.body,
  };
}

export interface HttpOutcome {
  /** HTTP status, or null when no answer came (refused, reset, timeout). */
  status: number | null;
  error?: string;
  ms: number;
  startedAt: number;
}

/** One request; never throws. The body is read so the connection is reused. */
export async function send(url: string, init: RequestInit & { timeoutMs?: number }): Promise<HttpOutcome> {
  const startedAt = Date.now();
  try {
    const response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(init.timeoutMs ?? 30_000) });
    await response.arrayBuffer().catch(() => undefined);
    return { status: response.status, ms: Date.now() - startedAt, startedAt };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { status: null, error: cause ?? (errorMessage(error)), ms: Date.now() - startedAt, startedAt };
  }
}
