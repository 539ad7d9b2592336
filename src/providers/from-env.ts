import type { Env } from '../config/env.js';
import type { Providers } from './types.js';

/**
 * The providers configured by the environment (the default account). The Mollie and
 * GoCardless adapters register here as they are wired in.
 */
export function createProvidersFromEnv(_env: Env): Providers {
  return {};
}
