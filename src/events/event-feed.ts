import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import type { OutboundEvent } from './payment-events.js';

/**
 * The pull API's reading of the outbox.
 *
 * Why not "id > cursor": bigserial ids are taken when a row is inserted, not when its
 * transaction commits, so an event with a lower id can become visible after a consumer
 * has paged past it. Instead the feed is ordered by (tx_id, id), where tx_id is the
 * writing transaction's id, and only rows with tx_id below the current snapshot's xmin
 * are served: every transaction with a lower id has finished by then, so whatever
 * commits from now on carries a tx_id at or above that xmin, strictly after any position
 * already handed out. The price is that an event waits until every transaction that
 * started before it has finished (normally milliseconds).
 */
export interface FeedPosition {
  /** xid8 as a decimal string: 64 bits do not fit a JS number. */
  txId: string;
  id: number;
}

export const FEED_START: FeedPosition = { txId: '0', id: 0 };

export interface FeedQuery {
  after: FeedPosition;
  limit: number;
  provider?: string;
  paymentId?: string;
  /** Exact types, or prefixes ending in a dot (`payment.`). */
  types?: string[];
}

export interface FeedPage {
  events: OutboundEvent[];
  /** Where the next read starts: the last event served, or `after` itself when nothing was. */
  next: FeedPosition;
}

export async function readEventFeed(db: DbOrTx, query: FeedQuery): Promise<FeedPage> {
  const rows = await db.execute<{ id: number; tx_id: string; payload: OutboundEvent }>(sql`
    select id, tx_id::text as tx_id, payload
    from outbox
    where tx_id < pg_snapshot_xmin(pg_current_snapshot())
      and (tx_id, id) > (${query.after.txId}::xid8, ${query.after.id}::bigint)
      -- An operator's test of one sink is for that sink alone.
      and type <> 'gateway.test'
      ${query.provider ? sql`and provider = ${query.provider}` : sql``}
      ${query.paymentId ? sql`and provider_payment_id = ${query.paymentId}` : sql``}
      ${query.types ? typeFilter(query.types) : sql``}
    order by tx_id, id
    limit ${query.limit}`);
  const last = rows.at(-1);
  return {
    events: rows.map((row) => toEventJson(row.payload)),
    next: last ? { txId: String(last.tx_id), id: Number(last.id) } : query.after,
  };
}

function typeFilter(types: string[]) {
  const exact = JSON.stringify(types.filter((type) => !type.endsWith('.')));
  const prefixes = JSON.stringify(types.filter((type) => type.endsWith('.')));
  return sql`and (type in (select jsonb_array_elements_text(${exact}::jsonb))
    or exists (select 1 from jsonb_array_elements_text(${prefixes}::jsonb) as p(prefix) where starts_with(type, p.prefix)))`;
}

/** One event by its id, once committed; null when there is none. */
export async function readEventById(db: DbOrTx, eventId: string): Promise<OutboundEvent | null> {
  const rows = await db.execute<{ payload: OutboundEvent }>(sql`select payload from outbox where event_id = ${eventId}`);
  return rows[0] ? toEventJson(rows[0].payload) : null;
}

/** The documented shape, keys in order (jsonb does not keep them). */
export function toEventJson(event: OutboundEvent): OutboundEvent {
  return { id: event.id, type: event.type, timestamp: event.timestamp, data: event.data };
}
