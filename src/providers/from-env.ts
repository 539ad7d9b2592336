import type { Env } from '../config/env.js';
import { createGoCardlessProvider } from './gocardless/client.js';
import { createMollieProvider } from './mollie/client.js';
import type { Providers } from './types.js';

/**
 * The providers configured by the environment: the default account of each provider
 * whose credentials are set.
 */
export function createProvidersFromEnv(env: Env): Providers {
  const providers: Providers = {};
  if (env.MOLLIE_API_KEY) {
    providers.mollie = createMollieProvider({ accounts: { default: { apiKey: env.MOLLIE_API_KEY } }, apiUrl: env.MOLLIE_API_URL, paymentFetch: env.MOLLIE_PAYMENT_FETCH });
  }
  if (env.GOCARDLESS_ACCESS_TOKEN) {
    providers.gocardless = createGoCardlessProvider({ accounts: { default: { accessToken: env.GOCARDLESS_ACCESS_TOKEN } }, apiUrl: env.GOCARDLESS_API_URL });
  }
  return providers;
}
