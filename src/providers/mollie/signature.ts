/**
 * Mollie next-gen webhook signatures: `X-Mollie-Signature` carries the lowercase hex
 * HMAC-SHA256 of the raw request body, keyed by the UTF-8 bytes of the signing secret,
 * optionally prefixed `sha256=`. Classic webhooks carry no signature at all.
 */
// Explicit imports: on Workers (nodejs_compat) Buffer is not guaranteed to be a global.
import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MOLLIE_SIGNATURE_HEADER = 'x-mollie-signature';
const PREFIX = 'sha256=';

export type MollieSignatureCheck = 'absent' | 'valid' | 'invalid';

function bytesOf(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

/** Lowercase hex HMAC-SHA256, the form Mollie sends. */
export function signMollieBody(body: Uint8Array | string, secret: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(bytesOf(body)).digest('hex');
}

/**
 * 'absent' when there is no header (a classic webhook), 'valid' when any secret
 * matches (rotation), 'invalid' otherwise. Case-sensitive like Mollie's own SDKs:
 * an upper-case hex digest is invalid. Empty secrets are ignored, so a blank
 * configuration value can never make an unsigned-by-us body pass.
 */
export function verifyMollieSignature(
  rawBody: Uint8Array | string,
  header: string | undefined | null,
  secrets: readonly string[],
): MollieSignatureCheck {
  const trimmed = header?.trim();
  if (!trimmed) return 'absent';
  const provided = Buffer.from(trimmed.startsWith(PREFIX) ? trimmed.slice(PREFIX.length) : trimmed, 'utf8');
  const body = bytesOf(rawBody);
  for (const secret of secrets) {
    if (!secret) continue;
    const expected = Buffer.from(signMollieBody(body, secret), 'utf8');
    // timingSafeEqual throws on a length mismatch; the length of a hex digest is no secret.
    if (provided.length === expected.length && timingSafeEqual(provided, expected)) return 'valid';
  }
  return 'invalid';
}
