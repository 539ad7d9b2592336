import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.js';
import { enqueueEvents } from '../../src/events/outbox.js';
import { relayOnce, type RelayDeps, type RelayOptions } from '../../src/events/relay.js';
import { configuredSinks } from '../../src/events/sinks.js';
import { eventually } from './deps.js';
import { applySnapshot, takeFetchFence } from '../../src/payments/apply-snapshot.js';
import type { PaymentSnapshot, PaymentStatus } from '../../src/providers/types.js';

export const SINK_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
export const PREVIOUS_SINK_SECRET = 'whsec_c2VjcmV0LWJlZm9yZS10aGUtcm90YXRpb24=';

export const newPaymentId = (prefix = 'tr_') => `${prefix}${randomBytes(5).toString('hex')}`;

function snapshot(id: string, providerStatus: PaymentStatus, refundedMinor: number): PaymentSnapshot {
  return {
    provider: 'mollie',
    account: 'default',
    providerPaymentId: id,
    providerStatus,
    status: providerStatus,
    amount: { minor: 4995, currency: 'EUR' },
    refundedMinor,
    chargedBackMinor: 0,
    mode: 'test',
    method: 'ideal',
    metadata: { invoiceId: `INV-${id}` },
    providerCreatedAt: new Date('2026-11-01T10:00:00Z'),
    raw: { id, status: providerStatus },
  };
}

/**
 * Writes a payment's life through the one real write path (applySnapshot): open,
 * pending, paid, then `refunds` partial refunds. One event per version, versions 1..n.
 * Returns the event types in version order.
 */
export async function writePaymentHistory(db: Db, id: string, refunds = 2): Promise<string[]> {
  const steps: [PaymentStatus, number][] = [['open', 0], ['pending', 0], ['paid', 0]];
  for (let i = 1; i <= refunds; i++) steps.push(['paid', i * 100]);
  const types: string[] = [];
  for (const [status, refunded] of steps) {
    const result = await applySnapshot(db, { snapshot: snapshot(id, status, refunded), fence: await takeFetchFence(db), source: 'poll' });
    if (!result.changed) throw new Error(`test setup: ${id} ${status} did not change`);
    types.push(...result.eventTypes);
  }
  return types;
}

/** An event that belongs to no payment, as the poller health events do. */
export async function writeGatewayEvent(db: Db, label: string): Promise<string> {
  const [id] = await writeGatewayEvents(db, label, 1);
  return id!;
}

/** `count` such events in one transaction. */
export function writeGatewayEvents(db: Db, label: string, count: number): Promise<string[]> {
  return enqueueEvents(
    db,
    Array.from({ length: count }, (_, i) => ({
      type: 'gateway.poller.degraded',
      dedupeKey: `test:${label}:${i}:${randomBytes(4).toString('hex')}`,
      data: { provider: 'mollie', account: 'default', label, n: i },
    })),
  );
}

/**
 * Runs relay steps by hand until the outbox is fully handed out and none of the relay's
 * enabled sinks has a delivery pending: a deterministic end point for tests that step
 * the relay themselves. Waits out transactions elsewhere on the server that hold the
 * commit horizon back.
 */
export async function drainRelay(deps: RelayDeps, options: RelayOptions = {}): Promise<void> {
  const sinkIds = (options.sinks ?? configuredSinks(deps)).map((sink) => sink.id);
  await eventually(
    async () => {
      const step = await relayOnce(deps, options);
      if (step.relayed > 0 || step.attempted > 0) return false;
      const [row] = await deps.db.execute<{ unrelayed: number; pending: number }>(sql`
        select (select count(*) from outbox where relayed_at is null)::int as unrelayed,
               (select count(*) from event_deliveries d join event_sinks s on s.id = d.sink_id
                where d.state = 'pending' and s.disabled_at is null
                  and d.sink_id = any(string_to_array(${sinkIds.join(',')}, ',')))::int as pending`);
      return row!.unrelayed === 0 && row!.pending === 0;
    },
    { timeoutMs: 30_000, intervalMs: 5, what: 'the relay to drain' },
  );
}
