/**
 * The account verbs behind /v1/accounts: create (checked with the provider, idempotent
 * per provider-side identity), change, disable. Secrets are sealed here before they reach
 * the store and never leave this module in clear.
 */
import type { Env } from '../config/env.js';
import type { DbOrTx } from '../db/client.js';
import type { Logger } from '../observability/logger.js';
import type { SelectAccount } from '../db/schema/accounts.js';
import { ProviderError, type ProviderName } from '../providers/types.js';
import { logAccountRecovered, markAccountWorking, type AccountRecovered } from './health.js';
import { identifyCredentials, last4, toAccountCredentials, type AccountCredentials, type CredentialsInput, type ProviderApiUrls } from './credentials.js';
import { createAccountSecrets, type AccountSecrets, type SealedSecret } from './secrets.js';
import { disableAccount as disableAccountRow, getAccount, insertAccount, updateAccount, type AccountChanges } from './store.js';

/** The env-configured accounts' name; never a row, so it can never be taken by one. */
export const ENV_ACCOUNT_NAME = 'default';

export type AccountErrorCode =
  | 'secrets_not_configured'
  | 'name_taken'
  | 'read_only'
  | 'identity_mismatch'
  | 'credentials_refused'
  | 'provider_unavailable'
  | 'provider_bad_response'
  | 'not_found';

export class AccountError extends Error {
  override readonly name = 'AccountError';
  constructor(
    readonly code: AccountErrorCode,
    message: string,
    readonly retryable = false,
    readonly account?: SelectAccount,
  ) {
    super(message);
  }
}

export interface AccountDeps {
  db: DbOrTx;
  env: ProviderApiUrls;
  /** Null when ACCOUNT_SECRETS_KEY is unset: nothing can be sealed, so nothing is created. */
  secrets: AccountSecrets | null;
  /** Where a recovery by new credentials is logged. */
  logger?: Logger;
}

export function accountSecretsFromEnv(env: Pick<Env, 'ACCOUNT_SECRETS_KEY' | 'ACCOUNT_SECRETS_PREVIOUS_KEYS'>): AccountSecrets | null {
  return env.ACCOUNT_SECRETS_KEY ? createAccountSecrets(env.ACCOUNT_SECRETS_KEY, env.ACCOUNT_SECRETS_PREVIOUS_KEYS) : null;
}

/** What a ciphertext is bound to: its row and its column (see secrets.ts). */
export const credentialsContext = (provider: string, name: string) => `${provider}/${name}/credentials`;
export const webhookSecretsContext = (provider: string, name: string) => `${provider}/${name}/webhook-secrets`;

function requireSecrets(deps: AccountDeps): AccountSecrets {
  if (!deps.secrets) {
    throw new AccountError('secrets_not_configured', 'ACCOUNT_SECRETS_KEY is not set: accounts cannot be stored without a key to encrypt their credentials (generate one with: openssl rand -base64 32)', false);
  }
  return deps.secrets;
}

/** The provider's answer to a check, as an AccountError; a refusal carries the provider's own message. */
async function identify(deps: AccountDeps, provider: ProviderName, credentials: AccountCredentials): Promise<string> {
  try {
    return await identifyCredentials(deps.env, credentials);
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    switch (error.code) {
      case 'unauthorized':
        throw new AccountError('credentials_refused', `${provider} refused the credentials: ${error.message}`);
      case 'timeout':
      case 'unavailable':
      case 'rate_limited':
        throw new AccountError('provider_unavailable', `${provider} could not check the credentials: ${error.message}`, true);
      case 'bad_response':
      case 'unknown_account':
        throw new AccountError('provider_bad_response', `${provider} answered the check unexpectedly: ${error.message}`, error.retryable);
      default: {
        const unknown: never = error.code;
        throw new AccountError('provider_bad_response', `unhandled provider error ${String(unknown)}`);
      }
    }
  }
}

async function sealWebhookSecrets(secrets: AccountSecrets, provider: string, name: string, webhookSecrets: readonly string[] | undefined): Promise<SealedSecret | null> {
  if (!webhookSecrets || webhookSecrets.length === 0) return null;
  return secrets.seal(JSON.stringify(webhookSecrets), webhookSecretsContext(provider, name));
}

export interface CreateAccountInput {
  provider: ProviderName;
  name: string;
  credentials: CredentialsInput;
  webhookSecrets?: string[];
}

export type CreateAccountResult = { created: boolean; account: SelectAccount };

/**
 * Checks the credentials with the provider, then stores the account. The same
 * provider-side identity again answers the existing account (under its first name), so a
 * retried or double-clicked creation never makes two; a name of another identity is
 * refused. Nothing is stored when the provider refuses the credentials.
 */
