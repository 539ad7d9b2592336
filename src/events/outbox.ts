import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { currentTraceParent } from '../observability/tracing.js';
import { newEventId, type OutboundEvent } from './payment-events.js';

export interface NewOutboxEvent {
  type: string;
  /**
   * What makes this event exactly-once, e.g. `gocardless:event:EV123` or
   * `poller:degraded:mollie:default:<since>`. A second enqueue with the same key is a no-op.
   */
  dedupeKey: string;
  provider?: string | null;
  providerPaymentId?: string | null;
  paymentVersion?: number | null;
  data: Record<string, unknown>;
  timestamp?: Date;
}

/**
 * Adds events that are not payment changes (forwarded provider events, poller health,
 * stuck payments) to the outbox. Pass the caller's transaction to commit them with
 * the state they describe. Returns the event ids actually added.
 */
export async function enqueueEvents(db: DbOrTx, events: NewOutboxEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const traceParent = currentTraceParent();
  const rows = events.map((event) => {
    const id = newEventId();
    const payload: OutboundEvent = { id, type: event.type, timestamp: (event.timestamp ?? new Date()).toISOString(), data: event.data };
    return {
      event_id: id,
      dedupe_key: event.dedupeKey,
      type: event.type,
      provider: event.provider ?? null,
      provider_payment_id: event.providerPaymentId ?? null,
      payment_version: event.paymentVersion ?? null,
      payload,
      trace_parent: traceParent,
    };
  });
  // The dedupe key's unique index, not a prior SELECT, decides whether an event is new.
  const inserted = await db.execute<{ event_id: string }>(sql`
    insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent)
    select event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, trace_parent
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as e(
      event_id text, dedupe_key text, type text, provider text,
      provider_payment_id text, payment_version int, payload jsonb, trace_parent text)
    on conflict (dedupe_key) do nothing
    returning event_id`);
  return inserted.map((row) => row.event_id);
}
