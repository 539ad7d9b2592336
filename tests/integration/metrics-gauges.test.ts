/**
 * /metrics carries the request-duration histogram (per route pattern and outcome), the
 * gauges read from the database at scrape time (receipts pending and failed, dead letters
 * per sink, the most overdue poll, outbox lag) and the build info.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';
import { opsRows } from '../helpers/ops-rows.js';

let database: TestDatabase;
let sql: postgres.Sql;
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  deps = buildTestDeps({ DATABASE_URL: database.url });
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await sql?.end();
  await database?.drop();
});

async function scrape(): Promise<string> {
  const response = await app.request('/metrics');
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one series, by its exact name and label set as Prometheus prints it. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('times requests per route pattern and outcome, never per raw path', async () => {
    // Mollie is not configured here: the webhook is refused (404), a client error.
    expect((await app.request('/webhooks/mollie/acme', { method: 'POST', body: 'id=tr_1' })).status).toBe(404);
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/no/such/route/tr_123')).status).toBe(404);
    const text = await scrape();
    expect(sample(text, 'gateway_http_request_duration_seconds_count{method="POST",route="/webhooks/mollie/:account",status="404",outcome="client_error"}')).toBe(1);
    expect(sample(text, 'gateway_http_request_duration_seconds_count{method="GET",route="/healthz",status="200",outcome="ok"}')).toBe(1);
    expect(sample(text, 'gateway_http_request_duration_seconds_count{method="GET",route="unmatched",status="404",outcome="client_error"}')).toBe(1);
    expect(text).not.toContain('tr_123');
    expect(text).toMatch(/gateway_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/healthz"/);
  });

  it('reads receipts, dead letters and the most overdue poll from the database at each scrape', async () => {
    const rows = opsRows(sql);
    await rows.receipt({ state: 'failed', ageDays: 1 });
    await rows.receipt({ state: 'failed', ageDays: 2, provider: 'gocardless' });
    await rows.receipt({ state: 'pending', ageDays: 0.5 });
    await rows.receipt({ state: 'processed', ageDays: 1 });
    await rows.sink('snk_a');
    await rows.sink('snk_b');
    const event = await rows.event({ ageDays: 1, relayed: true });
    await rows.delivery({ outboxId: event, sinkId: 'snk_a', state: 'dead', ageDays: 1 });
    await rows.payment({ id: 'tr_overdue', nextPollAgoSeconds: 600 });
    await rows.payment({ id: 'tr_later', nextPollAgoSeconds: -600 });

    let text = await scrape();
    expect(sample(text, 'gateway_webhook_receipts{provider="mollie",state="failed"}')).toBe(1);
    expect(sample(text, 'gateway_webhook_receipts{provider="mollie",state="pending"}')).toBe(1);
    expect(sample(text, 'gateway_webhook_receipts{provider="gocardless",state="failed"}')).toBe(1);
    expect(sample(text, 'gateway_webhook_receipts{provider="gocardless",state="pending"}')).toBe(0);
    expect(sample(text, 'gateway_webhook_receipt_oldest_pending_seconds')).toBeGreaterThanOrEqual(0.5 * 86_400 - 60);
    expect(sample(text, 'gateway_dead_letters{sink="snk_a"}')).toBe(1);
    expect(sample(text, 'gateway_dead_letters{sink="snk_b"}')).toBe(0);
    const overdue = sample(text, 'gateway_poller_oldest_due_seconds')!;
    expect(overdue).toBeGreaterThanOrEqual(600);
    expect(overdue).toBeLessThan(700);

    // Fixed in the database: the next scrape says so.
    await sql`update webhook_receipts set state = 'processed' where state = 'failed' and provider = 'mollie'`;
    await sql`update payments set next_poll_at = null`;
    text = await scrape();
    expect(sample(text, 'gateway_webhook_receipts{provider="mollie",state="failed"}')).toBe(0);
    expect(sample(text, 'gateway_poller_oldest_due_seconds')).toBe(0);
  });

  it('says which version runs on which Node.js', async () => {
    const text = await scrape();
    expect(sample(text, `gateway_build_info{version="0.1.0",node_version="${process.versions.node}"}`)).toBe(1);
  });
});
