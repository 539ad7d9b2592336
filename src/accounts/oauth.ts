/**
 * Mollie OAuth (Connect) access tokens for stored accounts. An access token lasts an hour;
 * the clients ask here for one they can use now.
 *
 * A token that expires within MOLLIE_OAUTH_REFRESH_MARGIN_MS is refreshed ahead of expiry,
 * once per expiry across every process:
 * - in this process, concurrent callers share one refresh (one promise per account);
 * - across processes, the refresh runs under the gateway's lock on the account, and first
 *   re-reads the row: a process that waited for the lock finds the token another one
 *   stored and uses it;
 * - the new tokens are stored with an update guarded by the ciphertext that was read, so
 *   a refresh racing a PATCH (or a refresh made without the lock, when Redis is down)
 *   never overwrites newer credentials: the loser re-reads.
 * A fresh token is kept in memory until it nears expiry, so callers still holding the
 * old credentials do not go to the database on every call.
 *
 * `invalid_grant` (the merchant revoked the app) breaks the account; a token endpoint that
 * cannot answer is an outage, not a broken account, and a still-valid token is kept in use.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { Env } from '../config/env.js';
import type { DbOrTx } from '../db/client.js';
import { accounts, type SelectAccount } from '../db/schema/accounts.js';
import { LockBusyError, LockUnavailableError, type Locker } from '../lock/locker.js';
import type { Logger } from '../observability/logger.js';
import { errorMessage } from '../primitives/error-message.js';
import { ProviderError } from '../providers/types.js';
import { credentialsContext, openCredentials } from './accounts.js';
import { last4, type AccountCredentials } from './credentials.js';
import { reportAccountRefused } from './health.js';
import { MOLLIE_OAUTH_VARIABLES, MollieTokenError, mollieOAuthAppFromEnv, requestMollieTokens, type MollieOAuthApp } from './mollie-oauth-app.js';
import type { AccountSecrets } from './secrets.js';
import { credentialsFingerprint, getAccount } from './store.js';

export type MollieOAuthCredentials = Extract<AccountCredentials, { kind: 'oauth' }>;

export interface MollieOAuthDeps {
  db: DbOrTx;
  env: Env;
  locker: Locker;
  secrets: AccountSecrets;
  logger: Logger;
}

/** How long a process waits for another one's refresh before answering a retryable error. */
const REFRESH_LOCK_WAIT_MS = 15_000;
/** Without the lock, how long a refused refresh waits for a concurrent one to store its tokens. */
const UNLOCKED_SETTLE_MS = 1000;

interface CachedToken {
  accessToken: string;
  expiresAtMs: number;
}

interface TokenState {
  /** The freshest token this process knows per account id, until it nears expiry. */
  tokens: Map<string, CachedToken>;
  /** The refresh under way in this process per account. */
  flights: Map<string, Promise<string>>;
  /**
   * Per account, the sealed credentials whose refresh Mollie refused (invalid_grant): asked
   * again with the same ones, the answer is the same, so it is given without calling Mollie.
   * New credentials (a reconnect, a PATCH) have another ciphertext and are tried.
   */
  refused: Map<string, string>;
}

// Per composition root (the deps' database handle), not per module: two gateways built in
// one process (tests) keep separate caches, and it goes away with its deps.
const tokenStates = new WeakMap<object, TokenState>();

function tokenState(deps: MollieOAuthDeps): TokenState {
  let state = tokenStates.get(deps.db);
  if (!state) {
    state = { tokens: new Map(), flights: new Map(), refused: new Map() };
    tokenStates.set(deps.db, state);
  }
  return state;
}

export const oauthLockKey = (account: Pick<SelectAccount, 'provider' | 'name'>) => `account-oauth:${account.provider}:${account.name}`;

const expiresAtMs = (credentials: MollieOAuthCredentials) => Date.parse(credentials.expiresAt);

/** The row's id with its creation time: a row id reused (a truncated table) is another account. */
const cacheKey = (account: SelectAccount) => `${account.id}@${account.createdAt.getTime()}`;

