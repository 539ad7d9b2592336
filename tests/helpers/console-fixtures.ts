import { sql } from 'drizzle-orm';
import type { Deps } from '../../src/deps.js';
import { relayOnce } from '../../src/events/relay.js';
import { sinkId, type EventSink } from '../../src/events/sinks.js';
import { eventually } from './deps.js';

/** A sink that answers 500 to everything: with a spent retry schedule, every event becomes a dead letter. */
export function failingSink(target = 'https://billing.example/webhooks'): EventSink {
  return {
    id: sinkId('http', target),
    kind: 'http',
    target,
    deliver: async () => ({ kind: 'failed', status: 500, error: 'sink answered HTTP 500' }),
  };
}

export function acceptingSink(target = 'https://ledger.example/events'): EventSink {
  return { id: sinkId('http', target), kind: 'http', target, deliver: async () => ({ kind: 'delivered', status: 204 }) };
}

/**
 * Runs the outbound engineer's relay (relayOnce) until the outbox is empty and no
 * delivery is pending: every event either delivered or a dead letter. `retryDelaysMs`
 * [0] gives each failing delivery one immediate retry before it is given up.
 */
export async function relayUntilSettled(deps: Deps, sinks: EventSink[]): Promise<void> {
  await eventually(
    async () => {
      await relayOnce(deps, { sinks, retryDelaysMs: [0] });
      const [row] = await deps.db.execute<{ waiting: number }>(sql`
        select ((select count(*) from outbox where relayed_at is null) + (select count(*) from event_deliveries where state = 'pending'))::int as waiting`);
      return Number(row?.waiting) === 0;
    },
    { what: 'the relay to settle every event', timeoutMs: 20_000 },
  );
}

export async function deadLetterIds(deps: Deps, paymentId: string): Promise<number[]> {
  const rows = await deps.db.execute<{ id: number }>(sql`
    select id from event_deliveries where provider_payment_id = ${paymentId} and state = 'dead' order by id`);
  return rows.map((row) => Number(row.id));
}

export async function deliveryState(deps: Deps, id: number): Promise<{ state: string; attempts: number } | undefined> {
  const [row] = await deps.db.execute<{ state: string; attempts: number }>(sql`select state, attempts from event_deliveries where id = ${id}`);
  return row ? { state: row.state, attempts: Number(row.attempts) } : undefined;
}
