/**
 * The account registry: what the hot paths (webhook intake, provider clients, poller,
 * sweep, recovery) know about the accounts created at runtime. `(provider, name)` →
 * status, credentials and webhook secrets, opened once and kept in memory, so a webhook for
 * a known account costs no database round trip; an unknown name is remembered too, so a
 * flood of made-up names costs one query per name, not one per request.
 *
 * Freshness: a trigger on the table NOTIFYs `gateway_accounts` on every change of status,
 * credentials or webhook secrets, whatever statement made it (drizzle/0011). A Node process
 * LISTENs (postgres.js keeps one connection for it and re-listens after a drop) and forgets
 * the account at once, so a change made through any process is seen here within the
 * notification's latency (milliseconds; the contract says a second). This process's own
 * changes through store.ts are forgotten at once too. Until the LISTEN is up, and where
 * there is none (Workers, embedded mode), entries live `UNLISTENED_TTL_MS`.
 *
 * Memory: one entry per account in use (10,000 accounts ≈ a few MB), at most
 * `MAX_ENTRIES`, the longest cached first out; unknown names have their own, smaller cap
 * so a flood of them cannot push the real accounts out.
 */
import type postgres from 'postgres';
import type { Env } from '../config/env.js';
import type { Db } from '../db/client.js';
import type { SelectAccount } from '../db/schema/accounts.js';
import type { Locker } from '../lock/locker.js';
import type { Logger } from '../observability/logger.js';
import { errorMessage } from '../primitives/error-message.js';
import type { AccountCredentialsSource, ProviderName, SourcedCredentials } from '../providers/types.js';
import { openCredentials, webhookSecretsContext } from './accounts.js';
import { bearerSecret, type AccountCredentials } from './credentials.js';
import { usableMollieAccessToken } from './oauth.js';
import type { AccountSecrets } from './secrets.js';
import { ACCOUNTS_CHANNEL, credentialsFingerprint, getAccount, listActiveAccountNames, onLocalAccountChange, type AccountStatus } from './store.js';

/** How long an entry is trusted while changes are heard (a safety net: a notification is never the only way back). */
export const LISTENED_TTL_MS = 5 * 60_000;
/** How long an unknown name is remembered while changes are heard (a creation is heard at once anyway). */
export const LISTENED_NEGATIVE_TTL_MS = 30_000;
/** Without LISTEN (Workers, or before it is up): every entry is read again after this. */
export const UNLISTENED_TTL_MS = 5_000;
export const MAX_ENTRIES = 20_000;
export const MAX_UNKNOWN_ENTRIES = 2_000;

export interface StoredAccount {
  provider: ProviderName;
  name: string;
  status: AccountStatus;
  row: SelectAccount;
  credentials: AccountCredentials;
  /** The account's own webhook secrets; null when it has none (the provider's env secrets apply). */
  webhookSecrets: readonly string[] | null;
  /** Changes with every new sealing of the credentials (a fresh IV each time). */
  fingerprint: string;
}

export interface AccountRegistry extends AccountCredentialsSource {
  /** The stored account (whatever its status), or null when there is none. */
  resolve(provider: ProviderName, name: string): Promise<StoredAccount | null>;
  /** The status this process has in memory, without a query; undefined when nothing is cached. */
  cachedStatus(provider: ProviderName, name: string): AccountStatus | undefined;
  /** Names of the provider's active stored accounts, oldest first (one query; for the sweep and the recovery). */
  activeNames(provider: ProviderName): Promise<string[]>;
  /** Forgets what is cached about the account (a change this process made or heard of). */
  forget(provider: ProviderName, name: string): void;
  /** Whether changes are being heard (LISTEN up). */
  listening(): boolean;
  close(): Promise<void>;
}

export interface AccountRegistryDeps {
  db: Db;
  /** The pool's postgres.js client, for LISTEN; omitted where there is none to keep (Workers). */
  listenSql?: postgres.Sql;
  /** Null when ACCOUNT_SECRETS_KEY is unset: nothing can be opened, so no stored account exists here. */
  secrets: AccountSecrets | null;
  env: Env;
  locker: Locker;
  logger: Logger;
  /** Default: the registry's own. */
  cache?: AccountCache;
  now?: () => number;
}

interface Entry {
  value: StoredAccount | null;
  expiresAt: number;
}

/**
 * The remembered accounts, apart from the registry that fills them: a Worker builds its
 * deps (and so a registry) per invocation, and keeps one cache for the isolate
 * (src/worker.ts) so that its entries outlive the invocation that read them.
 */
export interface AccountCache {
  known: Map<string, Entry>;
  unknown: Map<string, Entry>;
}

export function createAccountCache(): AccountCache {
  return { known: new Map(), unknown: new Map() };
}

const keyOf = (provider: string, name: string) => `${provider}/${name}`;

