import { describe, expect, it } from 'vitest';
import type { StoredAccount } from '../../src/accounts/registry.js';
import type { PaymentProvider } from '../../src/providers/types.js';
import { isAccountName, resolveAccount } from '../../src/webhooks/accounts.js';

const provider = (accounts: string[]) => ({ hasAccount: (name: string) => accounts.includes(name) }) as unknown as PaymentProvider;
const env = { MOLLIE_WEBHOOK_SECRETS: ['m1', 'm2'], GOCARDLESS_WEBHOOK_SECRETS: ['g1'] };

describe('account names', () => {
  it('are 1-64 letters, digits, _ or -', () => {
    for (const name of ['default', 'shop_2', 'EU-west', 'a'.repeat(64)]) expect(isAccountName(name), name).toBe(true);
    for (const name of ['', 'a'.repeat(65), 'shop.nl', 'a b', '../x', 'é']) expect(isAccountName(name), name).toBe(false);
  });
});

/** A registry that knows the given stored accounts (status and own secrets only: all resolveAccount reads). */
const registry = (stored: Array<Pick<StoredAccount, 'name' | 'status' | 'webhookSecrets'>> = []) => ({
  asked: [] as string[],
  async resolve(_provider: string, name: string) {
    this.asked.push(name);
    return (stored.find((account) => account.name === name) as StoredAccount | undefined) ?? null;
  },
});

describe('resolveAccount', () => {
  const deps = { env, providers: { mollie: provider(['default', 'shop']) }, accounts: registry() };

  it('answers the provider\'s secrets and whether the account is configured', async () => {
    expect(await resolveAccount(deps, 'mollie', 'shop')).toEqual({ providerConfigured: true, exists: true, webhookSecrets: ['m1', 'm2'] });
    // Secrets even for an unknown account: GoCardless checks the signature before telling.
    expect(await resolveAccount(deps, 'mollie', 'other')).toEqual({ providerConfigured: true, exists: false, webhookSecrets: ['m1', 'm2'] });
  });

  it('answers a stored account with its own secrets, or the env secrets when it has none; disabled is unknown', async () => {
    const accounts = registry([
      { name: 'own', status: 'active', webhookSecrets: ['own-1'] },
      { name: 'plain', status: 'broken', webhookSecrets: null },
      { name: 'off', status: 'disabled', webhookSecrets: ['off-1'] },
    ]);
    const stored = { env, providers: { mollie: provider(['default']) }, accounts };
    expect(await resolveAccount(stored, 'mollie', 'own')).toEqual({ providerConfigured: true, exists: true, webhookSecrets: ['own-1'] });
    expect(await resolveAccount(stored, 'mollie', 'plain')).toEqual({ providerConfigured: true, exists: true, webhookSecrets: ['m1', 'm2'] });
    expect(await resolveAccount(stored, 'mollie', 'off')).toEqual({ providerConfigured: true, exists: false, webhookSecrets: ['m1', 'm2'] });
    // The env account never reaches the registry.
    expect(await resolveAccount(stored, 'mollie', 'default')).toMatchObject({ exists: true });
    expect(accounts.asked).toEqual(['own', 'plain', 'off']);
  });

  it('never asks the provider or the registry about a malformed name', async () => {
    const asked: string[] = [];
    const accounts = registry();
    const spying = { env, providers: { gocardless: { hasAccount: (name: string) => (asked.push(name), true) } as unknown as PaymentProvider }, accounts };
    expect(await resolveAccount(spying, 'gocardless', 'x'.repeat(65))).toMatchObject({ exists: false, webhookSecrets: ['g1'] });
    expect(asked).toEqual([]);
    expect(accounts.asked).toEqual([]);
  });

  it('says when the provider is not configured at all', async () => {
    expect(await resolveAccount(deps, 'gocardless', 'default')).toEqual({ providerConfigured: false });
  });
});