/** An access token of the account that is valid now. */
export async function usableMollieAccessToken(deps: MollieOAuthDeps, account: SelectAccount, credentials: MollieOAuthCredentials): Promise<string> {
  const margin = deps.env.MOLLIE_OAUTH_REFRESH_MARGIN_MS;
  const now = Date.now();
  if (expiresAtMs(credentials) - now > margin) return credentials.accessToken;
  const state = tokenState(deps);
  const key = cacheKey(account);
  const cached = state.tokens.get(key);
  if (cached && cached.expiresAtMs - now > margin) return cached.accessToken;
  if (state.refused.get(key) === account.credentialsCiphertext) throw refusedError(account, 'the grant was refused before');
  let flight = state.flights.get(key);
  if (!flight) {
    flight = refreshShared(deps, account, credentials).finally(() => state.flights.delete(key));
    state.flights.set(key, flight);
  }
  return flight;
}

async function refreshShared(deps: MollieOAuthDeps, account: SelectAccount, credentials: MollieOAuthCredentials): Promise<string> {
  try {
    return await deps.locker.withLock(oauthLockKey(account), () => refreshUnderLock(deps, account, { locked: true }), { waitMs: REFRESH_LOCK_WAIT_MS });
  } catch (error) {
    if (error instanceof LockUnavailableError) {
      // No lock service: refresh anyway. The guarded update still keeps one stored winner;
      // only "once per expiry" is lost until the lock is back.
      deps.logger.warn({ provider: account.provider, account: account.name }, 'oauth refresh without the lock: lock service unreachable');
      return refreshUnderLock(deps, account, { locked: false });
    }
    if (error instanceof LockBusyError) {
      // Another process has been refreshing for a long time: whatever it stored, or the
      // token in hand while it is valid; else try again later.
      const stored = await readStored(deps, account);
      if (stored && expiresAtMs(stored.credentials) > Date.now()) return remember(deps, account, stored.credentials);
      if (expiresAtMs(credentials) > Date.now()) return credentials.accessToken;
      throw new ProviderError('mollie', 'unavailable', `the OAuth token of mollie account ${account.name} is being refreshed elsewhere; try again`, true);
    }
    throw error;
  }
}

interface StoredCredentials {
  row: SelectAccount;
  credentials: MollieOAuthCredentials;
}

async function readStored(deps: MollieOAuthDeps, account: SelectAccount): Promise<StoredCredentials | null> {
  const row = await getAccount(deps.db, 'mollie', account.name);
  // Gone, or a new account under the old name: not the tokens the caller asked about.
  if (!row || row.id !== account.id || row.credentialsKind !== 'oauth') return null;
  const credentials = await openCredentials(deps.secrets, row);
  if (credentials.kind !== 'oauth') return null;
  return { row, credentials };
}

function remember(deps: MollieOAuthDeps, account: SelectAccount, credentials: MollieOAuthCredentials): string {
  tokenState(deps).tokens.set(cacheKey(account), { accessToken: credentials.accessToken, expiresAtMs: expiresAtMs(credentials) });
  return credentials.accessToken;
}

function oauthApp(deps: MollieOAuthDeps): MollieOAuthApp | null {
  return mollieOAuthAppFromEnv(deps.env);
}

