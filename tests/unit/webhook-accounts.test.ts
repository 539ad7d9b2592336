import { describe, expect, it } from 'vitest';
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

describe('resolveAccount', () => {
  const deps = { env, providers: { mollie: provider(['default', 'shop']) } };

  it('answers the provider\'s secrets and whether the account is configured', () => {
    expect(resolveAccount(deps, 'mollie', 'shop')).toEqual({ providerConfigured: true, exists: true, webhookSecrets: ['m1', 'm2'] });
    // Secrets even for an unknown account: GoCardless checks the signature before telling.
    expect(resolveAccount(deps, 'mollie', 'other')).toEqual({ providerConfigured: true, exists: false, webhookSecrets: ['m1', 'm2'] });
  });

  it('never asks the provider about a malformed name', () => {
    const asked: string[] = [];
    const spying = { env, providers: { gocardless: { hasAccount: (name: string) => (asked.push(name), true) } as unknown as PaymentProvider } };
    expect(resolveAccount(spying, 'gocardless', 'x'.repeat(65))).toMatchObject({ exists: false, webhookSecrets: ['g1'] });
    expect(asked).toEqual([]);
  });

  it('says when the provider is not configured at all', () => {
    expect(resolveAccount(deps, 'gocardless', 'default')).toEqual({ providerConfigured: false });
  });
});
