/**
 * Checking credentials against the sandboxes over real HTTP: who an API key, an
 * organization token or a GoCardless token belongs to; a revoked or unknown one refused
 * with the provider's own message; an outage told apart from a refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifyCredentials, type AccountCredentials } from '../../src/accounts/credentials.js';
import { ProviderError } from '../../src/providers/types.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';

let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let urls: { MOLLIE_API_URL: string; GOCARDLESS_API_URL: string };

beforeAll(async () => {
  mollie = await startMollieSandbox();
  gocardless = await startGoCardlessSandbox();
  urls = { MOLLIE_API_URL: mollie.url, GOCARDLESS_API_URL: gocardless.url };
});

afterAll(async () => {
  await mollie?.close();
  await gocardless?.close();
});

async function refusal(credentials: AccountCredentials): Promise<ProviderError> {
  try {
    await identifyCredentials(urls, credentials);
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error('expected the provider to refuse');
}

describe('credential checks', () => {
  it("learns each Mollie API key's profile and each organization token's organization", async () => {
    const defaultProfile = mollie.accounts.get(SANDBOX_DEFAULT_API_KEY)!.profileId;
    expect(await identifyCredentials(urls, { kind: 'apiKey', apiKey: SANDBOX_DEFAULT_API_KEY })).toBe(defaultProfile);
    const other = mollie.accounts.addApiKey();
    expect(other.token).toMatch(/^test_/);
    const otherProfile = await identifyCredentials(urls, { kind: 'apiKey', apiKey: other.token });
    expect(otherProfile).toBe(other.profileId);
    expect(otherProfile).not.toBe(defaultProfile);

    const org = mollie.accounts.addOrganizationToken({ organizationId: 'org_12345678' });
    expect(await identifyCredentials(urls, { kind: 'organizationToken', organizationToken: org.token, profileId: 'pfl_abc' })).toBe('org_12345678');
    expect(await identifyCredentials(urls, { kind: 'oauth', accessToken: org.token, refreshToken: 'refresh_abcdefgh', expiresAt: new Date().toISOString() })).toBe('org_12345678');
    // Every check was a real authenticated request to the sandbox.
    expect(mollie.state.requests.filter((r) => r.path === '/v2/profiles/me' && r.status === 200)).toHaveLength(2);
    expect(mollie.state.requests.filter((r) => r.path === '/v2/organizations/me' && r.status === 200)).toHaveLength(2);
  });

  it("refuses an unknown or revoked Mollie key with Mollie's own message and shape", async () => {
    const unknown = await refusal({ kind: 'apiKey', apiKey: 'test_doesnotexist123' });
    expect(unknown.code).toBe('unauthorized');
    expect(unknown.message).toContain('Missing authentication, or failed to authenticate');

    const key = mollie.accounts.addApiKey();
    mollie.accounts.revoke(key.token);
    expect((await refusal({ kind: 'apiKey', apiKey: key.token })).code).toBe('unauthorized');
    const raw = await fetch(`${mollie.url}/v2/profiles/me`, { headers: { Authorization: `Bearer ${key.token}` } });
    expect(raw.status).toBe(401);
    expect(raw.headers.get('content-type')).toBe('application/hal+json');
    expect(await raw.json()).toEqual({
      status: 401,
      title: 'Unauthorized Request',
      detail: 'Missing authentication, or failed to authenticate',
      _links: { documentation: { href: 'https://docs.mollie.com/overview/handling-errors', type: 'text/html' } },
    });
  });

  it('tells a Mollie outage from a refusal', async () => {
    mollie.setDown('error');
    try {
      const error = await refusal({ kind: 'apiKey', apiKey: SANDBOX_DEFAULT_API_KEY });
      expect(error.code).toBe('unavailable');
      expect(error.retryable).toBe(true);
    } finally {
      mollie.setDown(null);
    }
  });

  it("learns each GoCardless token's creditor, refuses a revoked one, and tells an outage apart", async () => {
    expect(await identifyCredentials(urls, { kind: 'accessToken', accessToken: gocardless.accessToken })).toBe('CR000SANDBOX01');
    const second = gocardless.creditors.addAccessToken();
    expect(await identifyCredentials(urls, { kind: 'accessToken', accessToken: second.token })).toBe(second.creditorId);
    expect(second.creditorId).not.toBe('CR000SANDBOX01');

    gocardless.creditors.revokeAccessToken(second.token);
    const refused = await refusal({ kind: 'accessToken', accessToken: second.token });
    expect(refused.code).toBe('unauthorized');
    expect(refused.message).toContain('Access token not found');

    gocardless.failNext(1, 503);
    const outage = await refusal({ kind: 'accessToken', accessToken: gocardless.accessToken });
    expect(outage.code).toBe('unavailable');
    expect(outage.retryable).toBe(true);
  });
});
