/**
 * A stored account's connection health. A refusal (401/403) on any call made with its
 * credentials (the check, a fetch, a poll, the sweep, the recovery) breaks it at once; a
 * working call after that mends it. A provider outage (5xx, timeout) is neither.
 *
 * The env-configured `default` accounts are not rows: reports about them change nothing here.
 */
import type { DbOrTx } from '../db/client.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderName } from '../providers/types.js';
import { getAccount, updateAccount } from './store.js';

export interface AccountHealthDeps {
  db: DbOrTx;
  logger: Logger;
}

/** The provider refused the account's credentials (401/403, or an OAuth refresh refused). */
export async function reportAccountRefused(deps: AccountHealthDeps, provider: ProviderName, name: string, reason: string, detail: string): Promise<void> {
  const account = await getAccount(deps.db, provider, name);
  if (!account || account.status !== 'active') return;
  await updateAccount(deps.db, provider, name, { status: 'broken', brokenSince: new Date(), lastError: `${reason}: ${detail}` });
  deps.logger.error({ provider, account: name, reason }, 'account broken: the provider refused its credentials');
}

/** A call made with the account's credentials worked. */
export async function reportAccountWorking(deps: AccountHealthDeps, provider: ProviderName, name: string): Promise<void> {
  const account = await getAccount(deps.db, provider, name);
  if (!account || account.status !== 'broken') return;
  await updateAccount(deps.db, provider, name, { status: 'active', brokenSince: null, lastError: null });
}
