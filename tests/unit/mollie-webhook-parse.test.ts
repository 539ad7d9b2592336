import { describe, expect, it } from 'vitest';
import { idPrefixKind, mollieWebhookSchema, parseMollieWebhook } from '../../src/providers/mollie/webhook.js';

const FORM = 'application/x-www-form-urlencoded';
const bytes = (text: string) => new TextEncoder().encode(text);
const parse = (contentType: string | undefined, body: string) => {
  const result = parseMollieWebhook(contentType, bytes(body));
  // Whatever comes out must satisfy the exported schema.
  expect(mollieWebhookSchema.safeParse(result).success).toBe(true);
  return result;
};

const PAYMENT = { resource: 'payment', id: 'tr_5B8cwPMGnU6qLbRvo7qEZo', status: 'paid', amount: { currency: 'EUR', value: '49.95' } };
const event = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    resource: 'event',
    id: 'event_GvJ8WHrp5isUdRub9CJyH',
    type: 'payment.paid',
    entityId: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
    createdAt: '2024-03-20T09:14:53+00:00',
    _embedded: { entity: PAYMENT },
    _links: { self: { href: 'https://api.mollie.com/v2/events/event_GvJ8WHrp5isUdRub9CJyH', type: 'application/hal+json' } },
    ...overrides,
  });

describe('parseMollieWebhook: classic form posts', () => {
  it('parses id=tr_...', () => {
    expect(parse(FORM, 'id=tr_5B8cwPMGnU6qLbRvo7qEZo')).toEqual({ kind: 'classic', id: 'tr_5B8cwPMGnU6qLbRvo7qEZo' });
  });

  it('accepts a charset parameter and an upper-case media type', () => {
    expect(parse('Application/X-WWW-Form-Urlencoded; charset=UTF-8', 'id=re_4qqhO89gsT')).toEqual({ kind: 'classic', id: 're_4qqhO89gsT' });
  });

  it('ignores parameters other than id', () => {
    expect(parse(FORM, 'foo=bar&id=chb_n9z0tp')).toEqual({ kind: 'classic', id: 'chb_n9z0tp' });
  });

  it.each([
    ['no id', 'foo=bar', /no id parameter/],
    ['an empty id', 'id=', /no id parameter/],
    ['two ids', 'id=tr_a1&id=tr_b2', /more than one id/],
    ['an id without a prefix', 'id=5B8cwPMGnU6qLbRvo7qEZo', /must look like a Mollie id/],
    ['an id with odd characters', 'id=tr_abc%2F..%2Fdef', /must look like a Mollie id/],
    ['an id with an upper-case prefix', 'id=TR_abc', /must look like a Mollie id/],
    ['an id longer than 64 characters', `id=tr_${'a'.repeat(62)}`, /at most 64/],
  ])('rejects %s with a clear message', (_name, body, message) => {
    const result = parse(FORM, body);
    expect(result.kind).toBe('invalid');
    expect(result.kind === 'invalid' && result.message).toMatch(message);
  });

  it('accepts an id of exactly 64 characters', () => {
    expect(parse(FORM, `id=tr_${'a'.repeat(61)}`)).toEqual({ kind: 'classic', id: `tr_${'a'.repeat(61)}` });
  });
});

describe('parseMollieWebhook: next-gen events', () => {
  it('parses a snapshot event and keeps the embedded entity', () => {
    expect(parse('application/json', event())).toEqual({
      kind: 'event',
      eventId: 'event_GvJ8WHrp5isUdRub9CJyH',
      type: 'payment.paid',
      entityId: 'tr_5B8cwPMGnU6qLbRvo7qEZo',
      entity: PAYMENT,
    });
  });

  it('parses a simple event (no _embedded, or null) without an entity', () => {
    for (const body of [event({ _embedded: null }), event({ _embedded: undefined })]) {
      const result = parse('application/json; charset=utf-8', body);
      expect(result).toEqual({ kind: 'event', eventId: 'event_GvJ8WHrp5isUdRub9CJyH', type: 'payment.paid', entityId: 'tr_5B8cwPMGnU6qLbRvo7qEZo' });
      expect(result).not.toHaveProperty('entity');
    }
  });

  it('accepts event types it does not know yet (Mollie adds them)', () => {
    expect(parse('application/json', event({ type: 'dispute.created' }))).toMatchObject({ kind: 'event', type: 'dispute.created' });
  });

  it.each([
    ['bad JSON', '{"resource":"event",', /not valid JSON/],
    ['a JSON array', '[1,2]', /must be an object/],
    ['a resource other than event', event({ resource: 'payment' }), /resource must be "event"/],
    ['a missing event id', event({ id: undefined }), /id is required/],
    ['an event id without the event_ prefix', event({ id: 'evt_123' }), /id must look like event_/],
    ['a missing type', event({ type: undefined }), /type is required/],
    ['a missing entityId', event({ entityId: undefined }), /entityId/],
    ['a malformed entityId', event({ entityId: 'tr_../../x' }), /entityId must look like a Mollie id/],
  ])('rejects %s with a clear message', (_name, body, message) => {
    const result = parse('application/json', body);
    expect(result.kind).toBe('invalid');
    expect(result.kind === 'invalid' && result.message).toMatch(message);
  });
});

describe('parseMollieWebhook: transport problems', () => {
  it('rejects an unsupported content type', () => {
    const result = parse('text/plain', 'id=tr_abc');
    expect(result).toMatchObject({ kind: 'invalid' });
    expect(result.kind === 'invalid' && result.message).toMatch(/unsupported content type "text\/plain"/);
  });

  it('rejects an empty body', () => {
    expect(parse(FORM, '   ')).toMatchObject({ kind: 'invalid', message: expect.stringMatching(/body is empty/) });
  });

  it('rejects bytes that are not UTF-8', () => {
    const result = parseMollieWebhook(FORM, new Uint8Array([0x69, 0x64, 0x3d, 0xff, 0xfe]));
    expect(result).toEqual({ kind: 'invalid', message: 'body is not valid UTF-8' });
  });

  it('falls back to the body shape when the content type is missing', () => {
    expect(parse(undefined, 'id=tr_abc123')).toEqual({ kind: 'classic', id: 'tr_abc123' });
    expect(parse('', event())).toMatchObject({ kind: 'event', eventId: 'event_GvJ8WHrp5isUdRub9CJyH' });
  });

  it('does not treat a JSON body sent as a form as an event', () => {
    expect(parse(FORM, event()).kind).toBe('invalid');
  });
});

describe('idPrefixKind', () => {
  it.each([
    ['tr_5B8cwPMGnU6qLbRvo7qEZo', 'payment'],
    ['re_4qqhO89gsT', 'refund'],
    ['chb_n9z0tp', 'chargeback'],
    ['ord_kEn1PlbGa', 'other'],
    ['pl_4Y0eZitmBnQ6IDoMqZQKh', 'other'],
    ['sub_rVKGtNd6s3', 'other'],
    ['tr5B8cw', 'other'],
    ['', 'other'],
  ] as const)('%s is a %s', (id, kind) => {
    expect(idPrefixKind(id)).toBe(kind);
  });
});
