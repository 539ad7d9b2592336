/**
 * Hostile bodies that carry a valid signature (a leaked secret, a broken sender): deep
 * nesting and huge fields are refused with a 400 and its reason before anything parses
 * or stores them, never a 5xx (which GoCardless and Mollie would retry for days), and the
 * process lives on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { signGoCardlessBody } from '../../src/providers/gocardless/signature.js';
import { jsonShapeProblem } from '../../src/providers/json-shape.js';
import { signMollieBody } from '../../src/providers/mollie/signature.js';
import type { PaymentProvider } from '../../src/providers/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';

const GC_SECRET = 'hostile-bodies-gc-secret';
const MOLLIE_SECRET = 'hostile-bodies-mollie-secret';

let database: TestDatabase;
let deps: Deps;
let app: ReturnType<typeof createApp>;

/** Providers that must never be called: every body here is refused before a fetch. */
const untouchable = (name: 'mollie' | 'gocardless'): PaymentProvider => ({
  name,
  hasAccount: (account) => account === 'default',
  fetchPayment: () => Promise.reject(new Error(`${name} must not be called`)),
});

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps(
    { DATABASE_URL: database.url, GOCARDLESS_WEBHOOK_SECRETS: GC_SECRET, MOLLIE_WEBHOOK_SECRETS: MOLLIE_SECRET },
    { providers: { mollie: untouchable('mollie'), gocardless: untouchable('gocardless') } },
  );
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

function event(overrides: Record<string, unknown> = {}) {
  return { id: 'EV0001', created_at: '2026-01-01T00:00:00.000Z', resource_type: 'payments', action: 'confirmed', links: { payment: 'PM0001' }, details: {}, metadata: {}, ...overrides };
}

function nested(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

async function postGoCardless(body: string) {
  return app.request('/webhooks/gocardless', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-signature': signGoCardlessBody(body, GC_SECRET) },
    body,
  });
}

async function postMollieEvent(body: string) {
  return app.request('/webhooks/mollie', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mollie-signature': `sha256=${signMollieBody(body, MOLLIE_SECRET)}` },
    body,
  });
}

async function receiptCount(): Promise<number> {
  const rows = await deps.db.execute<{ n: number }>('select count(*)::int as n from webhook_receipts' as never);
  return Number(rows[0]!.n);
}

describe('hostile signed bodies', () => {
  it('GoCardless: 5,000 levels of nesting in metadata → 400 with the reason, nothing stored', async () => {
    const body = `{"events":[${JSON.stringify(event()).replace('"metadata":{}', `"metadata":{"deep":${nested(5000)}}`)}]}`;
    const res = await postGoCardless(body);
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/nested deeper than 32 levels/);
    expect(await receiptCount()).toBe(0);
  });

  it('GoCardless: a million levels of nesting (2 MB, under the size limit) → 400; 1.9 million (3.8 MB) → 413 unread', async () => {
    const million = `{"events":[${JSON.stringify(event()).replace('"metadata":{}', `"metadata":{"deep":${nested(1_000_000)}}`)}]}`;
    const res = await postGoCardless(million);
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/nested deeper than 32 levels/);

    const huge = `{"events":[${JSON.stringify(event()).replace('"metadata":{}', `"metadata":{"deep":${nested(1_900_000)}}`)}]}`;
    const refused = await postGoCardless(huge);
    expect(refused.status).toBe(413);
    expect(await receiptCount()).toBe(0);
  });

  it('GoCardless: a 1 MB event id → 400 (not an index row Postgres refuses with a 500); a 200-character id → 400', async () => {
    const res = await postGoCardless(JSON.stringify({ events: [event({ id: `EV${'A'.repeat(1_000_000)}` })] }));
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/longer than 16384 bytes/);
    const long = await postGoCardless(JSON.stringify({ events: [event({ id: `EV${'A'.repeat(200)}` })] }));
    expect(long.status).toBe(400);
    expect((await long.json()).error.message).toMatch(/"id" is longer than 128 characters/);
    expect(await receiptCount()).toBe(0);
  });

  it('Mollie: a signed event with a 10,000-deep extra field → 400 with the reason, nothing stored', async () => {
    const body = JSON.stringify({ resource: 'event', id: 'event_abc123', type: 'payment.paid', entityId: 'tr_abc123', extra: 0 }).replace('"extra":0', `"extra":${nested(10_000)}`);
    const res = await postMollieEvent(body);
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/nested deeper than 32 levels/);
    expect(await receiptCount()).toBe(0);
  });

  it('the process carries on: a normal webhook right after is stored', async () => {
    const res = await postGoCardless(JSON.stringify({ events: [event({ resource_type: 'mandates', action: 'created', links: { mandate: 'MD0001' } })] }));
    expect(res.status).toBe(204);
    expect(await receiptCount()).toBe(1);
  });
});

describe('jsonShapeProblem', () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  it('counts depth outside strings only, and string lengths with escapes', () => {
    expect(jsonShapeProblem(bytes('{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'))).toBeNull();
    expect(jsonShapeProblem(bytes(nested(32)))).toBeNull();
    expect(jsonShapeProblem(bytes(nested(33)))).toMatch(/deeper than 32/);
    expect(jsonShapeProblem(bytes(`{"a":"\\"${'x'.repeat(100)}"}`), { maxDepth: 5, maxStringBytes: 50 })).toMatch(/longer than 50 bytes/);
    expect(jsonShapeProblem(bytes(`{"a":"\\\\"}`), { maxDepth: 1, maxStringBytes: 50 })).toBeNull();
  });
});
