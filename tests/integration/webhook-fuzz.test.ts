/**
 * Bad input at every webhook route, generated (fast-check): random bytes, wrong content
 * types, deep JSON, unicode, repeated keys, ids that are almost right, and garbage signed
 * with the configured secret (so it gets past verification and reaches the parsers and
 * the database). The real app (createApp) over a real database, with the real provider
 * adapters talking to the sandboxes. Never a 5xx; every refusal is JSON with a code, a
 * message and the request id.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp, WEBHOOK_BODY_LIMIT } from '../../src/http/app.js';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import { createProvidersFromEnv } from '../../src/providers/from-env.js';
import { signMollieBody } from '../../src/providers/mollie/signature.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, testEnv } from '../helpers/deps.js';

const MOLLIE_SECRET = 'fuzz-mollie-signing-secret';
const GOCARDLESS_SECRET = 'fuzz-gocardless-webhook-secret';
/** The Mollie route's own limit (a classic webhook is a few dozen bytes). */
const MOLLIE_BODY_LIMIT = 256 * 1024;
const RUNS = Number(process.env.FUZZ_RUNS ?? 120);

let database: TestDatabase;
let mollie: MollieSandbox;
let gocardless: GoCardlessSandbox;
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  mollie = await startMollieSandbox();
  gocardless = await startGoCardlessSandbox();
  const env = {
    DATABASE_URL: database.url,
    MOLLIE_API_KEY: SANDBOX_DEFAULT_API_KEY,
    MOLLIE_API_URL: mollie.url,
    MOLLIE_WEBHOOK_SECRETS: MOLLIE_SECRET,
    MOLLIE_WEBHOOK_DEADLINE_MS: '300',
    GOCARDLESS_ACCESS_TOKEN: gocardless.accessToken,
    GOCARDLESS_API_URL: gocardless.url,
    GOCARDLESS_WEBHOOK_SECRETS: GOCARDLESS_SECRET,
  };
  deps = buildTestDeps(env, { providers: createProvidersFromEnv(testEnv(env)) });
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.background.drain();
  await deps?.close();
  await mollie?.close();
  await gocardless?.close();
  await database?.drop();
});

// ---------------------------------------------------------------------------------------
// What may arrive

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => bytes(open.repeat(depth) + '1' + (open === '[' ? ']' : '}').repeat(depth)));

const repeatedKeys = fc
  .tuple(fc.constantFrom('id', 'events', 'resource', 'entityId', 'type', '__proto__', 'meta'), fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 2, maxLength: 6 }))
  .map(([key, values]) => bytes(`{${values.map((v) => `${JSON.stringify(key)}:${JSON.stringify(v)}`).join(',')}}`));

const almostMollieIds = fc.oneof(
  fc.stringMatching(/^(tr|re|chb|sub|ord|pl|xx)_[A-Za-z0-9]{0,70}$/),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom('tr_', '_', 'tr_%00', 'tr_\u0000', 'tr_a b', 'tr_\u{1F4B8}', 'tr_1&id=tr_2', ''),
);
const formBodies = fc.oneof(
  almostMollieIds.map((id) => bytes(`id=${encodeURIComponent(id)}`)),
  almostMollieIds.map((id) => bytes(`id=${id}`)),
  fc.array(almostMollieIds, { minLength: 2, maxLength: 4 }).map((ids) => bytes(ids.map((id) => `id=${encodeURIComponent(id)}`).join('&'))),
  fc.string({ unit: 'binary', maxLength: 200 }).map(bytes),
);

