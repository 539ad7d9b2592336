/**
 * The Mollie sandbox's OAuth app (Mollie Connect): the authorize step, the token endpoint
 * and revocation, and the access tokens it issues authenticating /v2 like API keys do.
 *
 * - GET /oauth2/authorize (client_id, redirect_uri, state, scope): approves at once, as if
 *   the merchant clicked "Authorize", and redirects to redirect_uri?code=...&state=....
 *   Sandbox-only: `sandbox_organization=org_...` picks the merchant (default: one fixed
 *   organization), `sandbox_deny=1` answers as a merchant who refused (error=access_denied).
 * - POST /oauth2/tokens (HTTP Basic with the client id and secret; form or JSON body):
 *   grant_type authorization_code (single use, bound to its redirect_uri) or refresh_token
 *   (rotates: the old refresh token stops working). Refusals in OAuth's shape:
 *   400 {error: "invalid_grant", error_description}.
 * - DELETE /oauth2/tokens ({token, token_type_hint}): a refresh token revokes its whole
 *   grant, an access token only itself.
 * - Access tokens expire after a configurable lifetime (seconds in tests); an expired or
 *   revoked one gets Mollie's 401 from the API's authentication.
 * - /__sandbox/oauth: stats (refreshes counted for tests), the lifetime, and revoking an
 *   organization's grants as a merchant does in Mollie's dashboard.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import type { MollieSandboxAccounts, SandboxCredential } from './accounts.js';

export const SANDBOX_OAUTH_CLIENT_ID = 'app_sandbox';
export const SANDBOX_OAUTH_CLIENT_SECRET = 'sandbox-oauth-client-secret';
export const SANDBOX_OAUTH_ORGANIZATION = 'org_sandboxoauth';
const CODE_LIFETIME_MS = 10 * 60_000;
const DEFAULT_ACCESS_TOKEN_LIFETIME_MS = 3_600_000;

export interface MollieSandboxOAuthOptions {
  clientId?: string;
  clientSecret?: string;
  /** Default one hour, as Mollie. */
  accessTokenLifetimeMs?: number;
}

interface Grant {
  id: number;
  organizationId: string;
  profileId: string;
  scope: string;
  refreshToken: string;
  revoked: boolean;
  /** When the newest access token of the grant expires (epoch ms). */
  latestExpiresAt: number;
}

interface AccessToken {
  grant: Grant;
  expiresAt: number;
  revoked: boolean;
}

export interface SandboxRefreshRecord {
  /** The refresh token presented. */
  refreshToken: string;
  organizationId: string;
  at: Date;
  /**
   * How long the grant's newest access token still had when this refresh came: a client
   * that refreshes once per expiry only refreshes when this is under its margin.
   */
  remainingMs: number | null;
  /** invalid_grant when refused. */
  outcome: 'refreshed' | 'invalid_grant';
}

export interface SandboxOAuthStats {
  codeExchanges: number;
  /** Successful refresh_token grants. */
  refreshes: number;
  /** Refusals with invalid_grant, of codes and refresh tokens. */
  invalidGrants: number;
  refreshLog: SandboxRefreshRecord[];
}

export interface MollieSandboxOAuth {
  clientId: string;
  clientSecret: string;
  setAccessTokenLifetime(ms: number): void;
  /** As if the merchant of `organizationId` approved: a code for `redirectUri`. */
  approve(input: { redirectUri: string; organizationId?: string; scope?: string }): string;
  /** Revokes every grant of the organization (the merchant removed the app). */
  revokeOrganization(organizationId: string): number;
  stats(): SandboxOAuthStats;
  resetStats(): void;
}

type MollieErrorResponse = (status: number, detail?: string) => Response;

const random = (bytes = 18) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...globalThis.crypto.getRandomValues(new Uint8Array(bytes))].map((byte) => alphabet[byte % alphabet.length]).join('');
};

function oauthError(status: number, error: string, description: string): Response {
  return new Response(JSON.stringify({ error, error_description: description }), { status, headers: { 'Content-Type': 'application/json' } });
}

