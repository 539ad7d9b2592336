/**
 * The endpoints the gateway uses, in GoCardless's envelopes: `GET /payments/:id`,
 * `GET /events/:id` and `GET /events` with its filters and cursors.
 */
import type { Hono } from 'hono';
import type { GoCardlessEvent } from '../../providers/gocardless/webhook.js';
import type { SandboxEnv } from './gatekeeping.js';
import type { GoCardlessStore, SandboxPayment } from './state.js';
import { gcError, json } from './wire.js';

/** Single-resource filters of `GET /events` (docs/providers.md#gocardless-api-polling-and-recovery). */
const EVENT_LINK_FILTERS = [
  'payment', 'mandate', 'refund', 'payout', 'subscription', 'billing_request', 'creditor', 'customer',
  'instalment_schedule', 'parent_event', 'payer_authorisation', 'scheme_identifier', 'export',
] as const;


export function registerGoCardlessApiRoutes(app: Hono<SandboxEnv>, store: GoCardlessStore): void {
  const { payments, refunds, events, eventIndex, eventOrder } = store;

  app.get('/payments/:id', (c) => {
    const payment = payments.get(c.req.param('id'));
    if (!payment) return gcError(404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    return json(200, { payments: payment });
  });

  app.get('/refunds/:id', (c) => {
    const refund = refunds.get(c.req.param('id'));
    if (!refund) return gcError(404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    return json(200, { refunds: refund });
  });

  // `GET /refunds` with the `payment` filter and cursors (oldest first, as created).
  app.get('/refunds', (c) => {
    const query = new URL(c.req.url).searchParams;
    const limitParam = query.get('limit');
    const limit = limitParam === null ? 50 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      return gcError(400, 'invalid_api_usage', 'invalid_parameters', 'limit must be an integer from 1 to 500', { field: 'limit' });
    }
    const payment = query.get('payment');
    const all = [...refunds.values()].filter((refund) => payment === null || refund.links.payment === payment);
    const after = query.get('after');
    let start = 0;
    if (after !== null) {
      start = all.findIndex((refund) => refund.id === after) + 1;
      if (start === 0) return gcError(400, 'invalid_api_usage', 'invalid_parameters', `cursor ${after} does not match any refund`, { field: 'after' });
    }
    const page = all.slice(start, start + limit);
    const more = start + page.length < all.length;
    return json(200, { refunds: page, meta: { cursors: { before: null, after: more ? page[page.length - 1]!.id : null }, limit } });
  });

  app.get('/events/:id', (c) => {
    const index = eventIndex.get(c.req.param('id'));
    if (index === undefined) return gcError(404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    return json(200, { events: events[index] });
  });

  app.get('/events', (c) => {
    const query = new URL(c.req.url).searchParams;
    const invalid = (message: string, field?: string) =>
      gcError(400, 'invalid_api_usage', 'invalid_parameters', message, field ? { field } : {});

    const limitParam = query.get('limit');
    const limit = limitParam === null ? 50 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) return invalid('limit must be an integer from 1 to 500', 'limit');
    const after = query.get('after');
    const before = query.get('before');
    if (after !== null && before !== null) return invalid('after and before cannot be combined');

    const resourceType = query.get('resource_type');
    const action = query.get('action');
    const linkFilters = EVENT_LINK_FILTERS.flatMap((key) => {
      const value = query.get(key);
      return value === null ? [] : [[key, value] as const];
    });
    if (resourceType !== null && linkFilters.length > 0) {
      return invalid(`resource_type cannot be combined with the ${linkFilters[0]![0]} filter`, 'resource_type');
    }
    const include = query.get('include');
    if (include !== null && resourceType === null) return invalid('include must be used together with resource_type', 'include');

    const bounds: Array<[string, (eventMs: number, boundMs: number) => boolean]> = [
      ['gt', (e, b) => e > b],
      ['gte', (e, b) => e >= b],
      ['lt', (e, b) => e < b],
      ['lte', (e, b) => e <= b],
    ];
    const timeFilters: Array<(eventMs: number) => boolean> = [];
    for (const [bound, compare] of bounds) {
      const value = query.get(`created_at[${bound}]`);
      if (value === null) continue;
      const boundMs = Date.parse(value);
      if (Number.isNaN(boundMs)) return invalid(`created_at[${bound}] is not a valid date-time`, `created_at[${bound}]`);
      timeFilters.push((eventMs) => compare(eventMs, boundMs));
    }

    // Positions in the full list (in the configured order) make cursors stable
    // while new events arrive, whatever the filters.
    const ordered = eventOrder === 'newest_first' ? [...events].reverse() : [...events];
    const position = new Map(ordered.map((event, index) => [event.id, index]));
    const matches = ordered.filter(
      (event) =>
        (resourceType === null || event.resource_type === resourceType) &&
        (action === null || event.action === action) &&
        linkFilters.every(([key, value]) => event.links[key] === value) &&
        timeFilters.every((test) => test(Date.parse(event.created_at))),
    );

    let page: GoCardlessEvent[];
    let startIndex: number;
    if (after !== null || before !== null) {
      const cursor = (after ?? before)!;
      const cursorPosition = position.get(cursor);
      if (cursorPosition === undefined) return invalid(`cursor ${cursor} does not match any event`, after !== null ? 'after' : 'before');
      if (after !== null) {
        startIndex = matches.findIndex((event) => position.get(event.id)! > cursorPosition);
        if (startIndex < 0) startIndex = matches.length;
        page = matches.slice(startIndex, startIndex + limit);
      } else {
        let endIndex = matches.findIndex((event) => position.get(event.id)! >= cursorPosition);
        if (endIndex < 0) endIndex = matches.length;
        startIndex = Math.max(0, endIndex - limit);
        page = matches.slice(startIndex, endIndex);
      }
    } else {
      startIndex = 0;
      page = matches.slice(0, limit);
    }
    const endIndex = startIndex + page.length;

    const body: Record<string, unknown> = {
      events: page,
      meta: {
        cursors: {
          before: page.length > 0 && startIndex > 0 ? page[0]!.id : null,
          after: page.length > 0 && endIndex < matches.length ? page[page.length - 1]!.id : null,
        },
        limit,
      },
    };
    if (include === 'payment') {
      const linked = [...new Set(page.map((event) => event.links.payment).filter((id): id is string => id !== undefined))]
        .map((id) => payments.get(id))
        .filter((payment): payment is SandboxPayment => payment !== undefined);
      body.linked = { payments: linked };
    }
    return json(200, body);
  });
}