const eventish = fc.record(
  {
    id: fc.oneof(fc.stringMatching(/^(EV|event_)[A-Za-z0-9]{1,20}$/), fc.string({ unit: 'binary', maxLength: 40 })),
    resource: fc.constantFrom('event', 'payment', 'payments', 'mandates', 'refunds', 'payouts'),
    resource_type: fc.constantFrom('payments', 'mandates', 'refunds', 'payouts', 'subscriptions', 'nope'),
    action: fc.constantFrom('created', 'confirmed', 'paid_out', 'failed', 'cancelled', ''),
    type: fc.constantFrom('payment.paid', 'refund.created', 'x'),
    entityId: almostMollieIds,
    created_at: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string({ maxLength: 30 })),
    links: fc.dictionary(fc.constantFrom('payment', 'mandate', 'refund', 'payout', 'parent_event'), fc.oneof(fc.stringMatching(/^(PM|MD|RF|PO|EV)[A-Za-z0-9]{1,12}$/), fc.string({ unit: 'binary', maxLength: 30 }))),
    details: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })),
    metadata: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: [] },
);
const jsonBodies = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => bytes(JSON.stringify(v))),
  fc.array(eventish, { maxLength: 6 }).map((events) => bytes(JSON.stringify({ events, meta: { webhook_id: 'WB123' } }))),
  eventish.map((event) => bytes(JSON.stringify(event))),
  fc.string({ unit: 'grapheme', maxLength: 300 }).map((s) => bytes(JSON.stringify({ events: [{ id: s, resource_type: s, action: s, links: { payment: s } }] }))),
);

const bodies = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 500 }).map(bytes) },
  { weight: 3, arbitrary: formBodies },
  { weight: 3, arbitrary: jsonBodies },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: repeatedKeys },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
);

const contentTypes = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=utf-8',
    'application/json; charset=utf-16',
    'application/problem+json',
    'text/plain',
    'application/octet-stream',
    'multipart/form-data; boundary=xyz',
    'image/png',
    '',
  ),
  fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
  fc.constant(undefined),
);

type Signing = 'none' | 'valid' | 'wrong-secret' | 'junk';
const signings = fc.constantFrom<Signing>('none', 'valid', 'valid', 'wrong-secret', 'junk');
const junkSignatures = fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{0,80}$/), fc.string({ unit: 'grapheme-ascii', maxLength: 80 }), fc.constant('sha256='));

const accounts = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constant('default') },
  { weight: 1, arbitrary: fc.constantFrom('shop2', 'DEFAULT', '..', '%2e%2e', 'a'.repeat(70)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%ZZ', '%', '%00', '%C0%AF') },
);

/** Text that is nearly right: the odd character out of place. */
const oddText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\uD800', '\u202E', '\u{1F4B8}', ' ', '', '../../v1', '%00', 'x'.repeat(5000)),
);

const goCardlessEvent = fc.record({
  id: fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^EV[0-9A-Z]{4,14}$/) }, { weight: 1, arbitrary: oddText }),
  created_at: fc.oneof({ weight: 4, arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()) }, { weight: 1, arbitrary: oddText }),
  resource_type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('payments', 'mandates', 'refunds', 'payouts', 'subscriptions', 'billing_requests') }, { weight: 1, arbitrary: oddText }),
  action: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('created', 'submitted', 'confirmed', 'paid_out', 'failed', 'cancelled', 'charged_back') }, { weight: 1, arbitrary: oddText }),
  links: fc.oneof(
    { weight: 4, arbitrary: fc.record({ payment: fc.stringMatching(/^PM[0-9A-Z]{4,12}$/) }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('payment', 'mandate', 'refund', 'payout', 'parent_event'), oddText) },
  ),
  details: fc.record({ origin: fc.constantFrom('bank', 'api', 'gocardless'), cause: oddText, description: oddText }, { requiredKeys: [] }),
  metadata: fc.dictionary(fc.string({ maxLength: 10 }), oddText, { maxKeys: 3 }),
});
const goCardlessBatch = fc
  .tuple(fc.array(goCardlessEvent, { minLength: 1, maxLength: 8 }), fc.option(oddText, { nil: undefined }))
  .map(([events, webhookId]) => bytes(JSON.stringify({ events, meta: { webhook_id: webhookId ?? 'WB0001' } })));

const mollieEvent = fc
  .record({
    resource: fc.oneof({ weight: 5, arbitrary: fc.constant('event') }, { weight: 1, arbitrary: oddText }),
    id: fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^event_[A-Za-z0-9]{4,20}$/) }, { weight: 1, arbitrary: oddText }),
    type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('payment.paid', 'payment.failed', 'refund.created', 'payment-link.paid', 'balance.created') }, { weight: 1, arbitrary: oddText }),
    entityId: almostMollieIds,
    createdAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    _embedded: fc.option(fc.record({ entity: fc.jsonValue({ maxDepth: 3 }) }), { nil: null }),
  })
  .map((event) => bytes(JSON.stringify(event)));

