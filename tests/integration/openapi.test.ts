/**
 * The published contract: the served OpenAPI document is valid OpenAPI 3.1, equals the
 * committed openapi.json (and schemas/events/*.json), names every route the app really
 * has, and every documented operation answers a valid and an invalid request the way
 * the document says (status documented, JSON body matching its schema).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForRedis, type Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { contractFiles } from '../../src/http/contract-files.js';
import { appRoutes } from '../../src/http/route-table.js';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import { createScriptedProvider } from '../../src/sandbox/scripted-provider.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { writeGatewayEvent } from '../helpers/outbound-events.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GC_SECRET = 'openapi-test-gocardless-secret';

let database: TestDatabase;
let deps: Deps;
let app: ReturnType<typeof createApp>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is plain JSON here.
let document: any;

beforeAll(async () => {
  database = await createTestDatabase();
  const mollie = createScriptedProvider({ name: 'mollie' });
  const gocardless = createScriptedProvider({ name: 'gocardless' });
  mollie.script({ id: 'tr_openapi1', startedAt: Date.now() - 60_000, steps: [{ atMs: 0, providerStatus: 'paid' }], amountMinor: 1000 });
  deps = buildTestDeps(
    { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, GOCARDLESS_WEBHOOK_SECRETS: GC_SECRET },
    { providers: { mollie, gocardless }, lockKeyPrefix: redisPrefix('openapi') },
  );
  app = createApp(deps);
  await waitForRedis(deps);
  document = await (await app.request('/openapi.json')).json();
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

const toOpenApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const result = await new Validator().validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe('3.1.0');
  });

  it('equals the committed openapi.json and schemas/events/*.json (npm run contract regenerates them)', () => {
    expect(document).toEqual(JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8')));
    for (const [path, text] of Object.entries(contractFiles())) {
      expect(readFileSync(join(ROOT, path), 'utf8'), `${path} is out of date: run npm run contract`).toBe(text);
    }
  });

  it('names every route the app has, and nothing it does not', () => {
    const real = appRoutes(app).map((route) => `${route.method.toLowerCase()} ${toOpenApiPath(route.path)}`);
    const documented = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method} ${path}`),
    );
    expect(real.length).toBeGreaterThan(20);
    expect(real.filter((route) => !documented.includes(route))).toEqual([]);
    expect(documented.filter((route) => !real.includes(route))).toEqual([]);
  });

  it('describes every event type in webhooks, with its schema', () => {
    expect(Object.keys(document.webhooks)).toEqual(expect.arrayContaining(['payment.paid', 'payment.refunded', 'payment.charged_back', 'payment.stuck', 'gateway.poller.degraded']));
    for (const item of Object.values(document.webhooks) as Array<{ post: { requestBody: { content: Record<string, { schema: { $ref: string } }> } } }>) {
      const ref = item.post.requestBody.content['application/json']!.schema.$ref;
      expect(document.components.schemas[ref.split('/').at(-1)!]).toBeDefined();
    }
  });

  it('is served as a readable page under a strict CSP, with no script', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'; style-src 'sha256-/);
    const html = await res.text();
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('/v1/payments/{provider}/{id}/sync');
    expect(html).toContain('payment.refunded');
  });
});

interface Call {
  method?: string;
  /** A well-formed request for something that does not exist answers this (documented) status. */
  expect?: number;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

function gocardlessBatch(): Call {
  const body = JSON.stringify({ events: [{ id: 'EVOPENAPI1', created_at: new Date().toISOString(), resource_type: 'mandates', action: 'created', links: { mandate: 'MD0001' }, details: { origin: 'api', cause: 'mandate_created' }, metadata: {} }] });
  return { method: 'POST', path: '/webhooks/gocardless', headers: { 'content-type': 'application/json', 'webhook-signature': signGoCardlessBody(body, GC_SECRET) }, body };
}