export async function createAccount(deps: AccountDeps, input: CreateAccountInput): Promise<CreateAccountResult> {
  const secrets = requireSecrets(deps);
  if (input.name === ENV_ACCOUNT_NAME) {
    throw new AccountError('name_taken', `"${ENV_ACCOUNT_NAME}" is the name of the account configured by the environment; choose another name`);
  }
  const credentials = toAccountCredentials(input.provider, input.credentials);
  const externalId = await identify(deps, input.provider, credentials);
  const sealed = await secrets.seal(JSON.stringify(credentials), credentialsContext(input.provider, input.name));
  const sealedWebhookSecrets = await sealWebhookSecrets(secrets, input.provider, input.name, input.webhookSecrets);
  const result = await insertAccount(deps.db, {
    provider: input.provider,
    name: input.name,
    externalId,
    credentialsKind: credentials.kind,
    credentialsLast4: last4(credentials),
    credentialsKeyId: sealed.keyId,
    credentialsCiphertext: sealed.ciphertext,
    webhookSecretsKeyId: sealedWebhookSecrets?.keyId ?? null,
    webhookSecretsCiphertext: sealedWebhookSecrets?.ciphertext ?? null,
    lastCheckedAt: new Date(),
  });
  switch (result.outcome) {
    case 'created':
      return { created: true, account: result.account };
    case 'existing':
      return { created: false, account: result.account };
    case 'name_taken':
      throw new AccountError('name_taken', `the ${input.provider} account "${input.name}" belongs to another ${input.provider} identity`, false, result.account);
    default: {
      const unknown: never = result;
      throw new Error(`unhandled insert outcome ${String((unknown as { outcome?: unknown }).outcome)}`);
    }
  }
}

export interface PatchAccountInput {
  credentials?: CredentialsInput;
  webhookSecrets?: string[];
  disabled?: boolean;
}

function refuseEnvAccount(provider: ProviderName, name: string): void {
  if (name !== ENV_ACCOUNT_NAME) return;
  const variable = provider === 'mollie' ? 'MOLLIE_API_KEY' : 'GOCARDLESS_ACCESS_TOKEN';
  throw new AccountError('read_only', `the ${provider} account "${ENV_ACCOUNT_NAME}" is configured by the environment (${variable}) and is read-only here; change it there`);
}

async function existing(deps: AccountDeps, provider: ProviderName, name: string): Promise<SelectAccount> {
  const account = await getAccount(deps.db, provider, name);
  if (!account) throw new AccountError('not_found', `no ${provider} account named "${name}"`);
  return account;
}

/**
 * New credentials (checked, and they must belong to the same provider-side identity),
 * new webhook secrets (an empty list removes them), or disabled on or off.
 */
export async function patchAccount(deps: AccountDeps, provider: ProviderName, name: string, input: PatchAccountInput): Promise<SelectAccount> {
  refuseEnvAccount(provider, name);
  const account = await existing(deps, provider, name);
  const changes: AccountChanges = {};
  let credentialsChecked = false;
  if (input.credentials !== undefined || input.webhookSecrets !== undefined) {
    const secrets = requireSecrets(deps);
    if (input.credentials !== undefined) {
      const credentials = toAccountCredentials(provider, input.credentials);
      const externalId = await identify(deps, provider, credentials);
      if (externalId !== account.externalId) {
        throw new AccountError('identity_mismatch', `the new credentials belong to ${externalId}, not to ${account.externalId}; create another account for them`, false, account);
      }
      const sealed = await secrets.seal(JSON.stringify(credentials), credentialsContext(provider, name));
      Object.assign(changes, {
        credentialsKind: credentials.kind,
        credentialsLast4: last4(credentials),
        credentialsKeyId: sealed.keyId,
        credentialsCiphertext: sealed.ciphertext,
        lastCheckedAt: new Date(),
        lastError: null,
      } satisfies AccountChanges);
      credentialsChecked = true;
    }
    if (input.webhookSecrets !== undefined) {
      const sealed = await sealWebhookSecrets(secrets, provider, name, input.webhookSecrets);
      changes.webhookSecretsKeyId = sealed?.keyId ?? null;
      changes.webhookSecretsCiphertext = sealed?.ciphertext ?? null;
    }
  }
  if (input.disabled === true) changes.status = 'disabled';
  const enabling = input.disabled === false && account.status === 'disabled';
  if (Object.keys(changes).length === 0 && !enabling) return account;
  const mended: { recovered: AccountRecovered | null } = { recovered: null };
  const updated = await deps.db.transaction(async (tx) => {
    let row = Object.keys(changes).length > 0 ? await updateAccount(tx, provider, name, changes) : account;
    if (!row) return undefined;
    // Working credentials end a broken episode (gateway.account.recovered, once, in this
    // transaction); a disabled account stays disabled unless asked.
    if (credentialsChecked) {
      mended.recovered = await markAccountWorking(tx, provider, name);
      if (mended.recovered) row = await getAccount(tx, provider, name);
    }
    if (row && input.disabled === false && row.status === 'disabled') {
      // Enabled again: still broken when its episode never ended.
      row = await updateAccount(tx, provider, name, { status: row.brokenSince ? 'broken' : 'active' });
    }
    return row;
  });
  if (!updated) throw new AccountError('not_found', `no ${provider} account named "${name}"`);
  if (mended.recovered && deps.logger) logAccountRecovered(deps.logger, mended.recovered);
  return updated;
}

/** Disables the account: history kept, its name and identity stay taken. */
export async function disableAccount(deps: AccountDeps, provider: ProviderName, name: string): Promise<SelectAccount> {
  refuseEnvAccount(provider, name);
  const account = await disableAccountRow(deps.db, provider, name);
  if (!account) throw new AccountError('not_found', `no ${provider} account named "${name}"`);
  return account;
}

/** The credentials of a stored account, opened. For the provider clients; never for a response or a log. */
export async function openCredentials(secrets: AccountSecrets, account: SelectAccount): Promise<AccountCredentials> {
  const plain = await secrets.open({ keyId: account.credentialsKeyId, ciphertext: account.credentialsCiphertext }, credentialsContext(account.provider, account.name));
  return JSON.parse(plain) as AccountCredentials;
}

