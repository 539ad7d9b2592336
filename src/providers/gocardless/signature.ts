/**
 * GoCardless webhook signatures (docs/providers.md#gocardless-signature-responses-ordering):
 * `Webhook-Signature` is the lowercase hex HMAC-SHA256 of the raw request body, keyed by
 * the endpoint secret used as a UTF-8 string. There is no timestamp, so there is no
 * replay window to check; replays are harmless because events are de-duplicated by id.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = 'absent' | 'valid' | 'invalid';

/** 32 bytes of HMAC-SHA256 as hex. Upper case is accepted, as gc-node's Buffer.from(hex) does. */
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

function hmac(body: Uint8Array | string, secret: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

/** The `Webhook-Signature` value GoCardless would send for these exact bytes. */
export function signGoCardlessBody(body: Uint8Array | string, secret: string): string {
  return hmac(body, secret).toString('hex');
}

/**
 * Checks the header against every configured secret, so a secret can be rotated
 * without dropping webhooks signed with the old one. 'absent' lets the caller tell
 * a misconfigured sender (no header) from a forged or corrupted request.
 *
 * Empty secrets are skipped: an HMAC keyed with "" is one anybody can compute.
 */
export function verifyGoCardlessSignature(
  rawBody: Uint8Array | string,
  header: string | null | undefined,
  secrets: readonly string[],
): SignatureCheck {
  if (header === null || header === undefined) return 'absent';
  const candidate = header.trim();
  if (candidate === '') return 'absent';
  // Buffer.from(hex) silently stops at the first non-hex character, so the shape
  // is checked first; a truncated or padded header must not compare as a prefix.
  if (!HEX_SHA256.test(candidate)) return 'invalid';
  const received = Buffer.from(candidate, 'hex');

  let valid = false;
  for (const secret of secrets) {
    if (secret === '') continue;
    const expected = hmac(rawBody, secret);
    // Every secret is tried, even after a match, so timing does not reveal which
    // secret (old or new) signed the body.
    if (expected.length === received.length && timingSafeEqual(expected, received)) valid = true;
  }
  return valid ? 'valid' : 'invalid';
}
