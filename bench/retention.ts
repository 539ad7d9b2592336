/**
 * `npm run bench -- retention` (or `npx tsx bench/retention.ts`): does the retention job
 * keep up with the rate the gateway writes rows at?
 *
 * A fresh database is filled with what BENCH_RETENTION_WEBHOOKS (default 200,000) webhooks
 * leave behind once they are older than the default policy (per webhook: a settled receipt,
 * an inbound-log row, an outbox event relayed to two sinks and its two delivered attempts),
 * plus a tenth as many rows of the last day that the policy keeps. Then the retention job
 * (`pruneExpiredRows`, the gateway's code, at its default RETENTION_BATCH_SIZE) deletes until
 * it is done, and the bench reports how many webhooks' worth of rows it removes per second,
 * beside the rate scenario (a) of `npm run bench` last recorded in bench/results.json (the
 * webhooks per second one gateway ingests). Checked: every expired row is gone, every kept
 * row is still there. Results go to bench/retention-results.json.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import postgres from 'postgres';
import { parseEnv } from '../src/config/env.js';
import { createDatabase, runMigrations } from '../src/db/client.js';
import { pruneExpiredRows, retentionPolicy } from '../src/retention/retention.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const WEBHOOKS = Number(process.env.BENCH_RETENTION_WEBHOOKS ?? 200_000);
const KEPT = Math.ceil(WEBHOOKS / 10);
const SEED_BATCH = 50_000;
const say = (line: string) => process.stdout.write(`${line}\n`);

async function seed(sql: postgres.Sql, from: number, count: number, ageDays: number): Promise<void> {
  // One transaction per batch; the rows are what the gateway writes, with the ages set.
  await sql.begin(async (tx) => {
    await tx`
      insert into webhook_receipts (provider, account, body, headers, signature, resource_type, resource_id, state, received_at, processed_at)
      select 'mollie', 'default', convert_to('id=tr_bench' || n, 'UTF8'), '{}'::jsonb, 'none', 'payment', 'tr_bench' || n, 'processed',
        now() - ${ageDays} * interval '1 day' - n * interval '1 millisecond', now() - ${ageDays} * interval '1 day' - n * interval '1 millisecond'
      from generate_series(${from}::int, ${from + count - 1}::int) as n`;
    await tx`
      insert into webhook_requests (provider, account, status, outcome, source, duration_ms, request_id, received_at)
      select 'mollie', 'default', 200, 'accepted', '127.0.0.1', 3, 'req_bench' || n, now() - ${ageDays} * interval '1 day' - n * interval '1 millisecond'
      from generate_series(${from}::int, ${from + count - 1}::int) as n`;
    await tx`
      with events as (
        insert into outbox (event_id, dedupe_key, type, provider, provider_payment_id, payment_version, payload, created_at, relayed_at)
        select 'evt_bench' || n, 'bench:' || n, 'payment.paid', 'mollie', 'tr_bench' || n, 1,
          jsonb_build_object('id', 'evt_bench' || n, 'type', 'payment.paid', 'data', jsonb_build_object('paymentId', 'tr_bench' || n)),
          now() - ${ageDays} * interval '1 day' - n * interval '1 millisecond', now() - ${ageDays} * interval '1 day'
        from generate_series(${from}::int, ${from + count - 1}::int) as n
        returning id, event_id, provider_payment_id, created_at)
      insert into event_deliveries (outbox_id, sink_id, event_id, event_type, provider, provider_payment_id, payment_version, state, attempts, created_at, last_attempt_at, delivered_at, last_status)
      select e.id, s.sink, e.event_id, 'payment.paid', 'mollie', e.provider_payment_id, 1, 'delivered', 1, e.created_at, e.created_at, e.created_at, 200
      from events e cross join (values ('bench-sink-a'), ('bench-sink-b')) as s(sink)`;
  });
}

async function counts(sql: postgres.Sql): Promise<Record<string, number>> {
  const [row] = await sql<Record<string, number>[]>`
    select (select count(*) from webhook_receipts)::int as receipts, (select count(*) from webhook_requests)::int as requests,
      (select count(*) from outbox)::int as outbox, (select count(*) from event_deliveries)::int as deliveries`;
  return row!;
}

async function lastIngestRate(): Promise<{ rate: number; at: string } | null> {
  try {
    const results = JSON.parse(await readFile(path.join(ROOT, 'bench/results.json'), 'utf8')) as {
      generatedAt: string;
      a?: { runs?: Array<{ lock: string; max?: { load?: { rate?: number } } }> };
    };
    const rates = (results.a?.runs ?? []).map((run) => run.max?.load?.rate ?? 0);
    return rates.length > 0 ? { rate: Math.max(...rates), at: results.generatedAt } : null;
  } catch {
    return null;
  }
}

export interface RetentionBenchResult {
  allExpiredGone: boolean;
  keptIntact: boolean;
  keepsUp: boolean | null;
}

export async function runRetentionBench(): Promise<RetentionBenchResult> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const name = `gw_bench_retention_${Date.now().toString(36)}`;
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 4, onnotice: () => {} });
  try {
    await runMigrations(url.toString(), path.join(ROOT, 'drizzle'));
    await sql`insert into event_sinks (id, kind, target) values ('bench-sink-a', 'http', 'http://127.0.0.1:9/a'), ('bench-sink-b', 'http', 'http://127.0.0.1:9/b')`;
    const env = parseEnv({});
    const policy = retentionPolicy(env);
    // Older than every default rule but the audit log's (which this bench leaves empty).
    const expiredAge = Math.max(policy.receiptsDays, policy.deliveriesDays, policy.outboxDays, policy.requestsDays) + 5;
    say(`retention bench: ${WEBHOOKS} webhooks' rows older than ${expiredAge} days, ${KEPT} of the last day; batch ${env.RETENTION_BATCH_SIZE}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} cores`);
    const seeding = performance.now();
    for (let from = 0; from < WEBHOOKS; from += SEED_BATCH) await seed(sql, from, Math.min(SEED_BATCH, WEBHOOKS - from), expiredAge);
    await seed(sql, WEBHOOKS, KEPT, 1);
    await sql`vacuum analyze`;
    const before = await counts(sql);
    say(`  seeded in ${((performance.now() - seeding) / 1000).toFixed(1)} s: ${JSON.stringify(before)}`);

    // The gateway's own database handle, as the retention job gets it.
    const database = createDatabase(url.toString(), { max: 2 });
    const db = database.db;
    const started = performance.now();
    const deleted = { receipts: 0, deliveries: 0, outbox: 0, requests: 0, audit: 0 };
    let passes = 0;
    for (;;) {
      const summary = await pruneExpiredRows({ db, clock: { now: () => new Date() } }, { policy, batchSize: env.RETENTION_BATCH_SIZE, budgetMs: 60_000 });
      passes++;
      for (const key of Object.keys(deleted) as (keyof typeof deleted)[]) deleted[key] += summary[key];
      if (summary.complete) break;
    }
    const seconds = (performance.now() - started) / 1000;
    await database.close();
    const after = await counts(sql);
    // Delivered attempts also go with their outbox event (ON DELETE CASCADE): count them from the table.
    const removed = { receipts: before.receipts! - after.receipts!, requests: before.requests! - after.requests!, outbox: before.outbox! - after.outbox!, deliveries: before.deliveries! - after.deliveries! };
    const expected = { receipts: WEBHOOKS, requests: WEBHOOKS, outbox: WEBHOOKS, deliveries: 2 * WEBHOOKS };
    const keptIntact = after.receipts === KEPT && after.requests === KEPT && after.outbox === KEPT && after.deliveries === 2 * KEPT;
    const allGone = JSON.stringify(removed) === JSON.stringify(expected);
    const webhooksPerSecond = WEBHOOKS / seconds;
    const ingest = await lastIngestRate();
    say(`  deleted in ${seconds.toFixed(1)} s (${passes} pass${passes === 1 ? '' : 'es'}): ${JSON.stringify(removed)}; every expired row gone: ${allGone}; every kept row there: ${keptIntact}`);
    say(`  retention removes ${Math.round(webhooksPerSecond)} webhooks' rows per second (${Math.round((5 * WEBHOOKS) / seconds)} rows/s)`);
    if (ingest) say(`  scenario (a) ingested at most ${ingest.rate}/s (bench/results.json of ${ingest.at}): retention is ${(webhooksPerSecond / ingest.rate).toFixed(1)}x that`);
    const result = {
      at: new Date().toISOString(),
      webhooks: WEBHOOKS,
      kept: KEPT,
      batchSize: env.RETENTION_BATCH_SIZE,
      seconds: Math.round(seconds * 10) / 10,
      passes,
      removed,
      allExpiredGone: allGone,
      keptIntact,
      webhooksPerSecond: Math.round(webhooksPerSecond),
      ingestRate: ingest,
      keepsUp: ingest ? webhooksPerSecond >= ingest.rate : null,
      load: os.loadavg(),
      cores: os.cpus().length,
    };
    await writeFile(path.join(ROOT, 'bench/retention-results.json'), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await sql.end();
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runRetentionBench().then(
    (result) => process.exit(result.allExpiredGone && result.keptIntact && result.keepsUp !== false ? 0 : 1),
    (error: unknown) => {
      say(`retention bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
}
