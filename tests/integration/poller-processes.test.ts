import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { eventually } from '../helpers/deps.js';
import type { PollerWorkerConfig } from '../helpers/poller-worker.js';

/**
 * The poller across real OS processes: three processes share 10,000 due payments
 * without polling any twice; a SIGKILLed process's leases lapse and another process
 * finishes its work; SIGTERM finishes in-flight polls and hands the rest back.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
let database: TestDatabase;
let sql: postgres.Sql;
const workers: Worker[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 3, onnotice: () => {} });
});

afterEach(async () => {
  for (const worker of workers.splice(0)) worker.kill('SIGKILL');
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

interface WorkerSummary {
  name: string;
  fetches: Record<string, number>;
}

interface Worker {
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(predicate: (lines: string[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  summary(): WorkerSummary;
}

function startWorker({ useRedis = true, ...config }: Omit<PollerWorkerConfig, 'databaseUrl' | 'redisUrl'> & { useRedis?: boolean }): Worker {
  const full: PollerWorkerConfig = { databaseUrl: database.url, redisUrl: useRedis ? TEST_REDIS_URL : undefined, ...config };
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(ROOT, 'tests/helpers/poller-worker.ts')], {
    cwd: ROOT,
    env: { ...process.env, POLLER_WORKER_CONFIG: JSON.stringify(full) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const worker: Worker = {
    child,
    lines,
    exited,
    async waitFor(predicate, what, timeoutMs = 30_000) {
      await eventually(
        async () => {
          if (child.exitCode !== null) throw new Error(`${config.name} exited ${child.exitCode}: ${stderr}`);
          return predicate(lines);
        },
        { timeoutMs, intervalMs: 20, what: `${config.name}: ${what}` },
      );
    },
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    summary() {
      const last = lines.filter((line) => line.startsWith('{')).at(-1);
      if (!last) throw new Error(`${config.name} printed no summary; stderr:\n${stderr}`);
      return JSON.parse(last) as WorkerSummary;
    },
  };
  workers.push(worker);
  return worker;
}

async function insertOpenPayments(idPrefix: string, count: number, method: string, due: boolean) {
  // One statement: generate_series instead of 10,000 round trips.
  await sql`
    insert into payments (provider, provider_payment_id, account, status, provider_status, amount_minor, currency,
      method, snapshot, fence, provider_created_at, next_poll_at)
    select 'mollie', ${idPrefix} || i, 'default', 'open', 'open', 1000, 'EUR',
      ${method}, '{}'::jsonb, 0, now(), case when ${due} then now() end
    from generate_series(0, ${count - 1}) as i`;
}

describe('the poller across OS processes', () => {
  it('three processes poll 10,000 due payments, each exactly once', async () => {
    const started = Date.now();
    const count = 10_000;
    const idPrefix = 'tr_k';
    // Bank transfers: after a poll that finds nothing new, the next is hours away, so
    // within this test every payment has exactly one due time.
    await insertOpenPayments(idPrefix, count, 'banktransfer', false);
    const lockPrefix = redisPrefix('poller10k');
    const env = { POLLER_BATCH_SIZE: '100', POLLER_CONCURRENCY: '8', DATABASE_POOL_SIZE: '10' };
    // No Redis lock here: it would serialise a doubly leased poll, not prevent it (the
    // fetch counts would still show it), and it costs two round trips per poll.
    const pool = ['p1', 'p2', 'p3'].map((name) => startWorker({ name, lockPrefix, idPrefix, count, latencyMs: 0, env, useRedis: false }));
    await Promise.all(pool.map((w) => w.waitFor((lines) => lines.includes('ready'), 'ready')));

    // All due at once, with every process already looking.
    await sql`update payments set next_poll_at = now() where provider_payment_id like ${`${idPrefix}%`}`;
    const dueFrom = Date.now();
    await eventually(
      async () => {
        const [row] = await sql<{ due: number; leased: number }[]>`
          select count(*) filter (where next_poll_at <= now())::int as due,
                 count(*) filter (where poll_lease_owner is not null)::int as leased
          from payments`;
        return row!.due === 0 && row!.leased === 0;
      },
      // About 20 s on an idle 2-core box; generous because the box is shared.
      { timeoutMs: 100_000, intervalMs: 200, what: 'every due payment polled and released' },
    );
    const drainedMs = Date.now() - dueFrom;
    for (const w of pool) w.kill('SIGTERM');
    for (const w of pool) expect(await w.exited).toEqual({ code: 0, signal: null });

    const summaries = pool.map((w) => w.summary());
    const total = new Map<string, number>();
    for (const s of summaries) for (const [id, n] of Object.entries(s.fetches)) total.set(id, (total.get(id) ?? 0) + n);
    expect(total.size).toBe(count);
    const twice = [...total.entries()].filter(([, n]) => n !== 1);
    expect(twice).toEqual([]);
    // The work was shared, not done by whichever process came first.
    for (const s of summaries) expect(Object.keys(s.fetches).length).toBeGreaterThan(count / 10);

    const [state] = await sql<{ paid: number; paid_scheduled: number; open: number; open_soon: number; unpolled: number; events: number }[]>`
      select
        count(*) filter (where status = 'paid')::int as paid,
        count(*) filter (where status = 'paid' and next_poll_at is not null)::int as paid_scheduled,
        count(*) filter (where status = 'open')::int as open,
        count(*) filter (where status = 'open' and (next_poll_at < now() + interval '1 hour' or poll_attempts <> 1))::int as open_soon,
        count(*) filter (where status = 'open' and last_polled_at is null)::int as unpolled,
        (select count(*)::int from outbox where type = 'payment.paid') as events
      from payments where provider_payment_id like ${`${idPrefix}%`}`;
    expect(state).toEqual({ paid: count / 2, paid_scheduled: 0, open: count / 2, open_soon: 0, unpolled: 0, events: count / 2 });
    console.info(`10k polls: drained in ${drainedMs} ms by ${summaries.map((s) => `${s.name}=${Object.keys(s.fetches).length}`).join(' ')}; test ${Date.now() - started} ms`);
  }, 150_000);

  it("a killed process's leases lapse and another process finishes its polls", async () => {
    const count = 30;
    const idPrefix = 'tr_kill';
    await insertOpenPayments(idPrefix, count * 2, 'ideal', false);
    const lockPrefix = redisPrefix('pollerkill');
    // The even ones, which the provider reports paid, are due.
    const ids = Array.from({ length: count }, (_, i) => `${idPrefix}${i * 2}`);
    await sql`update payments set next_poll_at = now() where provider_payment_id = any(${ids})`;
    const env = { POLLER_LEASE_MS: '3000', POLLER_BATCH_SIZE: String(count), POLLER_CONCURRENCY: String(count) };
    const doomed = startWorker({ name: 'doomed', lockPrefix, idPrefix, count: count * 2, latencyMs: 120_000, reportFetches: true, env });
    await doomed.waitFor((lines) => lines.filter((line) => line.startsWith('fetch ')).length >= count, 'all fetches in flight');
    const leases = await sql<{ owner: string; until: Date }[]>`
      select poll_lease_owner as owner, poll_lease_until as until from payments where provider_payment_id = any(${ids})`;
    expect(leases.every((l) => l.owner?.startsWith('doomed:'))).toBe(true);
    const leaseEnd = Math.max(...leases.map((l) => l.until.getTime()));
    doomed.kill('SIGKILL');
    expect((await doomed.exited).signal).toBe('SIGKILL');

    const heir = startWorker({ name: 'heir', lockPrefix, idPrefix, count: count * 2, latencyMs: 0, env });
    await eventually(
      async () => {
        const [row] = await sql<{ done: number }[]>`
          select count(*)::int as done from payments
          where provider_payment_id = any(${ids}) and status = 'paid' and poll_lease_owner is null`;
        return row!.done === count;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the heir to finish the killed process’s polls' },
    );
    heir.kill('SIGTERM');
    expect(await heir.exited).toEqual({ code: 0, signal: null });
    const summary = heir.summary();
    expect(Object.keys(summary.fetches).sort()).toEqual([...ids].sort());
    expect(Object.values(summary.fetches).every((n) => n === 1)).toBe(true);
    // Not before the dead owner's lease ran out.
    const [first] = await sql<{ at: Date }[]>`select min(last_polled_at) as at from payments where provider_payment_id = any(${ids})`;
    expect(first!.at.getTime()).toBeGreaterThanOrEqual(leaseEnd);
    const [events] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where type = 'payment.paid' and provider_payment_id = any(${ids})`;
    expect(events!.n).toBe(count);
  }, 60_000);

  it('SIGTERM lets in-flight polls finish and hands the rest back, due as before', async () => {
    const count = 12;
    const idPrefix = 'tr_term';
    await insertOpenPayments(idPrefix, count * 2, 'ideal', false);
    const ids = Array.from({ length: count }, (_, i) => `${idPrefix}${i * 2}`);
    // Only the even ones (paid at the provider) are due.
    await sql`update payments set next_poll_at = now() - interval '5 seconds' where provider_payment_id = any(${ids})`;
    const lockPrefix = redisPrefix('pollerterm');
    const env = { POLLER_BATCH_SIZE: String(count), POLLER_CONCURRENCY: '2' };
    const worker = startWorker({ name: 'term', lockPrefix, idPrefix, count: count * 2, latencyMs: 1500, reportFetches: true, env });
    await worker.waitFor((lines) => lines.filter((line) => line.startsWith('fetch ')).length >= 2, 'two polls in flight');
    worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    const fetched = Object.keys(worker.summary().fetches);
    expect(fetched).toHaveLength(2);

    const rows = await sql<{ id: string; status: string; owner: string | null; due: boolean; attempts: number; polled: boolean }[]>`
      select provider_payment_id as id, status, poll_lease_owner as owner, next_poll_at <= now() - interval '4 seconds' as due,
        poll_attempts as attempts, last_polled_at is not null as polled
      from payments where provider_payment_id = any(${ids})`;
    expect(rows.filter((r) => r.owner !== null)).toEqual([]);
    // The two in flight finished and were written...
    expect(rows.filter((r) => r.status === 'paid').map((r) => r.id).sort()).toEqual(fetched.sort());
    // ...and the rest are due again with their original due time, untouched.
    const handedBack = rows.filter((r) => !fetched.includes(r.id));
    expect(handedBack).toHaveLength(count - 2);
    expect(handedBack.every((r) => r.status === 'open' && r.due && r.attempts === 0 && !r.polled)).toBe(true);
  }, 60_000);
});
