import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseGoCardlessBatch, sortGoCardlessEvents, type GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const officialBody = readFileSync(path.join(repoRoot, 'tests/fixtures/gocardless/webhook_body.min.json'));

/** docs/providers.md#example-gocardless-batch */
const paymentsBatch = {
  events: [
    {
      id: 'EV01J7QRF0KJWR',
      created_at: '2024-03-22T17:05:25.054Z',
      resource_type: 'payments',
      action: 'confirmed',
      links: { payment: 'PM01AB2CD3EF4G' },
      details: { origin: 'gocardless', cause: 'payment_confirmed', description: 'Enough time has passed...' },
      metadata: {},
      resource_metadata: { invoice_id: 'INV-2024-0042' },
    },
    {
      id: 'EV01J7QRF0KJWS',
      created_at: '2024-03-22T17:05:26.101Z',
      resource_type: 'payments',
      action: 'failed',
      links: { payment: 'PM01AB2CD3EF4H' },
      details: {
        origin: 'bank',
        cause: 'insufficient_funds',
        description: "The customer's account had insufficient funds to make this payment.",
        scheme: 'sepa_core',
        reason_code: 'AM04',
        will_attempt_retry: false,
      },
      metadata: {},
      resource_metadata: { invoice_id: 'INV-2024-0043' },
    },
  ],
  meta: { webhook_id: 'WB002KK5HPCPWD' },
};

function expectFailure(raw: string | Uint8Array, pattern: RegExp) {
  const result = parseGoCardlessBatch(raw);
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.message).toMatch(pattern);
}

