import type { Env } from '../config/env.js';
import { createGoCardlessProvider } from './gocardless/client.js';
import { createMollieProvider } from './mollie/client.js';
import type { PlainGet } from './plain-get.js';
import type { AccountCredentialsSource, Providers } from './types.js';

export interface RuntimeTransports {
  /** The transport of the hot-path payment read (Mollie's direct GET); default `fetch`. */
  plainGet?: PlainGet;
}

/**
 * The providers configured by the environment: the default account of each provider
 * whose credentials are set, and, when ACCOUNT_SECRETS_KEY lets accounts be stored, every
 * provider with the stored accounts as a credentials source (a gateway may serve only
 * stored accounts, with no default at all).
 */
export function createProvidersFromEnv(env: Env, stored?: AccountCredentialsSource, transports: RuntimeTransports = {}): Providers {
  const providers: Providers = {};
  const credentials = env.ACCOUNT_SECRETS_KEY ? stored : undefined;
  if (env.MOLLIE_API_KEY || credentials) {
    providers.mollie = createMollieProvider({
      accounts: env.MOLLIE_API_KEY ? { default: { apiKey: env.MOLLIE_API_KEY } } : {},
      ...(credentials ? { credentials } : {}),
      apiUrl: env.MOLLIE_API_URL,
      paymentFetch: env.MOLLIE_PAYMENT_FETCH,
      ...(transports.plainGet ? { plainGet: transports.plainGet } : {}),
    });
  }
  if (env.GOCARDLESS_ACCESS_TOKEN || credentials) {
    providers.gocardless = createGoCardlessProvider({
      accounts: env.GOCARDLESS_ACCESS_TOKEN ? { default: { accessToken: env.GOCARDLESS_ACCESS_TOKEN } } : {},
      ...(credentials ? { credentials } : {}),
      apiUrl: env.GOCARDLESS_API_URL,
    });
  }
  return providers;
}
