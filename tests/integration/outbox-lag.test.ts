/**
 * gateway_outbox_lag_seconds is read from the database at every scrape, so its query must
 * not grow with the table: after the relay stopped for a while, thousands of events wait behind
 * thousands already relayed, and the query still reads one row (the first waiting event by id).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { outboxLagSeconds, outboxLagSql } from '../../src/events/deliveries.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';

let database: TestDatabase;
let deps: Deps;

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: '' });
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** Rows the plan read from the outbox: those it returned plus those its filters threw away. */
function outboxRowsRead(node: PlanNode): number {
  const own = node['Relation Name'] === 'outbox' ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops'] : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + outboxRowsRead(child), 0);
}

describe('outbox lag', () => {
  it('is 0 with nothing waiting, and the age of the oldest waiting event behind a large table, reading a handful of rows', async () => {
    expect(await outboxLagSeconds(deps.db)).toBe(0);

    // 50,000 events written over the last hour (oldest first); the first 20,000 relayed, then the relay stopped.
    await deps.db.execute(sql`
      insert into outbox (event_id, dedupe_key, type, payload, created_at)
      select 'evt_lag_' || g, 'lag:' || g, 'payment.paid', '{}'::jsonb, now() - interval '1 hour' + g * interval '50 ms'
      from generate_series(1, 50000) as g`);
    await deps.db.execute(sql`update outbox set relayed_at = now() where id <= (select min(id) + 19999 from outbox)`);
    await deps.db.execute(sql`analyze outbox`);

    // The oldest waiting event is the 20,001st: written 3600 - 20001 × 0.05 = 2599.95 s ago.
    const lag = await outboxLagSeconds(deps.db);
    expect(lag).toBeGreaterThan(2599);
    expect(lag).toBeLessThan(2610);

    const [explained] = (await deps.db.execute(sql`explain (analyze, format json) ${outboxLagSql()}`)) as unknown as Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;
    const read = outboxRowsRead(explained!['QUERY PLAN'][0]!.Plan);
    // 30,000 events wait behind 20,000 relayed ones; a min() over them read at least 20,000 rows.
    expect(read, JSON.stringify(explained)).toBeLessThanOrEqual(10);
  });
});
