/**
 * The credentials an account can hold, and the one cheap authenticated call that checks
 * them and learns who they belong to: a Mollie API key's profile, a Mollie organization or
 * OAuth token's organization, a GoCardless access token's creditor.
 */
import { z } from 'zod';
import { createGoCardlessProvider } from '../providers/gocardless/client.js';
import { fetchMollieIdentity } from '../providers/mollie/identity.js';
import type { ProviderName } from '../providers/types.js';

const token = (what: string) => z.string().min(8, `must be ${what}`).max(4096).regex(/^\S+$/, 'must not contain spaces');

export const mollieApiKeyCredentials = z.strictObject({
  apiKey: z.string().regex(/^(live|test)_[A-Za-z0-9]+$/, 'must be a Mollie API key (live_... or test_...)'),
});
export const mollieOrganizationCredentials = z.strictObject({
  organizationToken: token('a Mollie organization access token (access_...)'),
  profileId: z.string().regex(/^pfl_[A-Za-z0-9]+$/, 'must be a Mollie profile id (pfl_...)'),
});
export const mollieOAuthCredentials = z.strictObject({
  accessToken: token('a Mollie OAuth access token'),
  refreshToken: token('a Mollie OAuth refresh token'),
  expiresAt: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' }),
});
export const goCardlessCredentials = z.strictObject({
  accessToken: token('a GoCardless access token'),
});

export const mollieCredentials = z.union([mollieApiKeyCredentials, mollieOrganizationCredentials, mollieOAuthCredentials]);

export type CredentialsInput =
  | z.infer<typeof mollieApiKeyCredentials>
  | z.infer<typeof mollieOrganizationCredentials>
  | z.infer<typeof mollieOAuthCredentials>
  | z.infer<typeof goCardlessCredentials>;

/** What is sealed in the accounts table: the credentials with their kind. */
export type AccountCredentials =
  | ({ kind: 'apiKey' } & z.infer<typeof mollieApiKeyCredentials>)
  | ({ kind: 'organizationToken' } & z.infer<typeof mollieOrganizationCredentials>)
  | ({ kind: 'oauth' } & z.infer<typeof mollieOAuthCredentials>)
  | ({ kind: 'accessToken' } & z.infer<typeof goCardlessCredentials>);

export type CredentialsKind = AccountCredentials['kind'];

/** Tags validated input with its kind; the shapes do not overlap (strict objects). */
export function toAccountCredentials(provider: ProviderName, input: CredentialsInput): AccountCredentials {
  switch (provider) {
    case 'mollie':
      if ('apiKey' in input) return { kind: 'apiKey', apiKey: input.apiKey };
      if ('organizationToken' in input) return { kind: 'organizationToken', organizationToken: input.organizationToken, profileId: input.profileId };
      if ('refreshToken' in input) return { kind: 'oauth', accessToken: input.accessToken, refreshToken: input.refreshToken, expiresAt: input.expiresAt };
      throw new CredentialsShapeError('Mollie credentials are {apiKey}, {organizationToken, profileId} or {accessToken, refreshToken, expiresAt}');
    case 'gocardless':
      if ('accessToken' in input && !('refreshToken' in input)) return { kind: 'accessToken', accessToken: input.accessToken };
      throw new CredentialsShapeError('GoCardless credentials are {accessToken}');
    default: {
      const unknown: never = provider;
      throw new CredentialsShapeError(`unknown provider ${String(unknown)}`);
    }
  }
}

export class CredentialsShapeError extends Error {
  override readonly name = 'CredentialsShapeError';
}

/** The secret that authenticates calls: the one shown as last4 and the one the check sends. */
export function bearerSecret(credentials: AccountCredentials): string {
  switch (credentials.kind) {
    case 'apiKey':
      return credentials.apiKey;
    case 'organizationToken':
      return credentials.organizationToken;
    case 'oauth':
    case 'accessToken':
      return credentials.accessToken;
    default: {
      const unknown: never = credentials;
      throw new Error(`unknown credentials kind ${String((unknown as { kind?: unknown }).kind)}`);
    }
  }
}

export function last4(credentials: AccountCredentials): string {
  return bearerSecret(credentials).slice(-4);
}

export interface ProviderApiUrls {
  MOLLIE_API_URL: string;
  GOCARDLESS_API_URL: string;
}

/**
 * The provider-side identity of the credentials (pfl_/org_ id, creditor id). Throws the
 * provider's ProviderError: `unauthorized` when the provider refuses them, a retryable
 * code when it could not answer.
 */
export async function identifyCredentials(urls: ProviderApiUrls, credentials: AccountCredentials): Promise<string> {
  switch (credentials.kind) {
    case 'apiKey':
      return fetchMollieIdentity(credentials.apiKey, 'profile', { apiUrl: urls.MOLLIE_API_URL });
    case 'organizationToken':
      return fetchMollieIdentity(credentials.organizationToken, 'organization', { apiUrl: urls.MOLLIE_API_URL });
    case 'oauth':
      return fetchMollieIdentity(credentials.accessToken, 'organization', { apiUrl: urls.MOLLIE_API_URL });
    case 'accessToken': {
      const candidate = 'candidate';
      const client = createGoCardlessProvider({ accounts: { [candidate]: { accessToken: credentials.accessToken } }, apiUrl: urls.GOCARDLESS_API_URL });
      return client.getCreditorId(candidate);
    }
    default: {
      const unknown: never = credentials;
      throw new Error(`unknown credentials kind ${String((unknown as { kind?: unknown }).kind)}`);
    }
  }
}
