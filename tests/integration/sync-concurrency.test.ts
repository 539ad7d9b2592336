import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOLLIE_RANK } from '../../src/payments/status-rules.js';
import type { TimelineStep } from '../../src/sandbox/scripted-provider.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { startRedisServer, startTsWorker } from '../helpers/processes.js';
import type { WorkerConfig } from '../helpers/sync-worker.js';

/**
 * 100 syncPayment calls for one payment from two OS processes while the provider's
 * status moves open → pending → paid, under three lock conditions. Whatever the lock
 * does, the database must end with one row, one transition per status reached, strictly
 * increasing versions, no regression, and one event per transition.
 */

let database: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

const STEPS: TimelineStep[] = [
  { atMs: 0, providerStatus: 'open' },
  { atMs: 900, providerStatus: 'pending' },
  { atMs: 1800, providerStatus: 'paid' },
];

interface WorkerSummary {
  outcomes: Record<string, number>;
  observed: string[];
  lockOutcomes: Record<string, number>;
}

async function race(options: {
  redisUrl?: string;
  lockTtlMs?: number;
  autoExtend?: boolean;
  latencyMs?: number;
  lockWaitMs?: number;
  midway?: () => Promise<void>;
}) {
  const paymentId = `tr_${randomBytes(6).toString('hex')}`;
  const callsPerProcess = 50;
  const spanMs = 2700;
  const base: Omit<WorkerConfig, 'callOffsetsMs'> = {
    databaseUrl: database.url,
    redisUrl: options.redisUrl,
    lockPrefix: redisPrefix('race'),
    provider: 'mollie',
    paymentId,
    steps: STEPS,
    latencyMs: options.latencyMs ?? 15,
    lockTtlMs: options.lockTtlMs ?? 2000,
    autoExtend: options.autoExtend ?? true,
    lockWaitMs: options.lockWaitMs ?? 20_000,
  };
  const bursts = 10;
  // Ten bursts; in each, both processes fire five calls at the same instant.
  const callOffsetsMs = Array.from({ length: callsPerProcess }, (_, i) => Math.floor(i / (callsPerProcess / bursts)) * (spanMs / bursts));
  const workers = [0, 1].map(() => startTsWorker('tests/helpers/sync-worker.ts', { SYNC_WORKER_CONFIG: JSON.stringify({ ...base, callOffsetsMs }) }));
  // The race starts only once both processes are up, however loaded the machine is.
  await Promise.all(workers.map((worker) => worker.ready));
  const timelineStart = Date.now() + 200;
  for (const worker of workers) worker.go(String(timelineStart));
  if (options.midway) {
    // Mid-race: half the bursts have fired with Redis up.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, timelineStart + spanMs / 2 - Date.now())));
    await options.midway();
  }
  const summaries = (await Promise.all(workers.map((worker) => worker.done))).map((out) => JSON.parse(out.trim().split('\n').at(-1)!) as WorkerSummary);
  return { paymentId, summaries };
}

async function assertInvariants(paymentId: string, summaries: WorkerSummary[]) {
  const rows = await sql<{ id: number; status: string; version: number }[]>`
    select id, status, version from payments where provider = 'mollie' and provider_payment_id = ${paymentId}`;
  expect(rows).toHaveLength(1);
  const payment = rows[0]!;
  expect(payment.status).toBe('paid');

  const transitions = await sql<{ version: number; previous_status: string | null; new_status: string }[]>`
    select version, previous_status, new_status from payment_transitions where payment_id = ${payment.id} order by version`;
  // Strictly increasing versions with no gaps, ending at the row's version.
  expect(transitions.map((t) => t.version)).toEqual(transitions.map((_, i) => i + 1));
  expect(payment.version).toBe(transitions.length);
  // One transition into each status reached, in lattice order: nothing moved backwards.
  const statuses = transitions.map((t) => t.new_status);
  expect(new Set(statuses).size).toBe(statuses.length);
  const ranks = statuses.map((status) => MOLLIE_RANK[status]!);
  for (let i = 1; i < ranks.length; i++) expect(ranks[i]!).toBeGreaterThan(ranks[i - 1]!);
  for (let i = 1; i < transitions.length; i++) expect(transitions[i]!.previous_status).toBe(transitions[i - 1]!.new_status);
  // Every status written was one some fetch actually saw.
  const observed = new Set(summaries.flatMap((s) => s.observed));
  for (const status of statuses) expect(observed.has(status)).toBe(true);

  const events = await sql<{ type: string; payment_version: number }[]>`
    select type, payment_version from outbox where provider_payment_id = ${paymentId} order by payment_version`;
  expect(events.map((e) => e.type)).toEqual(statuses.map((status) => `payment.${status}`));
  expect(events.map((e) => e.payment_version)).toEqual(transitions.map((t) => t.version));

  const total = summaries.reduce((sum, s) => sum + Object.entries(s.outcomes).filter(([k]) => k.startsWith('sync:')).reduce((a, [, v]) => a + v, 0), 0);
  return { payment, transitions, events, total };
}

describe('100 concurrent syncs from two processes', () => {
  it('with a healthy Redis lock: one row, one transition per status, one event each', async () => {
    const { paymentId, summaries } = await race({ redisUrl: TEST_REDIS_URL });
    const { total, transitions } = await assertInvariants(paymentId, summaries);
    expect(total).toBe(100);
    // The status really moved during the race, so the test saw more than one write.
    expect(transitions.length).toBeGreaterThanOrEqual(2);
    for (const summary of summaries) expect(summary.lockOutcomes.unavailable ?? 0).toBe(0);
  });

  it('with a lock that expires mid-fetch: still no duplicate and no regression', async () => {
    // The fetch takes 150 ms and the lock lives 40 ms with no extension, so holders overlap.
    const { paymentId, summaries } = await race({ redisUrl: TEST_REDIS_URL, lockTtlMs: 40, autoExtend: false, latencyMs: 150 });
    const { total } = await assertInvariants(paymentId, summaries);
    expect(total).toBe(100);
  });

  it('with Redis killed mid-race: falls back to database guarantees, counted', async () => {
    const redis = await startRedisServer();
    try {
      const { paymentId, summaries } = await race({ redisUrl: redis.url, midway: () => redis.kill() });
      const { total } = await assertInvariants(paymentId, summaries);
      expect(total).toBe(100);
      const fallbacks = summaries.reduce((sum, s) => sum + (s.lockOutcomes.unavailable ?? 0), 0);
      const acquired = summaries.reduce((sum, s) => sum + (s.lockOutcomes.acquired ?? 0), 0);
      expect(acquired).toBeGreaterThan(0);
      expect(fallbacks).toBeGreaterThan(0);
    } finally {
      await redis.kill();
    }
  });
});