export function createMollieSandboxOAuth(accounts: MollieSandboxAccounts, options: MollieSandboxOAuthOptions = {}) {
  const clientId = options.clientId ?? SANDBOX_OAUTH_CLIENT_ID;
  const clientSecret = options.clientSecret ?? SANDBOX_OAUTH_CLIENT_SECRET;
  let lifetimeMs = options.accessTokenLifetimeMs ?? DEFAULT_ACCESS_TOKEN_LIFETIME_MS;
  const codes = new Map<string, { organizationId: string; redirectUri: string; scope: string; expiresAt: number }>();
  const grantsByRefresh = new Map<string, Grant>();
  const grants: Grant[] = [];
  const accessTokens = new Map<string, AccessToken>();
  const stats: SandboxOAuthStats = { codeExchanges: 0, refreshes: 0, invalidGrants: 0, refreshLog: [] };

  // The API's authentication asks here for tokens it does not know.
  accounts.addSource((token): SandboxCredential | undefined => {
    const access = accessTokens.get(token);
    if (!access) return undefined;
    const usable = !access.revoked && !access.grant.revoked && access.expiresAt > Date.now();
    return { token, kind: 'oauth', profileId: access.grant.profileId, organizationId: access.grant.organizationId, revoked: !usable };
  });

  function issue(grant: Grant) {
    const accessToken = `access_oauth${random()}`;
    grant.latestExpiresAt = Date.now() + lifetimeMs;
    accessTokens.set(accessToken, { grant, expiresAt: grant.latestExpiresAt, revoked: false });
    return {
      access_token: accessToken,
      refresh_token: grant.refreshToken,
      expires_in: Math.max(1, Math.round(lifetimeMs / 1000)),
      token_type: 'bearer',
      scope: grant.scope,
    };
  }

  function approve(input: { redirectUri: string; organizationId?: string; scope?: string }): string {
    const code = `auth_${random()}`;
    codes.set(code, { organizationId: input.organizationId ?? SANDBOX_OAUTH_ORGANIZATION, redirectUri: input.redirectUri, scope: input.scope ?? '', expiresAt: Date.now() + CODE_LIFETIME_MS });
    return code;
  }

  function authenticated(c: Context): boolean {
    const match = /^Basic\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
    if (!match) return false;
    try {
      return atob(match[1]!) === `${clientId}:${clientSecret}`;
    } catch {
      return false;
    }
  }

  async function formOf(c: Context): Promise<Record<string, string>> {
    const type = c.req.header('content-type') ?? '';
    const text = await c.req.text();
    if (type.includes('application/json')) {
      const parsed = JSON.parse(text || '{}') as Record<string, unknown>;
      return Object.fromEntries(Object.entries(parsed).map(([key, value]) => [key, String(value)]));
    }
    return Object.fromEntries(new URLSearchParams(text));
  }

  function refuseGrant(description: string): Response {
    stats.invalidGrants++;
    return oauthError(400, 'invalid_grant', description);
  }

  function exchangeCode(form: Record<string, string>): Response {
    const entry = codes.get(form.code ?? '');
    if (!entry || entry.expiresAt <= Date.now()) return refuseGrant('The authorization code is invalid, expired or already used');
    if (entry.redirectUri !== form.redirect_uri) return refuseGrant('The redirect_uri does not match the one of the authorization request');
    codes.delete(form.code!);
    const grant: Grant = {
      id: grants.length + 1,
      organizationId: entry.organizationId,
      // Mollie's organizations have profiles; the sandbox gives each organization one.
      profileId: `pfl_${entry.organizationId.replace(/^org_/, '')}`,
      scope: entry.scope,
      refreshToken: `refresh_${random()}`,
      revoked: false,
      latestExpiresAt: 0,
    };
    grants.push(grant);
    grantsByRefresh.set(grant.refreshToken, grant);
    stats.codeExchanges++;
    return Response.json(issue(grant));
  }

  function refresh(form: Record<string, string>): Response {
    const presented = form.refresh_token ?? '';
    const grant = grantsByRefresh.get(presented);
    const record = (outcome: SandboxRefreshRecord['outcome']) => {
      const remainingMs = grant ? grant.latestExpiresAt - Date.now() : null;
      stats.refreshLog.push({ refreshToken: presented, organizationId: grant?.organizationId ?? '', at: new Date(), remainingMs, outcome });
      if (stats.refreshLog.length > 10_000) stats.refreshLog.splice(0, stats.refreshLog.length - 10_000);
    };
    if (!grant || grant.revoked || grant.refreshToken !== presented) {
      record('invalid_grant');
      return refuseGrant('The refresh token is invalid or has been revoked');
    }
    // Rotation: the refresh token just used stops working.
    grantsByRefresh.delete(presented);
    grant.refreshToken = `refresh_${random()}`;
    grantsByRefresh.set(grant.refreshToken, grant);
    stats.refreshes++;
    record('refreshed');
    return Response.json(issue(grant));
  }

  function revokeOrganization(organizationId: string): number {
    const revoked = grants.filter((grant) => grant.organizationId === organizationId && !grant.revoked);
    for (const grant of revoked) grant.revoked = true;
    return revoked.length;
  }

  const handle: MollieSandboxOAuth = {
    clientId,
    clientSecret,
    setAccessTokenLifetime(ms) {
      lifetimeMs = ms;
    },
    approve,
    revokeOrganization,
    stats: () => ({ ...stats, refreshLog: [...stats.refreshLog] }),
    resetStats() {
      stats.codeExchanges = 0;
      stats.refreshes = 0;
      stats.invalidGrants = 0;
      stats.refreshLog.length = 0;
    },
  };

  function mount(app: Hono<{ Bindings: HttpBindings }>, render: { error: MollieErrorResponse }): void {
    app.get('/oauth2/authorize', (c) => {
      const query = new URL(c.req.url).searchParams;
      if (query.get('client_id') !== clientId) return render.error(400, `Unknown client_id ${query.get('client_id') ?? '(none)'}`);
      const redirectUri = query.get('redirect_uri');
      if (!redirectUri || !URL.canParse(redirectUri)) return render.error(400, 'The redirect_uri is missing or not a URL');
      if (query.get('response_type') && query.get('response_type') !== 'code') return render.error(400, 'The response_type must be code');
      const target = new URL(redirectUri);
      const state = query.get('state');
      if (query.get('sandbox_deny') === '1') {
        target.searchParams.set('error', 'access_denied');
        target.searchParams.set('error_description', 'The merchant did not authorize the app');
      } else {
        const code = approve({ redirectUri, organizationId: query.get('sandbox_organization') ?? undefined, scope: query.get('scope') ?? '' });
        target.searchParams.set('code', code);
      }
      if (state !== null) target.searchParams.set('state', state);
      return c.redirect(target.toString(), 302);
    });

    app.post('/oauth2/tokens', async (c) => {
      if (!authenticated(c)) return oauthError(401, 'invalid_client', 'Client authentication failed');
      const form = await formOf(c).catch(() => null);
      if (!form) return oauthError(400, 'invalid_request', 'The body does not parse');
      switch (form.grant_type) {
        case 'authorization_code':
          return exchangeCode(form);
        case 'refresh_token':
          return refresh(form);
        default:
          return oauthError(400, 'unsupported_grant_type', `grant_type must be authorization_code or refresh_token, not ${form.grant_type ?? '(none)'}`);
      }
    });

    app.delete('/oauth2/tokens', async (c) => {
      if (!authenticated(c)) return oauthError(401, 'invalid_client', 'Client authentication failed');
      const form = await formOf(c).catch(() => null);
      const token = form?.token ?? '';
      const grant = grantsByRefresh.get(token);
      if (grant) grant.revoked = true;
      const access = accessTokens.get(token);
      if (access) access.revoked = true;
      // RFC 7009: an unknown token is answered like a revoked one.
      return new Response(null, { status: 204 });
    });

    app.get('/__sandbox/oauth', (c) => c.json({ clientId, accessTokenLifetimeMs: lifetimeMs, stats: handle.stats(), grants: grants.map(({ refreshToken: _hidden, ...grant }) => grant) }));
    app.post('/__sandbox/oauth/config', async (c) => {
      const body = (await c.req.json().catch(() => ({}))) as { accessTokenLifetimeMs?: unknown };
      if (typeof body.accessTokenLifetimeMs !== 'number' || !(body.accessTokenLifetimeMs > 0)) return c.json({ error: 'accessTokenLifetimeMs must be a positive number' }, 400);
      lifetimeMs = body.accessTokenLifetimeMs;
      return c.json({ accessTokenLifetimeMs: lifetimeMs });
    });
    app.post('/__sandbox/oauth/organizations/:organizationId/revoke', (c) => c.json({ revokedGrants: revokeOrganization(c.req.param('organizationId')) }));
    app.post('/__sandbox/oauth/stats/reset', (c) => {
      handle.resetStats();
      return c.json(handle.stats());
    });
  }

  return { handle, mount };
}
