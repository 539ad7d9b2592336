import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { withTimeout } from '../poller/readiness.js';
import type { Metrics } from './metrics.js';
import { ACCOUNT_STATUSES } from '../accounts/store.js';
import { PROVIDERS } from '../providers/types.js';

/**
 * The fleet-wide gauges, read from the database at each scrape: receipts waiting or given
 * up on, dead letters per sink, the most overdue poll, stored accounts by status. Any process answers for all of
 * them, also one that runs no background job. Each read uses a partial index, and a slow
 * database never fails the scrape (the previous values stay).
 */
export async function refreshDatabaseGauges(deps: { db: Db; metrics: Metrics }): Promise<void> {
  await withTimeout(readInto(deps)).catch(() => {});
}

async function readInto({ db, metrics }: { db: Db; metrics: Metrics }): Promise<void> {
  const [receipts, oldest, deadLetters, overdue, accounts] = await Promise.all([
    db.execute<{ provider: string; state: string; count: number }>(sql`
      select provider, state, count(*)::int as count from webhook_receipts
      where state in ('pending', 'failed') group by provider, state`),
    db.execute<{ age: number | null }>(sql`
      select extract(epoch from now() - min(received_at))::float8 as age from webhook_receipts where state = 'pending'`),
    db.execute<{ sink_id: string; count: number }>(sql`
      select s.id as sink_id, count(d.id)::int as count from event_sinks s
      left join event_deliveries d on d.sink_id = s.id and d.state = 'dead' group by s.id`),
    db.execute<{ age: number | null }>(sql`
      select extract(epoch from now() - min(next_poll_at))::float8 as age from payments
      where next_poll_at is not null and next_poll_at <= now()`),
    db.execute<{ provider: string; status: string; count: number }>(sql`select provider, status, count(*)::int as count from accounts group by provider, status`),
  ]);
  metrics.receipts.reset();
  for (const provider of new Set(receipts.map((row) => row.provider))) {
    // Both states are always present per provider, so "failed" reads 0 rather than vanishing.
    for (const state of ['pending', 'failed']) metrics.receipts.set({ provider, state }, 0);
  }
  for (const row of receipts) metrics.receipts.set({ provider: row.provider, state: row.state }, Number(row.count));
  metrics.oldestPendingReceipt.set(Math.max(0, Number(oldest[0]?.age ?? 0)));
  metrics.deadLetters.reset();
  for (const row of deadLetters) metrics.deadLetters.set({ sink: row.sink_id }, Number(row.count));
  metrics.oldestDuePoll.set(Math.max(0, Number(overdue[0]?.age ?? 0)));
  metrics.accounts.reset();
  for (const provider of PROVIDERS) {
    // Every status always present, so "broken" reads 0 rather than vanishing (and an alert on it resolves).
    for (const status of ACCOUNT_STATUSES) metrics.accounts.set({ provider, status }, 0);
  }
  for (const row of accounts) metrics.accounts.set({ provider: row.provider, status: row.status }, Number(row.count));
}