describe('parseGoCardlessBatch: well-formed bodies', () => {
  it('parses the official gc-node fixture from raw bytes (no meta, so no webhook id)', () => {
    const result = parseGoCardlessBatch(officialBody);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.webhookId).toBeUndefined();
    expect(result.events.map((event) => [event.id, event.resource_type, event.action])).toEqual([
      ['EV00BD05S5VM2T', 'subscriptions', 'created'],
      ['EV00BD05TB8K63', 'mandates', 'created'],
    ]);
    expect(result.events[0]!.links).toEqual({ subscription: 'SB0003JJQ2MR06' });
    expect(result.events[1]!.details.cause).toBe('mandate_created');
  });

  it('parses a payments batch with its webhook id and event details', () => {
    const result = parseGoCardlessBatch(JSON.stringify(paymentsBatch));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.webhookId).toBe('WB002KK5HPCPWD');
    expect(result.events).toHaveLength(2);
    const failed = result.events[1]!;
    expect(failed.links.payment).toBe('PM01AB2CD3EF4H');
    expect(failed.details).toMatchObject({ origin: 'bank', cause: 'insufficient_funds', reason_code: 'AM04', will_attempt_retry: false });
    expect(failed.resource_metadata).toEqual({ invoice_id: 'INV-2024-0043' });
  });

  it('keeps fields it does not know, at every level, so raw events can be forwarded', () => {
    const event = {
      ...paymentsBatch.events[0]!,
      source: { type: 'app', name: 'Billing' },
      customer_notifications: [{ id: 'PCN123', type: 'payment_created', deadline: '2024-03-23T00:00:00.000Z', mandatory: false }],
      details: { ...paymentsBatch.events[0]!.details, property: 'x', item_count: 3 },
    };
    const result = parseGoCardlessBatch(JSON.stringify({ events: [event] }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const parsed = result.events[0]! as GoCardlessEvent & { source?: unknown; customer_notifications?: unknown };
    expect(parsed.source).toEqual({ type: 'app', name: 'Billing' });
    expect(parsed.customer_notifications).toEqual(event.customer_notifications);
    expect(parsed.details.item_count).toBe(3);
    expect(parsed).toEqual(event);
  });

  it('fills absent links, details and metadata with empty objects', () => {
    const result = parseGoCardlessBatch(JSON.stringify({ events: [{ id: 'EV1', created_at: '2024-01-01T00:00:00.000Z', resource_type: 'payouts', action: 'paid' }] }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.events[0]).toMatchObject({ links: {}, details: {}, metadata: {} });
  });

  it('accepts PHP-style empty arrays for metadata', () => {
    const result = parseGoCardlessBatch(JSON.stringify({ events: [{ ...paymentsBatch.events[0], metadata: [], resource_metadata: [] }] }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.events[0]!.metadata).toEqual({});
    expect(result.events[0]!.resource_metadata).toEqual({});
  });

  it('accepts an empty events array', () => {
    expect(parseGoCardlessBatch('{"events":[],"meta":{"webhook_id":"WB1"}}')).toEqual({ ok: true, events: [], webhookId: 'WB1' });
  });
});

describe('parseGoCardlessBatch: malformed bodies get clear messages', () => {
  it('bad JSON', () => {
    expectFailure('{"events":[', /not valid JSON/);
    expectFailure('', /not valid JSON/);
  });

  it('invalid UTF-8', () => {
    expectFailure(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /not valid UTF-8/);
  });

  it('JSON that is not an object', () => {
    expectFailure('[]', /JSON object with an "events" array/);
    expectFailure('"events"', /JSON object/);
    expectFailure('null', /JSON object/);
  });

  it('missing or non-array events', () => {
    expectFailure('{"meta":{"webhook_id":"WB1"}}', /events.*missing "events" array/);
    expectFailure('{"events":{"id":"EV1"}}', /missing "events" array/);
    expectFailure('{"event":[]}', /"events"/);
  });

  it('an event that is not an object', () => {
    expectFailure('{"events":["EV1"]}', /events\[0\]: expected an object/);
  });

  it.each([
    ['id', /events\[0\]\.id: missing "id"/],
    ['resource_type', /events\[0\] \(EV01J7QRF0KJWR\)\.resource_type: missing "resource_type"/],
    ['action', /events\[0\] \(EV01J7QRF0KJWR\)\.action: missing "action"/],
    ['created_at', /created_at/],
  ])('an event missing %s', (field, pattern) => {
    const event: Record<string, unknown> = { ...paymentsBatch.events[0] };
    delete event[field];
    expectFailure(JSON.stringify({ events: [event] }), pattern);
  });

  it('empty or wrongly typed required fields', () => {
    expectFailure(JSON.stringify({ events: [{ ...paymentsBatch.events[0], action: '' }] }), /"action" is empty/);
    expectFailure(JSON.stringify({ events: [{ ...paymentsBatch.events[0], id: 42 }] }), /events\[0\]\.id/);
    expectFailure(JSON.stringify({ events: [{ ...paymentsBatch.events[0], links: { payment: 7 } }] }), /links\.payment/);
  });

  it('names every bad event, not just the first, and refuses the whole batch', () => {
    const good = paymentsBatch.events[0]!;
    const result = parseGoCardlessBatch(
      JSON.stringify({ events: [good, { ...good, id: 'EV2', action: undefined }, good, { ...good, id: 'EV4', resource_type: null }] }),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message).toMatch(/events\[1\] \(EV2\)\.action/);
    expect(result.message).toMatch(/events\[3\] \(EV4\)\.resource_type/);
  });
});

describe('sortGoCardlessEvents', () => {
  it('orders by created_at, then id, without touching the input', () => {
    const events = [
      { id: 'EV3', created_at: '2024-03-22T17:05:26.101Z' },
      { id: 'EV2', created_at: '2024-03-22T17:05:25.054Z' },
      { id: 'EV1', created_at: '2024-03-22T17:05:25.054Z' },
      { id: 'EV0', created_at: '2024-03-22T18:00:00+01:00' },
    ];
    const copy = structuredClone(events);
    expect(sortGoCardlessEvents(events).map((event) => event.id)).toEqual(['EV0', 'EV1', 'EV2', 'EV3']);
    expect(events).toEqual(copy);
  });
});
