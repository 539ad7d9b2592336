/** Plain queries over the accounts table: `(db, params)`, no provider calls, no secrets in clear. */
import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { accounts, type InsertAccount, type SelectAccount } from '../db/schema/accounts.js';
import type { ProviderName } from '../providers/types.js';

/**
 * The channel every change of an account is announced on (payload `<provider>/<name>`),
 * by a trigger on the table (drizzle/0011_accounts_notify.sql), whatever statement made
 * it: each process's account registry (registry.ts) listens and drops its cached copy, so
 * a change made through one process is seen by every other within a second.
 */
export const ACCOUNTS_CHANNEL = 'gateway_accounts';

/**
 * This process's registries, told at once of the changes made through this store (they
 * may not be listening: embedded mode, Workers, or the LISTEN connection not up yet). A
 * forgotten entry is only read again, so telling a registry of another database in the
 * same process is harmless.
 */
const localListeners = new Set<(key: string) => void>();

/** Hears every account change this process makes through the store; returns the unsubscribe. */
export function onLocalAccountChange(listener: (key: string) => void): () => void {
  localListeners.add(listener);
  return () => localListeners.delete(listener);
}

/** Tells this process's registries; the trigger tells every process's, at commit. */
function announceLocally(provider: string, name: string): void {
  const key = `${provider}/${name}`;
  for (const listener of localListeners) listener(key);
}

/**
 * Names one sealing of an account's credentials: it changes whenever they are stored
 * again (a PATCH, an OAuth refresh, a key rotation; each sealing has a fresh IV). A
 * refusal is held against the account only while this is still what the row holds.
 */
export function credentialsFingerprint(row: Pick<SelectAccount, 'credentialsKeyId' | 'credentialsCiphertext'>): string {
  return `${row.credentialsKeyId}:${row.credentialsCiphertext.slice(0, 24)}`;
}

/** SQL: the account row holds the credentials `fingerprint` names (credentialsFingerprint, computed in the database). */
export function holdsCredentials(fingerprint: string): SQL {
  return sql`${accounts.credentialsKeyId} || ':' || left(${accounts.credentialsCiphertext}, 24) = ${fingerprint}`;
}

export const ACCOUNT_STATUSES = ['active', 'broken', 'disabled'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

export type NewAccountRow = Pick<
  InsertAccount,
  'provider' | 'name' | 'externalId' | 'credentialsKind' | 'credentialsLast4' | 'credentialsKeyId' | 'credentialsCiphertext' | 'webhookSecretsKeyId' | 'webhookSecretsCiphertext' | 'lastCheckedAt'
>;

export type InsertAccountOutcome =
  | { outcome: 'created'; account: SelectAccount }
  /** The provider-side identity already has an account (under this name or another). */
  | { outcome: 'existing'; account: SelectAccount }
  /** The name belongs to an account of another identity. */
  | { outcome: 'name_taken'; account: SelectAccount };

/**
 * Inserts an account unless its identity or its name is already taken, race-safe: the
 * unique indexes decide, not a look-up before the insert. Two requests creating the
 * same merchant at once both reach the INSERT; ON CONFLICT DO NOTHING lets exactly one
 * row in, and the loser (which waited for the winner's commit inside the INSERT) then
 * reads the winner's row.
 */
export async function insertAccount(db: DbOrTx, row: NewAccountRow): Promise<InsertAccountOutcome> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const [inserted] = await db.insert(accounts).values(row).onConflictDoNothing().returning();
    if (inserted) {
      // A process that cached "no such account" (a webhook that came first) forgets it now.
      announceLocally(row.provider, row.name);
      return { outcome: 'created', account: inserted };
    }
    // The identity first: creating a known merchant again answers with its account, whatever the name asked for.
    const sameIdentity = await getAccountByExternalId(db, row.provider as ProviderName, row.externalId);
    if (sameIdentity) return { outcome: 'existing', account: sameIdentity };
    const sameName = await getAccount(db, row.provider as ProviderName, row.name);
    if (sameName) return { outcome: 'name_taken', account: sameName };
    // Neither is there any more (a row removed by hand between the two statements): try again.
  }
  throw new Error(`account ${row.provider}/${row.name}: insert kept conflicting with rows that then vanished`);
}

export async function getAccount(db: DbOrTx, provider: ProviderName, name: string): Promise<SelectAccount | undefined> {
  const rows = await db.select().from(accounts).where(and(eq(accounts.provider, provider), eq(accounts.name, name))).limit(1);
  return rows[0];
}

export async function getAccountByExternalId(db: DbOrTx, provider: ProviderName, externalId: string): Promise<SelectAccount | undefined> {
  const rows = await db.select().from(accounts).where(and(eq(accounts.provider, provider), eq(accounts.externalId, externalId))).limit(1);
  return rows[0];
}

export interface ListAccountsParams {
  provider?: ProviderName;
  status?: AccountStatus;
  /** Exclusive lower bound on the row id: pages run oldest first and stay stable under inserts. */
  afterId?: number;
  limit: number;
}

export async function listAccountRows(db: DbOrTx, params: ListAccountsParams): Promise<SelectAccount[]> {
  const filters = [
    params.provider ? eq(accounts.provider, params.provider) : undefined,
    params.status ? eq(accounts.status, params.status) : undefined,
    params.afterId !== undefined ? gt(accounts.id, params.afterId) : undefined,
  ].filter((filter) => filter !== undefined);
  return db
    .select()
    .from(accounts)
    .where(filters.length > 0 ? and(...filters) : undefined)
    .orderBy(asc(accounts.id))
    .limit(params.limit);
}

/** The names of the provider's active accounts, oldest first: what the sweep and the events recovery cover. */
export async function listActiveAccountNames(db: DbOrTx, provider: ProviderName): Promise<string[]> {
  const rows = await db
    .select({ name: accounts.name })
    .from(accounts)
    .where(and(eq(accounts.provider, provider), eq(accounts.status, 'active')))
    .orderBy(asc(accounts.id));
  return rows.map((row) => row.name);
}

export type AccountChanges = Partial<
  Pick<InsertAccount, 'credentialsKind' | 'credentialsLast4' | 'credentialsKeyId' | 'credentialsCiphertext' | 'webhookSecretsKeyId' | 'webhookSecretsCiphertext' | 'lastCheckedAt' | 'lastError'>
> & { status?: AccountStatus; brokenSince?: Date | null };

/** Applies the changes and answers the row as it is now; undefined when there is no such account. */
export async function updateAccount(db: DbOrTx, provider: ProviderName, name: string, changes: AccountChanges): Promise<SelectAccount | undefined> {
  const [row] = await db
    .update(accounts)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(and(eq(accounts.provider, provider), eq(accounts.name, name)))
    .returning();
  if (row) announceLocally(provider, name);
  return row;
}

/** Disables an account (history kept, the name and identity stay taken); undefined when there is none. */
export function disableAccount(db: DbOrTx, provider: ProviderName, name: string): Promise<SelectAccount | undefined> {
  return updateAccount(db, provider, name, { status: 'disabled' });
}