export function createAccountRegistry(deps: AccountRegistryDeps): AccountRegistry {
  const now = deps.now ?? Date.now;
  const { known, unknown } = deps.cache ?? createAccountCache();
  // Per registry, never shared: on Workers a promise of one invocation's I/O must not be awaited by another.
  const loading = new Map<string, Promise<StoredAccount | null>>();
  let listen: Promise<void> | null = null;
  let unlisten: (() => Promise<void>) | null = null;
  let heard = false;
  let closed = false;
  // Changes made by this process are forgotten at once, LISTEN or not.
  const stopLocal = onLocalAccountChange((key) => forget(key));

  function forget(key: string) {
    known.delete(key);
    unknown.delete(key);
    // A load under way may have read the row before the change: its answer is not kept.
    loading.delete(key);
  }

  function startListening(): void {
    if (listen || closed || !deps.listenSql) return;
    listen = deps.listenSql
      .listen(
        ACCOUNTS_CHANNEL,
        (payload) => forget(payload),
        () => {
          // (Re)connected: whatever changed while the connection was down was not heard.
          heard = true;
          known.clear();
          unknown.clear();
          loading.clear();
        },
      )
      .then((meta) => {
        unlisten = meta.unlisten;
      })
      .catch((error: unknown) => {
        // Not fatal: entries keep the short lifetime, as on Workers.
        deps.logger.warn({ err: errorMessage(error) }, 'accounts: LISTEN failed; cached accounts are re-read every few seconds');
      });
  }

  function remember(key: string, value: StoredAccount | null) {
    const ttl = heard ? (value ? LISTENED_TTL_MS : LISTENED_NEGATIVE_TTL_MS) : UNLISTENED_TTL_MS;
    const map = value ? known : unknown;
    const cap = value ? MAX_ENTRIES : MAX_UNKNOWN_ENTRIES;
    map.delete(key);
    map.set(key, { value, expiresAt: now() + ttl });
    if (map.size > cap) map.delete(map.keys().next().value!);
  }

  async function load(provider: ProviderName, name: string): Promise<StoredAccount | null> {
    const secrets = deps.secrets;
    if (!secrets) return null;
    const row = await getAccount(deps.db, provider, name);
    if (!row) return null;
    const credentials = await openCredentials(secrets, row);
    const webhookSecrets =
      row.webhookSecretsKeyId && row.webhookSecretsCiphertext
        ? (JSON.parse(await secrets.open({ keyId: row.webhookSecretsKeyId, ciphertext: row.webhookSecretsCiphertext }, webhookSecretsContext(provider, name))) as string[])
        : null;
    return {
      provider,
      name,
      status: row.status as AccountStatus,
      row,
      credentials,
      webhookSecrets: webhookSecrets && webhookSecrets.length > 0 ? webhookSecrets : null,
      fingerprint: credentialsFingerprint(row),
    };
  }

  async function resolve(provider: ProviderName, name: string): Promise<StoredAccount | null> {
    // Without a key nothing can be stored or opened: no query at all.
    if (!deps.secrets) return null;
    startListening();
    const key = keyOf(provider, name);
    const cached = known.get(key) ?? unknown.get(key);
    if (cached && cached.expiresAt > now()) return cached.value;
    const pending = loading.get(key);
    if (pending) return pending;
    const started = load(provider, name);
    loading.set(key, started);
    try {
      const value = await started;
      // Kept only when no change was heard while it loaded.
      if (loading.get(key) === started) remember(key, value);
      return value;
    } finally {
      if (loading.get(key) === started) loading.delete(key);
    }
  }

  function oauthBearer(account: StoredAccount, credentials: Extract<AccountCredentials, { kind: 'oauth' }>): Promise<string> {
    return usableMollieAccessToken({ db: deps.db, env: deps.env, locker: deps.locker, secrets: deps.secrets!, logger: deps.logger }, account.row, credentials);
  }

  return {
    resolve,
    async credentialsFor(provider, name): Promise<SourcedCredentials | null> {
      const account = await resolve(provider, name);
      if (!account || account.status === 'disabled') return null;
      const credentials = account.credentials;
      return {
        credentials,
        fingerprint: account.fingerprint,
        bearer: credentials.kind === 'oauth' ? () => oauthBearer(account, credentials) : () => Promise.resolve(bearerSecret(credentials)),
      };
    },
    cachedStatus(provider, name) {
      return known.get(keyOf(provider, name))?.value?.status;
    },
    activeNames: (provider) => (deps.secrets ? listActiveAccountNames(deps.db, provider) : Promise.resolve([])),
    forget: (provider, name) => forget(keyOf(provider, name)),
    listening: () => heard,
    async close() {
      closed = true;
      stopLocal();
      await listen;
      await unlisten?.().catch(() => {});
    },
  };
}
