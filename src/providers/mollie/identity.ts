/**
 * Who a Mollie credential belongs to, learned with one cheap authenticated call: the
 * profile of an API key (GET /v2/profiles/me), the organization of an organization access
 * token or an OAuth access token (GET /v2/organizations/me). Used to check credentials
 * before an account is stored and to tell one merchant from another.
 */
import { Client } from 'mollie-api-typescript';
import { MOLLIE_DEFAULT_API_URL, MOLLIE_DEFAULT_TIMEOUT_MS, normaliseApiUrl, toMollieProviderError } from './client.js';

export type MollieIdentityKind = 'profile' | 'organization';

export interface MollieIdentityOptions {
  apiUrl?: string;
  /** The one attempt's bound. Default 4000 ms. */
  timeoutMs?: number;
}

/** The pfl_/org_ id behind `token`; throws ProviderError (`unauthorized` for a refused credential). */
export async function fetchMollieIdentity(token: string, kind: MollieIdentityKind, options: MollieIdentityOptions = {}): Promise<string> {
  const client = new Client({
    // Every Mollie credential is sent as a bearer token, but each SDK operation accepts only
    // some schemes (profiles/me: apiKey; organizations/me: advancedAccessToken or oAuth).
    // Setting all three lets each call send the token, and none falls back to the
    // environment's CLIENT_* variables.
    security: { apiKey: token, advancedAccessToken: token, oAuth: token },
    serverURL: normaliseApiUrl(options.apiUrl ?? MOLLIE_DEFAULT_API_URL),
    timeoutMs: options.timeoutMs ?? MOLLIE_DEFAULT_TIMEOUT_MS,
    // One attempt: the caller is waiting for an answer, and can try again.
    retryConfig: { strategy: 'none' },
  });
  try {
    switch (kind) {
      case 'profile':
        return (await client.profiles.getCurrent()).id;
      case 'organization':
        return (await client.organizations.getCurrent()).id;
      default: {
        const unknown: never = kind;
        throw new Error(`unknown Mollie identity kind ${String(unknown)}`);
      }
    }
  } catch (error) {
    throw toMollieProviderError(error);
  }
}
