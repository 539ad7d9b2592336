/**
 * The gateway's Mollie OAuth app (Mollie Connect): its client credentials, where the
 * authorize and token endpoints are, and the one call to the token endpoint
 * (`POST /oauth2/tokens`, HTTP Basic with the client id and secret, form-encoded
 * `grant_type=authorization_code` or `refresh_token`).
 *
 * Errors follow OAuth 2.0 (RFC 6749 §5.2): `{error, error_description}`; `invalid_grant`
 * means the code or refresh token is unknown, used or revoked (the merchant removed the app).
 */
import type { Env } from '../config/env.js';

/** What the gateway reads: payments and their refunds, and who the merchant is. */
export const MOLLIE_OAUTH_SCOPES = ['payments.read', 'refunds.read', 'organizations.read', 'profiles.read'] as const;

const MOLLIE_AUTHORIZE_URL = 'https://my.mollie.com/oauth2/authorize';
const MOLLIE_TOKENS_URL = 'https://api.mollie.com/oauth2/tokens';
const TOKEN_CALL_TIMEOUT_MS = 10_000;

export interface MollieOAuthApp {
  clientId: string;
  clientSecret: string;
  authorizeUrl: string;
  tokensUrl: string;
  /** Null: derived from the connect request's origin. */
  redirectUri: string | null;
}

export const MOLLIE_OAUTH_VARIABLES = 'MOLLIE_OAUTH_CLIENT_ID and MOLLIE_OAUTH_CLIENT_SECRET';

export function mollieOAuthAppFromEnv(
  env: Pick<Env, 'MOLLIE_OAUTH_CLIENT_ID' | 'MOLLIE_OAUTH_CLIENT_SECRET' | 'MOLLIE_OAUTH_URL' | 'MOLLIE_OAUTH_REDIRECT_URI'>,
): MollieOAuthApp | null {
  if (!env.MOLLIE_OAUTH_CLIENT_ID || !env.MOLLIE_OAUTH_CLIENT_SECRET) return null;
  const base = env.MOLLIE_OAUTH_URL?.replace(/\/+$/, '');
  return {
    clientId: env.MOLLIE_OAUTH_CLIENT_ID,
    clientSecret: env.MOLLIE_OAUTH_CLIENT_SECRET,
    authorizeUrl: base ? `${base}/oauth2/authorize` : MOLLIE_AUTHORIZE_URL,
    tokensUrl: base ? `${base}/oauth2/tokens` : MOLLIE_TOKENS_URL,
    redirectUri: env.MOLLIE_OAUTH_REDIRECT_URI ?? null,
  };
}

/** The page the merchant opens to grant the app access. */
export function mollieAuthorizeUrl(app: MollieOAuthApp, input: { redirectUri: string; state: string }): string {
  const url = new URL(app.authorizeUrl);
  url.searchParams.set('client_id', app.clientId);
  url.searchParams.set('redirect_uri', input.redirectUri);
  url.searchParams.set('state', input.state);
  url.searchParams.set('scope', MOLLIE_OAUTH_SCOPES.join(' '));
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('approval_prompt', 'auto');
  return url.toString();
}

export interface MollieTokens {
  accessToken: string;
  refreshToken: string;
  /** ISO 8601. */
  expiresAt: string;
}

export type MollieTokenGrant = { grantType: 'authorization_code'; code: string; redirectUri: string } | { grantType: 'refresh_token'; refreshToken: string };

export type MollieTokenErrorCode =
  /** The code or refresh token is unknown, used, expired or revoked. */
  | 'invalid_grant'
  /** The app's own credentials are refused: MOLLIE_OAUTH_CLIENT_ID/SECRET are wrong. */
  | 'invalid_client'
  /** Any other refusal of the request (4xx). */
  | 'refused'
  /** 5xx, 429, timeout, network: try again. */
  | 'unavailable'
  | 'bad_response';

export class MollieTokenError extends Error {
  override readonly name = 'MollieTokenError';
  constructor(
    readonly code: MollieTokenErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function basicAuth(app: MollieOAuthApp): string {
  // btoa, not Buffer: Workers have no Buffer without the Node compatibility flag.
  return `Basic ${btoa(`${app.clientId}:${app.clientSecret}`)}`;
}

/** The OAuth error's words, or Mollie's API error shape ({title, detail}) if that is what came. */
function describeRefusal(status: number, body: unknown): { error: string; message: string } {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const error = typeof record.error === 'string' ? record.error : '';
  const description = typeof record.error_description === 'string' ? record.error_description : typeof record.detail === 'string' ? record.detail : '';
  return { error, message: [error, description].filter(Boolean).join(': ') || `HTTP ${status}` };
}

/**
 * Exchanges a grant for tokens. Throws MollieTokenError: `invalid_grant` when the grant is
 * refused, `unavailable` (retryable) when the endpoint could not answer.
 */
export async function requestMollieTokens(app: MollieOAuthApp, grant: MollieTokenGrant, now: () => number = Date.now): Promise<MollieTokens> {
  const form = new URLSearchParams(
    grant.grantType === 'authorization_code'
      ? { grant_type: 'authorization_code', code: grant.code, redirect_uri: grant.redirectUri }
      : { grant_type: 'refresh_token', refresh_token: grant.refreshToken },
  );
  let response: Response;
  try {
    response = await fetch(app.tokensUrl, {
      method: 'POST',
      headers: { Authorization: basicAuth(app), 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(TOKEN_CALL_TIMEOUT_MS),
    });
  } catch (error) {
    throw new MollieTokenError('unavailable', `Mollie's token endpoint could not be reached: ${(error as Error).message}`, true, { cause: error });
  }
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.status >= 500 || response.status === 429) {
    throw new MollieTokenError('unavailable', `Mollie's token endpoint answered ${response.status}`, true);
  }
  if (!response.ok) {
    const refusal = describeRefusal(response.status, body);
    const code: MollieTokenErrorCode = refusal.error === 'invalid_grant' ? 'invalid_grant' : refusal.error === 'invalid_client' || response.status === 401 ? 'invalid_client' : 'refused';
    throw new MollieTokenError(code, refusal.message, false);
  }
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const accessToken = record.access_token;
  const expiresIn = record.expires_in;
  const refreshToken = typeof record.refresh_token === 'string' ? record.refresh_token : grant.grantType === 'refresh_token' ? grant.refreshToken : undefined;
  if (typeof accessToken !== 'string' || !accessToken || typeof expiresIn !== 'number' || !(expiresIn > 0) || !refreshToken) {
    throw new MollieTokenError('bad_response', "Mollie's token endpoint answered without access_token, refresh_token and expires_in", true);
  }
  return { accessToken, refreshToken, expiresAt: new Date(now() + expiresIn * 1000).toISOString() };
}
