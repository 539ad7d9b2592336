/**
 * The GoCardless sandbox's access tokens beyond the first: each token acts for its own
 * creditor (GET /creditors answers it), tokens can be added and revoked while the sandbox
 * runs, and a revoked token gets GoCardless's 401 `access_token_not_found` from the
 * sandbox's authentication, like any unknown token.
 */
import type { Context, Hono, Env } from 'hono';

export interface GoCardlessSandboxCreditors {
  /** Adds a token (default: a fresh one) acting for `creditorId` (default: a fresh id). */
  addAccessToken(input?: { token?: string; creditorId?: string }): { token: string; creditorId: string };
  /** From now on the token gets 401. */
  revokeAccessToken(token: string): void;
  creditorFor(token: string): string | undefined;
}

/**
 * `accessTokens` is the sandbox's own list of accepted tokens: adding and revoking edit
 * it in place, so its authentication needs no change. The first token keeps the
 * sandbox's configured creditor id; the others get CR000SANDBOX02, 03, ...
 */
export function createGoCardlessSandboxCreditors(accessTokens: string[], firstCreditorId: string): GoCardlessSandboxCreditors {
  const creditors = new Map<string, string>();
  let serial = 1;
  const nextCreditorId = () => `CR000SANDBOX${String(++serial).padStart(2, '0')}`;
  accessTokens.forEach((token, index) => creditors.set(token, index === 0 ? firstCreditorId : nextCreditorId()));

  return {
    addAccessToken(input = {}) {
      const token = input.token ?? `sandbox_token_${Math.random().toString(36).slice(2, 14)}`;
      const creditorId = input.creditorId ?? nextCreditorId();
      if (!accessTokens.includes(token)) accessTokens.push(token);
      creditors.set(token, creditorId);
      return { token, creditorId };
    },
    revokeAccessToken(token) {
      const index = accessTokens.indexOf(token);
      if (index >= 0) accessTokens.splice(index, 1);
    },
    creditorFor: (token) => creditors.get(token),
  };
}

function creditorJson(id: string) {
  return {
    id,
    created_at: '2026-01-01T00:00:00.000Z',
    name: `Sandbox creditor ${id}`,
    address_line1: '338-346 Goswell Road',
    city: 'London',
    postal_code: 'EC1V 7LQ',
    country_code: 'GB',
    logo_url: null,
    verification_status: 'successful',
    can_create_refunds: true,
    fx_payout_currency: null,
    links: {},
  };
}

/**
 * GET /creditors (behind the sandbox's authentication) and /__sandbox/access-tokens to
 * add and revoke tokens.
 */
export function mountGoCardlessCreditorRoutes<E extends Env>(app: Hono<E>, creditors: GoCardlessSandboxCreditors, json: (status: number, body: unknown) => Response): void {
  const bearer = (c: Context<E>) => c.req.header('authorization')?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? '';
  app.get('/creditors', (c) => {
    const creditorId = creditors.creditorFor(bearer(c));
    return json(200, { creditors: creditorId ? [creditorJson(creditorId)] : [], meta: { cursors: { before: null, after: null }, limit: 50 } });
  });
  app.post('/__sandbox/access-tokens', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { token?: string; creditorId?: string };
    return json(201, creditors.addAccessToken(body));
  });
  app.post('/__sandbox/access-tokens/:token/revoke', (c) => {
    creditors.revokeAccessToken(c.req.param('token'));
    return json(200, { revoked: c.req.param('token') });
  });
}
