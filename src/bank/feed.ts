import type { Env } from '../config/env.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../observability/logger.js';
import { createBankClient, createBankTransport, type BankClient } from '../providers/gocardless-bank/client.js';
import { createDbTokenSource } from './tokens.js';

/** The bank feed's client and settings, built once per process by buildDeps. */
export interface BankFeed {
  client: BankClient;
  secretId: string;
}

export function createBankFeed(env: Env, db: Db, options: { fetch?: typeof fetch; logger?: Logger } = {}): BankFeed | null {
  if (!env.GOCARDLESS_BANK_SECRET_ID || !env.GOCARDLESS_BANK_SECRET_KEY) return null;
  const transport = createBankTransport({ baseUrl: env.GOCARDLESS_BANK_API_URL, fetch: options.fetch });
  const tokenClient = createBankClient(transport, { access: () => Promise.reject(new Error('token calls are unauthenticated')), invalidate: async () => {} });
  const tokens = createDbTokenSource({
    db,
    client: tokenClient,
    secretId: env.GOCARDLESS_BANK_SECRET_ID,
    secretKey: env.GOCARDLESS_BANK_SECRET_KEY,
    onRenew: (how) => options.logger?.info({ job: 'bank', token: how }, `bank token ${how === 'new' ? 'minted' : 'refreshed'}`),
  });
  return { client: createBankClient(transport, tokens), secretId: env.GOCARDLESS_BANK_SECRET_ID };
}
