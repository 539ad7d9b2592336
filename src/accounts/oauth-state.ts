/**
 * The `state` of a Mollie OAuth authorization: what the callback needs (the account name
 * and the redirect URI the code was issued for), with an expiry, signed with HMAC-SHA256
 * under the app's client secret. The callback is public (the merchant's browser brings
 * it), so this signature is what authenticates it: a forged, altered or expired state is
 * refused before any code is exchanged.
 *
 * WebCrypto only (Node 20 and Workers both have it).
 */

/** How long the merchant has to approve the app once the URL is handed out. */
export const OAUTH_STATE_TTL_MS = 10 * 60_000;

// Keeps these signatures from ever matching a MAC the same secret makes elsewhere.
const PURPOSE = 'gateway/mollie-oauth-state/v1';

export interface OAuthStatePayload {
  /** The account name to create. */
  name: string;
  /** The redirect URI sent to the authorize step; the token exchange must send the same. */
  redirectUri: string;
  /** Epoch ms. */
  expiresAt: number;
}

export class OAuthStateError extends Error {
  override readonly name = 'OAuthStateError';
  constructor(readonly reason: 'malformed' | 'forged' | 'expired', message: string) {
    super(message);
  }
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return globalThis.crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

function signedBytes(body: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${PURPOSE}.${body}`);
}

export async function signOAuthState(secret: string, payload: OAuthStatePayload): Promise<string> {
  // The nonce makes every state distinct, even two asked for the same name in the same ms.
  const nonce = toBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(12)));
  const body = toBase64Url(new TextEncoder().encode(JSON.stringify({ n: payload.name, r: payload.redirectUri, e: payload.expiresAt, x: nonce })));
  const mac = new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', await hmacKey(secret), signedBytes(body)));
  return `${body}.${toBase64Url(mac)}`;
}

/** The payload of a state this gateway signed and that has not expired; OAuthStateError otherwise. */
export async function verifyOAuthState(secret: string, state: string, now: number = Date.now()): Promise<OAuthStatePayload> {
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(state);
  if (!match) throw new OAuthStateError('malformed', 'state is not one this gateway issued (malformed)');
  const [, body, mac] = match as unknown as [string, string, string];
  let macBytes: Uint8Array<ArrayBuffer>;
  try {
    macBytes = fromBase64Url(mac);
  } catch {
    throw new OAuthStateError('malformed', 'state is not one this gateway issued (malformed)');
  }
  // subtle.verify compares in constant time.
  const valid = await globalThis.crypto.subtle.verify('HMAC', await hmacKey(secret), macBytes, signedBytes(body));
  if (!valid) throw new OAuthStateError('forged', 'state signature does not match: it was not issued by this gateway or was altered');
  let decoded: { n?: unknown; r?: unknown; e?: unknown };
  try {
    decoded = JSON.parse(new TextDecoder().decode(fromBase64Url(body))) as typeof decoded;
  } catch {
    throw new OAuthStateError('malformed', 'state payload does not parse');
  }
  if (typeof decoded.n !== 'string' || typeof decoded.r !== 'string' || typeof decoded.e !== 'number') {
    throw new OAuthStateError('malformed', 'state payload is incomplete');
  }
  if (decoded.e <= now) {
    throw new OAuthStateError('expired', `state expired at ${new Date(decoded.e).toISOString()}: ask GET /v1/accounts/mollie/connect for a new authorize URL`);
  }
  return { name: decoded.n, redirectUri: decoded.r, expiresAt: decoded.e };
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}
