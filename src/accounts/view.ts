/** Accounts as the API shows them: no secret, only what kind of credential and its last four characters. */
import type { Env } from '../config/env.js';
import type { SelectAccount } from '../db/schema/accounts.js';
import type { ProviderName } from '../providers/types.js';
import { ENV_ACCOUNT_NAME } from './accounts.js';

export interface AccountJson {
  provider: ProviderName;
  name: string;
  status: 'active' | 'broken' | 'disabled';
  /** Null for an env-configured account: the gateway has not asked the provider who it is. */
  externalId: string | null;
  /** Where the provider should send this account's webhooks. */
  webhookUrl: string;
  credentials: { kind: string; last4: string };
  /** `api` (created through /v1/accounts) or `environment` (read-only). */
  source: 'api' | 'environment';
  lastCheckedAt: string | null;
  brokenSince: string | null;
  lastError: string | null;
  createdAt: string | null;
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);

export function webhookUrl(origin: string, provider: string, name: string): string {
  return `${origin}/webhooks/${provider}/${encodeURIComponent(name)}`;
}

export function toAccountJson(account: SelectAccount, origin: string): AccountJson {
  return {
    provider: account.provider as ProviderName,
    name: account.name,
    status: account.status as AccountJson['status'],
    externalId: account.externalId,
    webhookUrl: webhookUrl(origin, account.provider, account.name),
    credentials: { kind: account.credentialsKind, last4: account.credentialsLast4 },
    source: 'api',
    lastCheckedAt: iso(account.lastCheckedAt),
    brokenSince: iso(account.brokenSince),
    lastError: account.lastError,
    createdAt: iso(account.createdAt),
  };
}

/** The accounts the environment configures (MOLLIE_API_KEY, GOCARDLESS_ACCESS_TOKEN), in provider order. */
export function envAccountsJson(env: Pick<Env, 'MOLLIE_API_KEY' | 'GOCARDLESS_ACCESS_TOKEN'>, origin: string): AccountJson[] {
  const configured: Array<[ProviderName, string | undefined, string]> = [
    ['mollie', env.MOLLIE_API_KEY, 'apiKey'],
    ['gocardless', env.GOCARDLESS_ACCESS_TOKEN, 'accessToken'],
  ];
  return configured.flatMap(([provider, secret, kind]) =>
    secret
      ? [
          {
            provider,
            name: ENV_ACCOUNT_NAME,
            status: 'active' as const,
            externalId: null,
            webhookUrl: webhookUrl(origin, provider, ENV_ACCOUNT_NAME),
            credentials: { kind, last4: secret.slice(-4) },
            source: 'environment' as const,
            lastCheckedAt: null,
            brokenSince: null,
            lastError: null,
            createdAt: null,
          },
        ]
      : [],
  );
}
