/**
 * GoCardless's wire format for answers: JSON bodies and its error envelope.
 */
import { randomBytes } from 'node:crypto';

export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

export const newRequestId = () => randomBytes(12).toString('hex').toUpperCase();

/**
 * GoCardless's error envelope (docs/providers.md#gocardless-api-polling-and-recovery;
 * gocardless-nodejs issue #196 for missing_version_header).
 */
export const gcError = (status: number, type: string, reason: string, message: string, extra: Record<string, unknown> = {}) =>
  json(status, {
    error: {
      message,
      documentation_url: `https://developer.gocardless.com/api-reference#${reason}`,
      type,
      request_id: newRequestId(),
      code: status,
      errors: [{ reason, message, ...extra }],
    },
  });

export const httpDate = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000).toUTCString();
