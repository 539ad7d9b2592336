import type postgres from 'postgres';

/**
 * Rows written straight into the tables, aged at will, for the tests of what reads or
 * prunes them by age and state (database gauges, retention). `ageDays` sets every
 * timestamp the row has that far back.
 */
export function opsRows(sql: postgres.Sql) {
  const at = (ageDays: number) => new Date(Date.now() - ageDays * 86_400_000);
  return {
    async receipt(input: { state: 'pending' | 'processed' | 'ignored' | 'failed'; ageDays: number; provider?: string }): Promise<number> {
      const time = at(input.ageDays);
      const [row] = await sql<{ id: string }[]>`
        insert into webhook_receipts (provider, body, headers, signature, state, received_at, processed_at, next_attempt_at)
        values (${input.provider ?? 'mollie'}, ${Buffer.from('id=tr_x')}, ${sql.json({})}, 'absent', ${input.state}, ${time},
                ${input.state === 'processed' || input.state === 'ignored' ? time : null}, ${input.state === 'pending' ? time : null})
        returning id`;
      return Number(row!.id);
    },
    async sink(id: string): Promise<void> {
      await sql`insert into event_sinks (id, kind, target) values (${id}, 'http', ${`https://${id}.example/`}) on conflict do nothing`;
    },
    async event(input: { ageDays: number; relayed: boolean }): Promise<number> {
      const time = at(input.ageDays);
      const eventId = `evt_${Math.random().toString(36).slice(2)}${Date.now()}`;
      const [row] = await sql<{ id: string }[]>`
        insert into outbox (event_id, dedupe_key, type, payload, created_at, relayed_at)
        values (${eventId}, ${eventId}, 'payment.paid', ${sql.json({ id: eventId, type: 'payment.paid', timestamp: time.toISOString(), data: {} })}, ${time}, ${input.relayed ? time : null})
        returning id`;
      return Number(row!.id);
    },
    async delivery(input: { outboxId: number; sinkId: string; state: 'pending' | 'delivered' | 'dead'; ageDays: number }): Promise<number> {
      const time = at(input.ageDays);
      const [row] = await sql<{ id: string }[]>`
        insert into event_deliveries (outbox_id, sink_id, event_id, event_type, state, created_at, delivered_at, dead_lettered_at, last_attempt_at)
        select id, ${input.sinkId}, event_id, type, ${input.state}, ${time}, ${input.state === 'delivered' ? time : null}, ${input.state === 'dead' ? time : null}, ${time}
        from outbox where id = ${input.outboxId}
        returning id`;
      return Number(row!.id);
    },
    async payment(input: { id: string; nextPollAgoSeconds: number | null }): Promise<void> {
      const next = input.nextPollAgoSeconds === null ? null : new Date(Date.now() - input.nextPollAgoSeconds * 1000);
      await sql`
        insert into payments (provider, provider_payment_id, status, provider_status, amount_minor, currency, snapshot, fence, next_poll_at)
        values ('mollie', ${input.id}, 'open', 'open', 1000, 'EUR', ${sql.json({})}, 1, ${next})`;
    },
  };
}