/**
 * A valid and an invalid request for every documented operation. An operation missing
 * here fails the walk, so a new route comes with its cases. `invalid: null` only for
 * operations that take no input at all.
 */
function cases(eventId: string): Record<string, { valid: Call; invalid: Call | null }> {
  const json = { ...auth, 'content-type': 'application/json' };
  return {
    'get /healthz': { valid: { path: '/healthz' }, invalid: null },
    'get /readyz': { valid: { path: '/readyz' }, invalid: null },
    'get /metrics': { valid: { path: '/metrics' }, invalid: null },
    'get /openapi.json': { valid: { path: '/openapi.json' }, invalid: null },
    'get /docs': { valid: { path: '/docs' }, invalid: null },
    'post /webhooks/mollie': {
      valid: { method: 'POST', path: '/webhooks/mollie', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=tr_openapi1' },
      invalid: { method: 'POST', path: '/webhooks/mollie', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'nothing=here' },
    },
    'post /webhooks/mollie/{account}': {
      valid: { method: 'POST', path: '/webhooks/mollie/default', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=tr_openapi1' },
      invalid: { method: 'POST', path: '/webhooks/mollie/no%20such%20account', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=tr_openapi1' },
    },
    'post /webhooks/gocardless': {
      valid: gocardlessBatch(),
      invalid: { method: 'POST', path: '/webhooks/gocardless', headers: { 'content-type': 'application/json', 'webhook-signature': 'ff'.repeat(32) }, body: '{"events":[]}' },
    },
    'post /webhooks/gocardless/{account}': {
      valid: { ...gocardlessBatch(), path: '/webhooks/gocardless/default' },
      invalid: { ...gocardlessBatch(), path: '/webhooks/gocardless/default', headers: { 'content-type': 'application/json' } },
    },
    'get /v1/payments': {
      valid: { path: '/v1/payments?provider=mollie&limit=5', headers: auth },
      invalid: { path: '/v1/payments?limit=0&colour=red', headers: auth },
    },
    'post /v1/payments': {
      valid: { method: 'POST', path: '/v1/payments', headers: json, body: JSON.stringify({ provider: 'mollie', id: 'tr_openapi1' }) },
      invalid: { method: 'POST', path: '/v1/payments', headers: json, body: JSON.stringify({ provider: 'paypal', id: 'x' }) },
    },
    'get /v1/payments/{provider}/{id}': {
      valid: { path: '/v1/payments/mollie/tr_openapi1', headers: auth },
      invalid: { path: '/v1/payments/paypal/tr_openapi1', headers: auth },
    },
    'post /v1/payments/{provider}/{id}/sync': {
      valid: { method: 'POST', path: '/v1/payments/mollie/tr_openapi1/sync', headers: auth },
      invalid: { method: 'POST', path: '/v1/payments/mollie/bad%20id/sync', headers: auth },
    },
    'get /v1/events': {
      valid: { path: '/v1/events?limit=10&type=payment.,gateway.', headers: auth },
      invalid: { path: '/v1/events?type=Payment!', headers: auth },
    },
    'get /v1/events/{id}': {
      valid: { path: `/v1/events/${eventId}`, headers: auth },
      invalid: { path: '/v1/events/not-an-event', headers: auth },
    },
    'get /v1/dead-letters': {
      valid: { path: '/v1/dead-letters?limit=5', headers: auth },
      invalid: { path: '/v1/dead-letters?sink=nope', headers: auth },
    },
    'post /v1/dead-letters/{id}/redrive': {
      valid: { method: 'POST', path: '/v1/dead-letters/1/redrive', headers: auth, expect: 404 },
      invalid: { method: 'POST', path: '/v1/dead-letters/abc/redrive', headers: auth },
    },
    'get /v1/event-sinks': {
      valid: { path: '/v1/event-sinks', headers: auth },
      invalid: { path: '/v1/event-sinks?page=2', headers: auth },
    },
    'post /v1/event-sinks/{id}/enable': {
      valid: { method: 'POST', path: '/v1/event-sinks/snk_0123456789abcdef/enable', headers: auth, expect: 404 },
      invalid: { method: 'POST', path: '/v1/event-sinks/sink-1/enable', headers: auth },
    },
    'get /v1/deliveries': {
      valid: { path: '/v1/deliveries?state=dead&type=payment.&from=2026-01-01&limit=5', headers: auth },
      invalid: { path: '/v1/deliveries?from=yesterday', headers: auth },
    },
    'get /v1/deliveries/{id}': {
      valid: { path: '/v1/deliveries/1', headers: auth, expect: 404 },
      invalid: { path: '/v1/deliveries/abc', headers: auth },
    },
    'post /v1/deliveries/redrive': {
      valid: { method: 'POST', path: '/v1/deliveries/redrive', headers: json, body: JSON.stringify({ type: 'payment.', to: '2026-01-01T00:00:00Z' }) },
      invalid: { method: 'POST', path: '/v1/deliveries/redrive', headers: json, body: JSON.stringify({ state: 'pending' }) },
    },
    'get /v1/event-sinks/{id}': {
      valid: { path: '/v1/event-sinks/snk_0123456789abcdef', headers: auth, expect: 404 },
      invalid: { path: '/v1/event-sinks/sink-1', headers: auth },
    },
    'post /v1/event-sinks/{id}/disable': {
      valid: { method: 'POST', path: '/v1/event-sinks/snk_0123456789abcdef/disable', headers: auth, expect: 404 },
      invalid: { method: 'POST', path: '/v1/event-sinks/sink-1/disable', headers: auth },
    },
    'post /v1/event-sinks/{id}/test': {
      valid: { method: 'POST', path: '/v1/event-sinks/snk_0123456789abcdef/test', headers: auth, expect: 404 },
      invalid: { method: 'POST', path: '/v1/event-sinks/sink-1/test', headers: auth },
    },
    'get /console': { valid: { path: '/console' }, invalid: null },
    'get /console/deliveries': { valid: { path: '/console/deliveries' }, invalid: null },
    'get /console/deliveries/{id}': { valid: { path: '/console/deliveries/1' }, invalid: null },
    'post /console/deliveries/redrive': {
      valid: { method: 'POST', path: '/console/deliveries/redrive', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/deliveries/redrive' },
    },
    'get /console/sinks/{id}': { valid: { path: '/console/sinks/snk_0123456789abcdef' }, invalid: null },
    'post /console/sinks/{id}/enable': {
      valid: { method: 'POST', path: '/console/sinks/snk_0123456789abcdef/enable', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/sinks/snk_0123456789abcdef/enable' },
    },
    'post /console/sinks/{id}/disable': {
      valid: { method: 'POST', path: '/console/sinks/snk_0123456789abcdef/disable', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/sinks/snk_0123456789abcdef/disable' },
    },
    'post /console/sinks/{id}/test': {
      valid: { method: 'POST', path: '/console/sinks/snk_0123456789abcdef/test', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/sinks/snk_0123456789abcdef/test' },
    },
    'get /console/sign-in': { valid: { path: '/console/sign-in' }, invalid: null },
    'post /console/sign-in': {
      valid: { method: 'POST', path: '/console/sign-in', headers: { origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(TEST_ADMIN_TOKEN)}` },
      invalid: { method: 'POST', path: '/console/sign-in', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' },
    },
    'post /console/sign-out': {
      valid: { method: 'POST', path: '/console/sign-out', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/sign-out' },
    },
    'get /console/payments': { valid: { path: '/console/payments' }, invalid: null },
    'get /console/payments/{provider}/{id}': { valid: { path: '/console/payments/mollie/tr_openapi1' }, invalid: null },
    'get /console/pollers': { valid: { path: '/console/pollers' }, invalid: null },
    'get /console/outbox': { valid: { path: '/console/outbox' }, invalid: null },
    'post /console/dead-letters/{id}/redrive': {
      valid: { method: 'POST', path: '/console/dead-letters/1/redrive', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/dead-letters/1/redrive' },
    },
    'get /console/receipts': { valid: { path: '/console/receipts' }, invalid: null },
    'post /console/receipts/{id}/reprocess': {
      valid: { method: 'POST', path: '/console/receipts/1/reprocess', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/receipts/1/reprocess' },
    },
    'post /console/payments/{provider}/{id}/sync': {
      valid: { method: 'POST', path: '/console/payments/mollie/tr_openapi1/sync', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/payments/mollie/tr_openapi1/sync' },
    },
    'get /console/requests': { valid: { path: '/console/requests' }, invalid: null },
    'get /console/audit': { valid: { path: '/console/audit' }, invalid: null },
    'get /console/bank': { valid: { path: '/console/bank' }, invalid: null },
    'get /console/accounts': { valid: { path: '/console/accounts' }, invalid: null },
    'post /console/accounts/{provider}/{name}/check': {
      valid: { method: 'POST', path: '/console/accounts/mollie/shop-1/check', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/accounts/mollie/shop-1/check' },
    },
    'post /console/accounts/{provider}/{name}/disable': {
      valid: { method: 'POST', path: '/console/accounts/mollie/shop-1/disable', headers: { origin: 'http://localhost' } },
      invalid: { method: 'POST', path: '/console/accounts/mollie/shop-1/disable' },
    },
    'post /v1/accounts': {
      // No ACCOUNT_SECRETS_KEY in this app: a well-formed creation answers 503 naming it.
      valid: { method: 'POST', path: '/v1/accounts', headers: json, body: JSON.stringify({ provider: 'mollie', name: 'openapi-shop', credentials: { apiKey: 'test_openapi123' } }), expect: 503 },
      invalid: { method: 'POST', path: '/v1/accounts', headers: json, body: JSON.stringify({ provider: 'mollie', name: 'Not A Name', credentials: { accessToken: 'x' } }) },
    },
    'get /v1/accounts': {
      valid: { path: '/v1/accounts?provider=mollie&limit=5', headers: auth },
      invalid: { path: '/v1/accounts?status=lost', headers: auth },
    },
    'get /v1/accounts/mollie/connect': {
      valid: { path: '/v1/accounts/mollie/connect?name=openapi-shop', headers: auth, expect: 503 },
      invalid: { path: '/v1/accounts/mollie/connect?name=Not%20A%20Name', headers: auth },
    },
    'get /v1/accounts/mollie/connect/callback': {
      valid: { path: '/v1/accounts/mollie/connect/callback?code=auth_x&state=abc.def', expect: 503 },
      invalid: { path: '/v1/accounts/mollie/connect/callback?code=auth_x' },
    },
    'get /v1/accounts/{provider}/{name}': {
      valid: { path: '/v1/accounts/mollie/no-such-shop', headers: auth, expect: 404 },
      invalid: { path: '/v1/accounts/stripe/shop', headers: auth },
    },
    'patch /v1/accounts/{provider}/{name}': {
      valid: { method: 'PATCH', path: '/v1/accounts/mollie/no-such-shop', headers: json, body: JSON.stringify({ disabled: true }), expect: 404 },
      invalid: { method: 'PATCH', path: '/v1/accounts/mollie/no-such-shop', headers: json, body: JSON.stringify({ disabled: 'yes' }) },
    },
    'post /v1/accounts/{provider}/{name}/check': {
      valid: { method: 'POST', path: '/v1/accounts/mollie/no-such-shop/check', headers: auth, expect: 404 },
      invalid: { method: 'POST', path: '/v1/accounts/stripe/shop/check', headers: auth },
    },
    'delete /v1/accounts/{provider}/{name}': {
      valid: { method: 'DELETE', path: '/v1/accounts/gocardless/no-such-shop', headers: auth, expect: 404 },
      invalid: { method: 'DELETE', path: '/v1/accounts/gocardless/Bad%20Name', headers: auth },
    },
    'post /v1/bank-connections': {
      valid: { method: 'POST', path: '/v1/bank-connections', headers: json, body: JSON.stringify({ institutionId: 'SANDBOXFINANCE_SFIN0000', reference: 'openapi-1', redirectUrl: 'https://example.com/back' }), expect: 503 },
      invalid: { method: 'POST', path: '/v1/bank-connections', headers: json, body: JSON.stringify({ institutionId: 'x', reference: '', redirectUrl: 'ftp://x' }) },
    },
    'get /v1/bank-connections': {
      valid: { path: '/v1/bank-connections?limit=5', headers: auth },
      invalid: { path: '/v1/bank-connections?status=lost', headers: auth },
    },
    'get /v1/bank-connections/{id}': {
      valid: { path: '/v1/bank-connections/bcn_0000000000000', headers: auth, expect: 404 },
      invalid: { path: '/v1/bank-connections/nope', headers: auth },
    },
    'delete /v1/bank-connections/{id}': {
      valid: { method: 'DELETE', path: '/v1/bank-connections/bcn_0000000000000', headers: auth, expect: 404 },
      invalid: { method: 'DELETE', path: '/v1/bank-connections/nope', headers: auth },
    },
    'post /v1/bank-connections/{id}/sync': {
      valid: { method: 'POST', path: '/v1/bank-connections/bcn_0000000000000/sync', headers: auth, expect: 404 },
      invalid: { method: 'POST', path: '/v1/bank-connections/nope/sync', headers: auth },
    },
    'get /v1/bank-transactions': {
      valid: { path: '/v1/bank-transactions?status=booked&limit=5', headers: auth },
      invalid: { path: '/v1/bank-transactions?status=lost', headers: auth },
    },
    'get /v1/receipts': {
      valid: { path: '/v1/receipts?state=failed&limit=5', headers: auth },
      invalid: { path: '/v1/receipts?state=lost', headers: auth },
    },
    'get /v1/webhook-requests': {
      valid: { path: '/v1/webhook-requests?provider=mollie&limit=5', headers: auth },
      invalid: { path: '/v1/webhook-requests?outcome=Not-An-Outcome', headers: auth },
    },
  };
}

describe('every documented operation, walked', () => {
  it('answers a valid and an invalid request as documented', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const eventId = await writeGatewayEvent(deps.db, 'openapi-walk');
    const table = cases(eventId);
    const operations = Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>).flatMap(
      ([path, item]) => Object.entries(item).map(([method, operation]) => ({ key: `${method} ${path}`, operation })),
    );
    expect(operations.filter(({ key }) => !table[key]).map(({ key }) => key)).toEqual([]);

    const problems: string[] = [];
    let checkedBodies = 0;
    for (const { key, operation } of operations) {
      const { valid, invalid } = table[key]!;
      for (const [kind, call] of [['valid', valid], ['invalid', invalid]] as const) {
        if (!call) continue;
        const res = await app.request(call.path, { method: call.method ?? 'GET', headers: call.headers, body: call.body });
        const response = operation.responses[String(res.status)] ?? operation.responses.default;
        if (!response) {
          problems.push(`${key} (${kind}): ${res.status} is not documented (${(await res.text()).slice(0, 200)})`);
          continue;
        }
        if (call.expect !== undefined && res.status !== call.expect) problems.push(`${key} (${kind}): answered ${res.status}, expected ${call.expect}`);
        if (kind === 'valid' && call.expect === undefined && res.status >= 400) problems.push(`${key} (valid): answered ${res.status}: ${(await res.clone().text()).slice(0, 200)}`);
        if (kind === 'invalid' && res.status < 400) problems.push(`${key} (invalid): answered ${res.status}`);
        const type = res.headers.get('content-type')?.split(';')[0] ?? null;
        if (!response.content) continue;
        const media = type ? response.content[type] : undefined;
        if (!media) {
          problems.push(`${key} (${kind}): ${res.status} answered ${type}, documented ${Object.keys(response.content).join(', ')}`);
          continue;
        }
        if (type !== 'application/json') continue;
        const validate = ajv.compile({ ...(media.schema as object), components: document.components });
        const body = await res.json();
        checkedBodies++;
        if (!validate(body)) problems.push(`${key} (${kind}): ${res.status} body does not match: ${ajv.errorsText(validate.errors)}`);
      }
    }
    expect(problems).toEqual([]);
    expect(checkedBodies).toBeGreaterThan(25);
  });
});

describe('API hygiene', () => {
  it('unknown query parameters answer 400 naming them', async () => {
    const res = await app.request('/v1/payments?limit=5&colour=red&size=xl', { headers: auth });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.message).toBe('unknown query parameters "colour", "size"');
    expect(body.error.details).toEqual([
      { path: 'colour', message: 'unknown query parameter' },
      { path: 'size', message: 'unknown query parameter' },
    ]);
  });

  it('a known path with another method answers 405 with Allow', async () => {
    const res = await app.request('/v1/payments/mollie/tr_openapi1', { method: 'DELETE', headers: auth });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect((await res.json()).error).toMatchObject({ code: 'method_not_allowed', retryable: false });
    const webhook = await app.request('/webhooks/mollie', { method: 'GET' });
    expect(webhook.status).toBe(405);
    expect(webhook.headers.get('allow')).toBe('POST');
    expect((await app.request('/v1/nothing-here', { headers: auth })).status).toBe(404);
  });

  it('GET /v1/events filters by type and prefix, pages with cursor (after still works), and serves one event by id', async () => {
    expect((await app.request('/v1/payments/mollie/tr_openapi1/sync', { method: 'POST', headers: auth })).status).toBe(200);
    const gatewayEvent = await writeGatewayEvent(deps.db, 'hygiene');
    const all = await (await app.request('/v1/events?limit=1000', { headers: auth })).json();
    const types = new Set(all.data.map((event: { type: string }) => event.type));
    expect(types.size).toBeGreaterThan(1);

    const paid = await (await app.request('/v1/events?type=payment.paid&limit=1000', { headers: auth })).json();
    expect(paid.data.length).toBeGreaterThan(0);
    expect(paid.data.every((event: { type: string }) => event.type === 'payment.paid')).toBe(true);
    const prefixed = await (await app.request('/v1/events?type=payment.&limit=1000', { headers: auth })).json();
    expect(prefixed.data.every((event: { type: string }) => event.type.startsWith('payment.'))).toBe(true);
    expect(prefixed.data.length).toBe(all.data.filter((event: { type: string }) => event.type.startsWith('payment.')).length);

    const first = await (await app.request('/v1/events?limit=1', { headers: auth })).json();
    const byCursor = await (await app.request(`/v1/events?limit=1&cursor=${first.nextCursor}`, { headers: auth })).json();
    const byAfter = await (await app.request(`/v1/events?limit=1&after=${first.nextCursor}`, { headers: auth })).json();
    expect(byCursor.data[0].id).toBe(all.data[1].id);
    expect(byAfter).toEqual(byCursor);
    const both = await app.request(`/v1/events?cursor=${first.nextCursor}&after=${byCursor.nextCursor}`, { headers: auth });
    expect(both.status).toBe(400);

    const one = await app.request(`/v1/events/${gatewayEvent}`, { headers: auth });
    expect(one.status).toBe(200);
    expect((await one.json()).id).toBe(gatewayEvent);
    const missing = await app.request(`/v1/events/evt_${'0'.repeat(32)}`, { headers: auth });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('event_not_found');
  });
});
