/**
 * Which provider accounts a webhook may name, and the secrets that sign its webhooks: the
 * one place that answers both.
 *
 * - The env-configured accounts (`default`): the provider client has them; their webhooks
 *   are signed with the provider's env secrets (MOLLIE_WEBHOOK_SECRETS, GOCARDLESS_WEBHOOK_SECRETS).
 * - Stored accounts (/v1/accounts), from the account registry's memory: an active or broken
 *   account exists (a broken one's webhooks are still recorded; its fetches fail and are
 *   retried), with its own webhook secrets, or the provider's env secrets when it has none.
 *   A disabled or unknown name gets the same answer as an unknown account always has.
 */
import type { AccountRegistry } from '../accounts/registry.js';
import type { Env } from '../config/env.js';
import type { ProviderName, Providers } from '../providers/types.js';

/** An account name, as webhook URLs, receipts and replay files spell it: 1-64 letters, digits, _ or -. */
export const ACCOUNT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function isAccountName(name: string): boolean {
  return ACCOUNT_NAME.test(name);
}

export interface AccountDeps {
  env: Pick<Env, 'MOLLIE_WEBHOOK_SECRETS' | 'GOCARDLESS_WEBHOOK_SECRETS'>;
  providers: Providers;
  accounts: Pick<AccountRegistry, 'resolve'>;
}

export type ResolvedAccount =
  /** The provider has no credentials on this gateway: no account of it exists. */
  | { providerConfigured: false }
  | {
      providerConfigured: true;
      /** A well-formed name the provider is configured for. */
      exists: boolean;
      /** What may sign this account's webhooks (rotation: any one of them). Given even when the account does not exist, so a signature can be checked first. */
      webhookSecrets: readonly string[];
    };

export async function resolveAccount(deps: AccountDeps, provider: ProviderName, name: string): Promise<ResolvedAccount> {
  const client = deps.providers[provider];
  if (!client) return { providerConfigured: false };
  const envSecrets = webhookSecretsOf(deps.env, provider);
  if (!isAccountName(name)) return { providerConfigured: true, exists: false, webhookSecrets: envSecrets };
  if (client.hasAccount(name)) return { providerConfigured: true, exists: true, webhookSecrets: envSecrets };
  const stored = await deps.accounts.resolve(provider, name);
  if (!stored || stored.status === 'disabled') return { providerConfigured: true, exists: false, webhookSecrets: envSecrets };
  return { providerConfigured: true, exists: true, webhookSecrets: stored.webhookSecrets ?? envSecrets };
}

function webhookSecretsOf(env: AccountDeps['env'], provider: ProviderName): readonly string[] {
  switch (provider) {
    case 'mollie':
      return env.MOLLIE_WEBHOOK_SECRETS;
    case 'gocardless':
      return env.GOCARDLESS_WEBHOOK_SECRETS;
    default: {
      const unreachable: never = provider;
      throw new Error(`unknown provider ${String(unreachable)}`);
    }
  }
}
