/**
 * Reading accounts for the API: the env-configured `default` accounts first, then the
 * stored ones by id. A page position is how many env accounts were given and the last
 * row id, so pages stay stable while accounts are created.
 */
import type { Env } from '../config/env.js';
import type { DbOrTx } from '../db/client.js';
import type { ProviderName } from '../providers/types.js';
import { ENV_ACCOUNT_NAME } from './accounts.js';
import { getAccount, listAccountRows, type AccountStatus } from './store.js';
import { envAccountsJson, toAccountJson, type AccountJson } from './view.js';

type EnvAccounts = Pick<Env, 'MOLLIE_API_KEY' | 'GOCARDLESS_ACCESS_TOKEN'>;

export interface PagePosition {
  /** Env accounts already given. */
  envGiven: number;
  /** The last row id given. */
  afterId: number;
}

export interface ListAccountsInput {
  provider?: ProviderName;
  status?: AccountStatus;
  limit: number;
  from?: PagePosition;
}

export async function listAccounts(db: DbOrTx, env: EnvAccounts, origin: string, input: ListAccountsInput): Promise<{ data: AccountJson[]; next: PagePosition | null }> {
  const from = input.from ?? { envGiven: 0, afterId: 0 };
  const envAccounts = envAccountsJson(env, origin).filter(
    (account) => (!input.provider || account.provider === input.provider) && (!input.status || account.status === input.status),
  );
  const envPage = envAccounts.slice(from.envGiven, from.envGiven + input.limit);
  const envGiven = from.envGiven + envPage.length;
  const room = input.limit - envPage.length;
  // One row more than there is room for tells whether another page follows.
  const rows = await listAccountRows(db, { provider: input.provider, status: input.status, afterId: from.afterId, limit: room + 1 });
  const rowPage = rows.slice(0, room);
  const more = envGiven < envAccounts.length || rows.length > room;
  return {
    data: [...envPage, ...rowPage.map((row) => toAccountJson(row, origin))],
    next: more ? { envGiven, afterId: rowPage.at(-1)?.id ?? from.afterId } : null,
  };
}

/** One account by provider and name, env-configured or stored; undefined when there is none. */
export async function findAccount(db: DbOrTx, env: EnvAccounts, origin: string, provider: ProviderName, name: string): Promise<AccountJson | undefined> {
  if (name === ENV_ACCOUNT_NAME) return envAccountsJson(env, origin).find((account) => account.provider === provider);
  const row = await getAccount(db, provider, name);
  return row ? toAccountJson(row, origin) : undefined;
}
