/**
 * Onboarding a merchant with Mollie OAuth (Connect): hand out the authorize URL with a
 * signed state, then, when Mollie sends the merchant back with a code, exchange it for
 * tokens and create the account through createAccount, so it is checked and idempotent
 * per organization like every other account.
 */
import { AccountError, createAccount, ENV_ACCOUNT_NAME, patchAccount, type AccountDeps, type CreateAccountResult } from './accounts.js';
import { MOLLIE_OAUTH_VARIABLES, MollieTokenError, mollieAuthorizeUrl, requestMollieTokens, type MollieOAuthApp, type MollieTokens } from './mollie-oauth-app.js';
import { OAUTH_STATE_TTL_MS, signOAuthState, verifyOAuthState } from './oauth-state.js';

/** Where Mollie sends the merchant back, under the gateway's own origin. */
export const MOLLIE_CONNECT_CALLBACK_PATH = '/v1/accounts/mollie/connect/callback';

export class MollieConnectError extends Error {
  override readonly name = 'MollieConnectError';
  constructor(
    readonly code: 'oauth_not_configured' | 'invalid_state' | 'oauth_client_refused',
    message: string,
  ) {
    super(message);
  }
}

export interface MollieConnectDeps extends AccountDeps {
  /** Null when MOLLIE_OAUTH_CLIENT_ID/SECRET are unset. */
  oauth: MollieOAuthApp | null;
}

function requireApp(deps: MollieConnectDeps): MollieOAuthApp {
  if (!deps.oauth) {
    throw new MollieConnectError('oauth_not_configured', `Mollie OAuth is not configured: set ${MOLLIE_OAUTH_VARIABLES} (the Mollie app's credentials; MOLLIE_OAUTH_URL and MOLLIE_OAUTH_REDIRECT_URI are optional)`);
  }
  return deps.oauth;
}

export interface MollieConnectStart {
  authorizeUrl: string;
  state: string;
  expiresAt: string;
  redirectUri: string;
}

/** The URL to send the merchant to, for an account to be called `name`. */
export async function startMollieConnect(deps: MollieConnectDeps, input: { name: string; origin: string; now?: number }): Promise<MollieConnectStart> {
  const app = requireApp(deps);
  if (!deps.secrets) {
    throw new AccountError('secrets_not_configured', 'ACCOUNT_SECRETS_KEY is not set: the tokens could not be stored (generate one with: openssl rand -base64 32)');
  }
  if (input.name === ENV_ACCOUNT_NAME) {
    throw new AccountError('name_taken', `"${ENV_ACCOUNT_NAME}" is the name of the account configured by the environment; choose another name`);
  }
  const redirectUri = app.redirectUri ?? `${input.origin}${MOLLIE_CONNECT_CALLBACK_PATH}`;
  const expiresAt = (input.now ?? Date.now()) + OAUTH_STATE_TTL_MS;
  const state = await signOAuthState(app.clientSecret, { name: input.name, redirectUri, expiresAt });
  return { authorizeUrl: mollieAuthorizeUrl(app, { redirectUri, state }), state, expiresAt: new Date(expiresAt).toISOString(), redirectUri };
}

export interface MollieConnectCallback {
  state: string;
  code?: string;
  /** Mollie's `error` when the merchant did not approve (e.g. access_denied). */
  error?: string;
  errorDescription?: string;
}

async function exchangeCode(app: MollieOAuthApp, code: string, redirectUri: string): Promise<MollieTokens> {
  try {
    return await requestMollieTokens(app, { grantType: 'authorization_code', code, redirectUri });
  } catch (error) {
    if (!(error instanceof MollieTokenError)) throw error;
    switch (error.code) {
      case 'invalid_grant':
      case 'refused':
        throw new AccountError('credentials_refused', `mollie refused the authorization code: ${error.message}`);
      case 'invalid_client':
        throw new MollieConnectError('oauth_client_refused', `mollie refused the app's credentials (${MOLLIE_OAUTH_VARIABLES}): ${error.message}`);
      case 'unavailable':
        throw new AccountError('provider_unavailable', `mollie could not exchange the authorization code: ${error.message}`, true);
      case 'bad_response':
        throw new AccountError('provider_bad_response', `mollie answered the code exchange unexpectedly: ${error.message}`, true);
      default: {
        const unknown: never = error.code;
        throw new Error(`unhandled token error ${String(unknown)}`, { cause: error });
      }
    }
  }
}

/**
 * The callback: state checked first (nothing is exchanged for a forged or expired one),
 * then the code exchanged, then the account created as POST /v1/accounts would. When the
 * organization already has an OAuth account (a merchant connecting again, e.g. after
 * revoking the app), its tokens are replaced with the new ones, which mends it if broken.
 */
export async function finishMollieConnect(deps: MollieConnectDeps, input: MollieConnectCallback): Promise<CreateAccountResult> {
  const app = requireApp(deps);
  const state = await verifyOAuthState(app.clientSecret, input.state).catch((error: Error) => {
    throw new MollieConnectError('invalid_state', error.message);
  });
  if (input.error) {
    throw new AccountError('credentials_refused', `mollie did not authorize the app: ${[input.error, input.errorDescription].filter(Boolean).join(': ')}`);
  }
  if (!input.code) throw new MollieConnectError('invalid_state', 'the callback has no code (Mollie sends ?code=...&state=...)');
  const tokens = await exchangeCode(app, input.code, state.redirectUri);
  const credentials = { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt: tokens.expiresAt };
  const result = await createAccount(deps, { provider: 'mollie', name: state.name, credentials });
  if (result.created || result.account.credentialsKind !== 'oauth') return result;
  const account = await patchAccount(deps, 'mollie', result.account.name, { credentials });
  return { created: false, account };
}
