/**
 * The Mollie sandbox's credentials: several API keys (each with its own profile) and
 * organization access tokens (each with its organization), who they belong to
 * (GET /v2/profiles/me, GET /v2/organizations/me), and revocation: a revoked or unknown
 * token gets Mollie's 401 from the sandbox's authentication, like any other request.
 */
import type { Context, Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';

export interface SandboxCredential {
  token: string;
  /** oauth: an access token of the OAuth app (oauth.ts), resolved through a source. */
  kind: 'apiKey' | 'organizationToken' | 'oauth';
  profileId: string;
  organizationId: string;
  revoked: boolean;
}

export interface AddCredentialInput {
  /** Default: a fresh test_/access_ token. */
  token?: string;
  profileId?: string;
  organizationId?: string;
}

export interface MollieSandboxAccounts {
  /** Whether a bearer token may call /v2 (known and not revoked). */
  accepts(token: string): boolean;
  get(token: string): SandboxCredential | undefined;
  addApiKey(input?: AddCredentialInput): SandboxCredential;
  addOrganizationToken(input?: AddCredentialInput): SandboxCredential;
  /** From now on the token gets 401, as after a merchant revokes it in Mollie's dashboard. */
  revoke(token: string): void;
  /** Tokens issued elsewhere (the OAuth app's access tokens): asked when a token is not one of these. */
  addSource(lookup: (token: string) => SandboxCredential | undefined): void;
  list(): SandboxCredential[];
}

type HalResponse = (status: number, body: unknown) => Response;
type MollieErrorResponse = (status: number, detail?: string) => Response;

export function createMollieSandboxAccounts(apiKeys: Iterable<string>): MollieSandboxAccounts {
  const credentials = new Map<string, SandboxCredential>();
  const sources: Array<(token: string) => SandboxCredential | undefined> = [];
  const lookup = (token: string) => credentials.get(token) ?? sources.reduce<SandboxCredential | undefined>((found, source) => found ?? source(token), undefined);
  let serial = 0;
  // Sandbox ids: deterministic, in Mollie's shape (prefix_ and letters/digits).
  const nextId = (prefix: 'pfl' | 'org') => `${prefix}_sandbox${++serial}`;

  function add(kind: SandboxCredential['kind'], input: AddCredentialInput): SandboxCredential {
    const token = input.token ?? `${kind === 'apiKey' ? 'test' : 'access'}_sandbox${credentials.size + 1}x${Math.random().toString(36).slice(2, 12)}`;
    const credential: SandboxCredential = {
      token,
      kind,
      profileId: input.profileId ?? nextId('pfl'),
      organizationId: input.organizationId ?? nextId('org'),
      revoked: false,
    };
    credentials.set(token, credential);
    return credential;
  }

  for (const token of apiKeys) add('apiKey', { token });

  return {
    accepts: (token) => lookup(token)?.revoked === false,
    get: lookup,
    addSource: (source) => {
      sources.push(source);
    },
    addApiKey: (input = {}) => add('apiKey', input),
    addOrganizationToken: (input = {}) => add('organizationToken', input),
    revoke(token) {
      const credential = credentials.get(token);
      if (credential) credential.revoked = true;
    },
    list: () => [...credentials.values()],
  };
}

function bearer(c: Context): string {
  return /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
}

function renderProfile(credential: SandboxCredential, baseUrl: string) {
  return {
    resource: 'profile',
    id: credential.profileId,
    mode: credential.token.startsWith('live_') ? 'live' : 'test',
    name: `Sandbox shop ${credential.profileId}`,
    website: 'https://shop.example',
    email: 'shop@example.com',
    phone: '+31208202070',
    businessCategory: null,
    status: 'verified',
    createdAt: '2026-01-01T00:00:00+00:00',
    _links: {
      self: { href: `${baseUrl}/v2/profiles/${credential.profileId}`, type: 'application/hal+json' },
      dashboard: { href: `https://my.mollie.com/dashboard/${credential.organizationId}/settings/profiles/${credential.profileId}`, type: 'text/html' },
      documentation: { href: 'https://docs.mollie.com/reference/get-current-profile', type: 'text/html' },
    },
  };
}

function renderOrganization(credential: SandboxCredential, baseUrl: string) {
  return {
    resource: 'organization',
    id: credential.organizationId,
    name: `Sandbox organization ${credential.organizationId}`,
    email: 'owner@example.com',
    locale: 'en_US',
    _links: {
      self: { href: `${baseUrl}/v2/organizations/${credential.organizationId}`, type: 'application/hal+json' },
      dashboard: { href: `https://my.mollie.com/dashboard/${credential.organizationId}`, type: 'text/html' },
      documentation: { href: 'https://docs.mollie.com/reference/get-current-organization', type: 'text/html' },
    },
  };
}

/**
 * GET /v2/profiles/me (API keys) and GET /v2/organizations/me (organization tokens), on
 * the API behind its authentication; and /__sandbox/credentials to add and revoke tokens.
 */
export function mountMollieAccountRoutes(
  app: Hono<{ Bindings: HttpBindings }>,
  accounts: MollieSandboxAccounts,
  render: { hal: HalResponse; error: MollieErrorResponse; baseUrl: () => string },
): void {
  app.get('/v2/profiles/me', (c) => {
    const credential = accounts.get(bearer(c))!;
    // [U] Mollie's exact answer to an organization token here; the sandbox refuses it.
    if (credential.kind !== 'apiKey') return render.error(403, 'The current profile is only available with an API key');
    return render.hal(200, renderProfile(credential, render.baseUrl()));
  });
  app.get('/v2/organizations/me', (c) => {
    const credential = accounts.get(bearer(c))!;
    if (credential.kind === 'apiKey') return render.error(403, 'The current organization is only available with an organization access token or OAuth');
    return render.hal(200, renderOrganization(credential, render.baseUrl()));
  });

  app.get('/__sandbox/credentials', (c) => c.json({ credentials: accounts.list() }));
  app.post('/__sandbox/credentials', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as AddCredentialInput & { kind?: string };
    const credential = body.kind === 'organizationToken' ? accounts.addOrganizationToken(body) : accounts.addApiKey(body);
    return c.json(credential, 201);
  });
  app.post('/__sandbox/credentials/:token/revoke', (c) => {
    const token = c.req.param('token');
    if (!accounts.get(token)) return c.json({ error: `no credential ${token}` }, 404);
    accounts.revoke(token);
    return c.json(accounts.get(token));
  });
}
