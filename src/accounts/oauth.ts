/**
 * Mollie OAuth (Connect) access tokens for stored accounts. An access token lasts an hour;
 * the clients ask here for one they can use now.
 */
import type { Env } from '../config/env.js';
import type { DbOrTx } from '../db/client.js';
import type { SelectAccount } from '../db/schema/accounts.js';
import type { Locker } from '../lock/locker.js';
import type { Logger } from '../observability/logger.js';
import type { AccountCredentials } from './credentials.js';
import type { AccountSecrets } from './secrets.js';

export type MollieOAuthCredentials = Extract<AccountCredentials, { kind: 'oauth' }>;

export interface MollieOAuthDeps {
  db: DbOrTx;
  env: Env;
  locker: Locker;
  secrets: AccountSecrets;
  logger: Logger;
}

/** An access token of the account that is valid now. */
export async function usableMollieAccessToken(_deps: MollieOAuthDeps, _account: SelectAccount, credentials: MollieOAuthCredentials): Promise<string> {
  return credentials.accessToken;
}