/** Shaped like the real thing, with the right headers; something inside may be off. */
const plausibleRequests = fc.oneof(
  fc.record({ provider: fc.constant('mollie' as const), body: formBodies, contentType: fc.constant('application/x-www-form-urlencoded'), signing: fc.constant<Signing>('none') }),
  fc.record({ provider: fc.constant('mollie' as const), body: mollieEvent, contentType: fc.constant('application/json'), signing: fc.constantFrom<Signing>('valid', 'valid', 'none') }),
  fc.record({ provider: fc.constant('gocardless' as const), body: goCardlessBatch, contentType: fc.constant('application/json'), signing: fc.constant<Signing>('valid') }),
);

// ---------------------------------------------------------------------------------------

interface Sent {
  status: number;
  contentType: string | null;
  requestId: string | null;
  text: string;
}

async function send(path: string, body: Uint8Array, headers: Record<string, string>): Promise<Sent> {
  const res = await app.request(path, { method: 'POST', body: Uint8Array.from(body), headers });
  return { status: res.status, contentType: res.headers.get('content-type'), requestId: res.headers.get('x-request-id'), text: await res.text() };
}

/** The contract for every answer, whatever came in. */
function expectWellFormed(sent: Sent, provider: 'mollie' | 'gocardless') {
  expect(sent.status, sent.text).toBeLessThan(500);
  expect(sent.requestId).toMatch(/^req_[0-9a-f]{32}$/);
  if (sent.status >= 400) {
    expect(sent.contentType).toMatch(/^application\/json/);
    const body = JSON.parse(sent.text) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
    expect(typeof body.error?.code).toBe('string');
    expect(typeof body.error?.message).toBe('string');
    expect((body.error!.message as string).length).toBeGreaterThan(5);
    expect(body.error?.requestId).toBe(sent.requestId);
  } else if (provider === 'mollie') {
    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.text)).toEqual({ received: true });
  } else {
    expect(sent.status).toBe(204);
  }
}

function headersFor(provider: 'mollie' | 'gocardless', body: Uint8Array, contentType: string | undefined, signing: Signing, junk: string) {
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers['content-type'] = contentType;
  const name = provider === 'mollie' ? 'x-mollie-signature' : 'webhook-signature';
  const secret = provider === 'mollie' ? MOLLIE_SECRET : GOCARDLESS_SECRET;
  const sign = provider === 'mollie' ? signMollieBody : signGoCardlessBody;
  if (signing === 'valid') headers[name] = sign(body, secret);
  else if (signing === 'wrong-secret') headers[name] = sign(body, `${secret}-old`);
  else if (signing === 'junk') headers[name] = junk;
  return headers;
}

