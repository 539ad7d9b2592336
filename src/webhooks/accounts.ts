/**
 * Which provider accounts a webhook may name, and the secrets that sign its webhooks: the
 * one place that answers both. Today every answer comes from the environment (the
 * provider's configured accounts, and one list of webhook secrets per provider shared by
 * its accounts); per-merchant accounts kept at runtime will answer here instead.
 */
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

export function resolveAccount(deps: AccountDeps, provider: ProviderName, name: string): ResolvedAccount {
  const client = deps.providers[provider];
  if (!client) return { providerConfigured: false };
  return {
    providerConfigured: true,
    exists: isAccountName(name) && client.hasAccount(name),
    webhookSecrets: webhookSecretsOf(deps.env, provider),
  };
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