async function refreshUnderLock(deps: MollieOAuthDeps, account: SelectAccount, mode: { locked: boolean }): Promise<string> {
  const stored = await readStored(deps, account);
  if (!stored) {
    throw new ProviderError('mollie', 'unknown_account', `mollie account ${account.name} no longer holds OAuth credentials`, false);
  }
  const margin = deps.env.MOLLIE_OAUTH_REFRESH_MARGIN_MS;
  if (tokenState(deps).refused.get(cacheKey(account)) === stored.row.credentialsCiphertext) throw refusedError(account, 'the grant was refused before');
  // Another process refreshed while this one waited for the lock: use its token.
  if (expiresAtMs(stored.credentials) - Date.now() > margin) return remember(deps, account, stored.credentials);

  const app = oauthApp(deps);
  if (!app) {
    if (expiresAtMs(stored.credentials) > Date.now()) return stored.credentials.accessToken;
    throw new ProviderError('mollie', 'unavailable', `the OAuth token of mollie account ${account.name} expired and cannot be refreshed: set ${MOLLIE_OAUTH_VARIABLES}`, false);
  }

  let fresh: MollieOAuthCredentials;
  try {
    const tokens = await requestMollieTokens(app, { grantType: 'refresh_token', refreshToken: stored.credentials.refreshToken });
    fresh = { kind: 'oauth', ...tokens };
  } catch (error) {
    if (!(error instanceof MollieTokenError)) throw error;
    return refreshRefused(deps, account, stored, error, mode);
  }

  const sealed = await deps.secrets.seal(JSON.stringify(fresh), credentialsContext('mollie', account.name));
  // Guarded by the ciphertext read above: if anything replaced the credentials since (a
  // PATCH, a reconnect, a refresh made without the lock), theirs stand and this one's are dropped.
  const updated = await deps.db
    .update(accounts)
    .set({ credentialsKeyId: sealed.keyId, credentialsCiphertext: sealed.ciphertext, credentialsLast4: last4(fresh), updatedAt: sql`now()` })
    .where(and(eq(accounts.id, stored.row.id), eq(accounts.credentialsCiphertext, stored.row.credentialsCiphertext)))
    .returning({ id: accounts.id });
  if (updated.length === 0) {
    const newer = await readStored(deps, account);
    if (newer && expiresAtMs(newer.credentials) > Date.now()) return remember(deps, account, newer.credentials);
    throw new ProviderError('mollie', 'unavailable', `the OAuth credentials of mollie account ${account.name} changed during a refresh; try again`, true);
  }
  deps.logger.info({ provider: 'mollie', account: account.name, expiresAt: fresh.expiresAt }, 'oauth access token refreshed');
  return remember(deps, account, fresh);
}

function refusedError(account: SelectAccount, detail: string): ProviderError {
  return new ProviderError('mollie', 'unauthorized', `mollie refused the OAuth refresh of account ${account.name} (the merchant may have revoked the app; connect again): ${detail}`, false);
}

async function refreshRefused(deps: MollieOAuthDeps, account: SelectAccount, stored: StoredCredentials, error: MollieTokenError, mode: { locked: boolean }): Promise<string> {
  const stillValid = expiresAtMs(stored.credentials) > Date.now();
  switch (error.code) {
    case 'invalid_grant': {
      // A refresh made without the lock may have rotated the refresh token under this one:
      // only a refusal of the refresh token still stored means the grant is gone. Without
      // the lock, the other refresh may not have stored its tokens yet: give it a moment.
      if (!mode.locked) await new Promise((resolve) => setTimeout(resolve, UNLOCKED_SETTLE_MS));
      const now = await readStored(deps, account);
      if (now && now.row.credentialsCiphertext !== stored.row.credentialsCiphertext && expiresAtMs(now.credentials) > Date.now()) {
        return remember(deps, account, now.credentials);
      }
      await reportAccountRefused(deps, 'mollie', account.name, 'invalid_grant', error.message, credentialsFingerprint(stored.row));
      tokenState(deps).refused.set(cacheKey(account), stored.row.credentialsCiphertext);
      throw refusedError(account, error.message);
    }
    case 'unavailable':
    case 'bad_response':
      deps.logger.warn({ provider: 'mollie', account: account.name, err: errorMessage(error) }, 'oauth refresh failed; will try again');
      if (stillValid) return stored.credentials.accessToken;
      throw new ProviderError('mollie', 'unavailable', `mollie's token endpoint could not refresh account ${account.name}: ${error.message}`, true, undefined, { cause: error });
    case 'invalid_client':
    case 'refused':
      // The app's own credentials are wrong: every OAuth account would fail alike, so none is marked broken.
      deps.logger.error({ provider: 'mollie', account: account.name, err: errorMessage(error) }, `oauth refresh refused: check ${MOLLIE_OAUTH_VARIABLES}`);
      if (stillValid) return stored.credentials.accessToken;
      throw new ProviderError('mollie', 'unavailable', `mollie refused the gateway's OAuth app (${MOLLIE_OAUTH_VARIABLES}): ${error.message}`, false, undefined, { cause: error });
    default: {
      const unknown: never = error.code;
      throw new Error(`unhandled token error ${String(unknown)}`);
    }
  }
}