describe('fuzzing the webhook routes', () => {
  for (const provider of ['mollie', 'gocardless'] as const) {
    it(`POST /webhooks/${provider}[/:account]: never a 5xx, every refusal explained`, async () => {
      const seen = new Map<number, number>();
      const anything = fc.record({ provider: fc.constant(provider), body: bodies, contentType: contentTypes, signing: signings });
      const requests = fc.oneof(anything, plausibleRequests.filter((r) => r.provider === provider));
      // Always tried besides the generated ones, so each outcome class is reached on every run.
      type Request = { provider: typeof provider; body: Uint8Array; contentType: string | undefined; signing: Signing };
      const batch = bytes(JSON.stringify({ events: [{ id: 'EVFUZZ0001', created_at: new Date().toISOString(), resource_type: 'payments', action: 'confirmed', links: { payment: 'PMFUZZ0001' } }] }));
      const examples: [Request, string, string | undefined][] =
        provider === 'mollie'
          ? [
              [{ provider, body: bytes('id=tr_fuzzExample1'), contentType: 'application/x-www-form-urlencoded', signing: 'none' }, '', undefined],
              [{ provider, body: bytes('hello'), contentType: 'application/x-www-form-urlencoded', signing: 'none' }, '', 'default'],
              [{ provider, body: bytes('{"resource":"event"}'), contentType: 'application/json', signing: 'wrong-secret' }, '', undefined],
            ]
          : [
              [{ provider, body: batch, contentType: 'application/json', signing: 'valid' }, '', undefined],
              [{ provider, body: bytes('{"events":"no"}'), contentType: 'application/json', signing: 'valid' }, '', 'default'],
              [{ provider, body: batch, contentType: 'application/json', signing: 'none' }, '', undefined],
            ];
      await fc.assert(
        fc.asyncProperty(requests, junkSignatures, accounts, async (request, junk, account) => {
          const path = `/webhooks/${provider}${account === undefined ? '' : `/${account}`}`;
          const sent = await send(path, request.body, headersFor(provider, request.body, request.contentType, request.signing, junk));
          seen.set(sent.status, (seen.get(sent.status) ?? 0) + 1);
          expectWellFormed(sent, provider);
        }),
        { numRuns: RUNS, examples },
      );
      console.log(`fuzz ${provider}: ${RUNS} requests, statuses ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => a[0] - b[0])))}`);
      // Past the signature check and the parsers, not only the front door.
      const statuses = [...seen.keys()];
      expect(statuses.some((s) => s < 300)).toBe(true);
      expect(statuses).toContain(400);
      expect(statuses).toContain(provider === 'mollie' ? 401 : 498);
      // What the requests started in the background settles without a crash, and no
      // accepted receipt is stuck on something the database refused.
      await deps.background.drain();
      const stuck = await deps.database.sql<{ id: number; last_error: string }[]>`
        select id, last_error from webhook_receipts
        where provider = ${provider} and state in ('pending', 'failed') and last_error is not null`;
      expect(stuck).toEqual([]);
    }, 60_000);
  }

  it('answers 413 for bodies over the limits, declared or streamed, before buffering them', async () => {
    const cases: { path: string; size: number; declared: boolean }[] = [
      { path: '/webhooks/mollie', size: MOLLIE_BODY_LIMIT + 1, declared: true },
      { path: '/webhooks/mollie/default', size: MOLLIE_BODY_LIMIT + 1, declared: false },
      { path: '/webhooks/gocardless', size: WEBHOOK_BODY_LIMIT + 1, declared: true },
      { path: '/webhooks/gocardless/default', size: WEBHOOK_BODY_LIMIT + 1, declared: false },
    ];
    for (const { path, size, declared } of cases) {
      let produced = 0;
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          // Produce up to 8× the size, so a server that buffered it all would be noticed.
          if (produced >= size * 8) return controller.close();
          produced += chunk.length;
          controller.enqueue(chunk);
        },
      });
      const headers: Record<string, string> = { 'content-type': 'application/json', 'webhook-signature': 'a'.repeat(64) };
      if (declared) headers['content-length'] = String(size);
      const res = await app.request(path, { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
      const sent: Sent = { status: res.status, contentType: res.headers.get('content-type'), requestId: res.headers.get('x-request-id'), text: await res.text() };
      expect(sent.status, path).toBe(413);
      expectWellFormed(sent, path.includes('mollie') ? 'mollie' : 'gocardless');
      expect(JSON.parse(sent.text).error.code).toBe('payload_too_large');
      expect(produced, path).toBeLessThan(size * 2);
    }
  });

  it('answers bodies just under the limits without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: MOLLIE_BODY_LIMIT - 64, max: MOLLIE_BODY_LIMIT + 64 }), fc.boolean(), async (size, signed) => {
        const body = new Uint8Array(size).fill(0x7b);
        const sent = await send('/webhooks/mollie', body, headersFor('mollie', body, 'application/json', signed ? 'valid' : 'none', ''));
        expectWellFormed(sent, 'mollie');
        expect(sent.status).toBe(size > MOLLIE_BODY_LIMIT ? 413 : 400);
      }),
      { numRuns: 12 },
    );
  });
});
