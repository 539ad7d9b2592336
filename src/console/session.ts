import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';

/**
 * The operator console's sign-in: a cookie that proves the holder once typed ADMIN_TOKEN,
 * without being ADMIN_TOKEN. The value is `<expiry>.<HMAC-SHA256(ADMIN_TOKEN, "console-session:<expiry>")>`,
 * so a leaked cookie is not the bearer token of /v1, it stops working at its expiry, and
 * rotating ADMIN_TOKEN signs every console session out. Stateless: nothing is stored.
 */

export const SESSION_COOKIE = 'gw_console';
export const SESSION_TTL_SECONDS = 12 * 60 * 60;
/** Every console path is under this one; the cookie is sent nowhere else. */
export const CONSOLE_PATH = '/console';

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time at any length: both sides are hashed to 32 bytes first. */
export function tokenMatches(candidate: string, token: string): boolean {
  return timingSafeEqual(sha256(candidate), sha256(token));
}

function sessionMac(token: string, expiresAt: number): Buffer {
  return createHmac('sha256', token).update(`console-session:${expiresAt}`).digest();
}

export function createSessionValue(token: string, now: Date, ttlSeconds = SESSION_TTL_SECONDS): string {
  const expiresAt = Math.floor(now.getTime() / 1000) + ttlSeconds;
  return `${expiresAt}.${sessionMac(token, expiresAt).toString('base64url')}`;
}

const SESSION_VALUE = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export function verifySessionValue(value: string | undefined, token: string, now: Date): boolean {
  const match = value ? SESSION_VALUE.exec(value) : null;
  if (!match) return false;
  const expiresAt = Number(match[1]);
  // Compare the text, not the decoded bytes: 43 base64url characters carry two spare bits, so
  // four spellings decode to the same MAC, and only the one we issued is a session.
  const given = Buffer.from(match[2]!, 'latin1');
  const expected = Buffer.from(sessionMac(token, expiresAt).toString('base64url'), 'latin1');
  // Compare the MAC before looking at the expiry, so the two refusals take the same time.
  const authentic = given.length === expected.length && timingSafeEqual(given, expected);
  return authentic && expiresAt > now.getTime() / 1000;
}

/**
 * Whether the browser reached us over https: the URL itself (Workers, a TLS-terminating
 * Node server) or the X-Forwarded-Proto a TLS-terminating proxy sets. Trusting the
 * header can only add the Secure flag, which a plain-http client then never sends back.
 */
export function isHttps(c: Context): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  return c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

/**
 * CSRF check for every console POST, on top of the SameSite=Strict cookie: the browser's
 * Origin header must name this host. Browsers always send Origin on a form POST and a
 * page on another site cannot forge it; a request without one (or with `null`) is refused.
 * A proxy that rewrites Host may pass the public one in X-Forwarded-Host.
 */
export function isSameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  if (!origin || origin === 'null' || !URL.canParse(origin)) return false;
  const originHost = new URL(origin).host.toLowerCase();
  const hosts = [new URL(c.req.url).host, c.req.header('x-forwarded-host')?.split(',')[0]?.trim()]
    .filter((host): host is string => Boolean(host))
    .map((host) => host.toLowerCase());
  return hosts.includes(originHost);
}

const SAFE_NEXT = /^\/console(?:\/[A-Za-z0-9_.\-/]*)?(?:\?[A-Za-z0-9_.\-=&%+]*)?$/;

/** Where to go after signing in: only a console path of this site (no open redirect). */
export function safeNextPath(value: string | undefined | null): string {
  if (!value || !SAFE_NEXT.test(value) || value.includes('//') || value.includes('..') || value.startsWith('/console/sign-')) return CONSOLE_PATH;
  return value;
}
