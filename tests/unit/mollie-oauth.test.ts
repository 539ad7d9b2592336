import { describe, expect, it } from 'vitest';
import { mollieAuthorizeUrl, mollieOAuthAppFromEnv } from '../../src/accounts/mollie-oauth-app.js';
import { OAuthStateError, signOAuthState, verifyOAuthState } from '../../src/accounts/oauth-state.js';
import { ConfigError, parseEnv } from '../../src/config/env.js';

const SECRET = 'unit-test-client-secret';
const payload = { name: 'shop-1', redirectUri: 'https://gw.example/v1/accounts/mollie/connect/callback', expiresAt: Date.now() + 60_000 };

async function refusal(state: string, now?: number): Promise<OAuthStateError> {
  const error = await verifyOAuthState(SECRET, state, now).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(OAuthStateError);
  return error as OAuthStateError;
}

describe('the OAuth state', () => {
  it('verifies what it signed, and no two states are alike', async () => {
    const state = await signOAuthState(SECRET, payload);
    expect(await verifyOAuthState(SECRET, state)).toEqual(payload);
    expect(await signOAuthState(SECRET, payload)).not.toBe(state);
  });

  it('refuses another secret, an altered payload or signature, garbage, and an expired state', async () => {
    const state = await signOAuthState(SECRET, payload);
    const [body, mac] = state.split('.') as [string, string];
    expect((await refusal(await signOAuthState('other-secret', payload))).reason).toBe('forged');
    const otherBody = (await signOAuthState(SECRET, { ...payload, name: 'shop-2' })).split('.')[0]!;
    expect((await refusal(`${otherBody}.${mac}`)).reason).toBe('forged');
    // The first character: every one of its bits is the MAC's (the last one carries padding bits).
    expect((await refusal(`${body}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`)).reason).toBe('forged');
    expect((await refusal('not a state')).reason).toBe('malformed');
    expect((await refusal(state, payload.expiresAt)).reason).toBe('expired');
  });
});

describe('the OAuth app from the environment', () => {
  it('is off without the client id and secret, and refuses one without the other', () => {
    expect(mollieOAuthAppFromEnv(parseEnv({}))).toBeNull();
    expect(() => parseEnv({ MOLLIE_OAUTH_CLIENT_ID: 'app_x' })).toThrow(ConfigError);
    expect(() => parseEnv({ MOLLIE_OAUTH_CLIENT_SECRET: 'secret' })).toThrow(/MOLLIE_OAUTH_CLIENT_ID and MOLLIE_OAUTH_CLIENT_SECRET/);
  });

  it("uses Mollie's two hosts by default, one origin when MOLLIE_OAUTH_URL is set", () => {
    const mollie = mollieOAuthAppFromEnv(parseEnv({ MOLLIE_OAUTH_CLIENT_ID: 'app_x', MOLLIE_OAUTH_CLIENT_SECRET: 's' }))!;
    expect(mollie).toMatchObject({ authorizeUrl: 'https://my.mollie.com/oauth2/authorize', tokensUrl: 'https://api.mollie.com/oauth2/tokens', redirectUri: null });
    const sandbox = mollieOAuthAppFromEnv(parseEnv({ MOLLIE_OAUTH_CLIENT_ID: 'app_x', MOLLIE_OAUTH_CLIENT_SECRET: 's', MOLLIE_OAUTH_URL: 'http://127.0.0.1:9/' }))!;
    expect(sandbox).toMatchObject({ authorizeUrl: 'http://127.0.0.1:9/oauth2/authorize', tokensUrl: 'http://127.0.0.1:9/oauth2/tokens' });
    const url = new URL(mollieAuthorizeUrl(mollie, { redirectUri: 'https://gw.example/cb', state: 'st' }));
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ client_id: 'app_x', redirect_uri: 'https://gw.example/cb', state: 'st', response_type: 'code', scope: 'payments.read refunds.read organizations.read profiles.read' });
  });
});
