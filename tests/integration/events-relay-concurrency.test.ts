import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { relayOnce, type RelayStep } from '../../src/events/relay.js';
import { configuredSinks } from '../../src/events/sinks.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually } from '../helpers/deps.js';
import { newPaymentId, SINK_SECRET, writeGatewayEvents, writePaymentHistory } from '../helpers/outbound-events.js';
import type { RelayWorkerConfig } from '../helpers/relay-worker.js';
import { startReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';

let database: TestDatabase;
let sql: postgres.Sql;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});
afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

function relayDeps(receivers: WebhookReceiver[]): Deps {
  const deps = buildTestDeps({ DATABASE_URL: database.url, EVENT_SINK_URLS: receivers.map((r) => r.url).join(','), EVENT_SINK_SECRET: SINK_SECRET, DATABASE_POOL_SIZE: '6' });
  cleanups.push(() => deps.close());
  return deps;
}

/** Fails the first attempt of about a third of the events, by a hash of their id. */
const failsFirst = (id: string) => createHash('sha256').update(id).digest()[0]! % 3 === 0;

function flakyReceiver() {
  const seen = new Set<string>();
  return startReceiver((request) => {
    const first = !seen.has(request.id);
    seen.add(request.id);
    if (first && failsFirst(request.id)) return { status: 500, delayMs: 2 };
    return { status: 200, delayMs: 1 + (request.n % 4) };
  });
}

function startWorker(config: RelayWorkerConfig): { ready: Promise<void>; done: Promise<RelayStep> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(import.meta.dirname, '../helpers/relay-worker.ts')], {
    env: { ...process.env, RELAY_WORKER_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => child.exitCode === null && child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) markReady();
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<RelayStep>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split('\n').at(-1)!)) : reject(new Error(`relay worker exited ${code}\n${stderr}`)))),
  );
  return { ready, done };
}

/** Runs relay steps in this process until every delivery to the sinks is delivered. */
async function relayUntil(deps: Deps, expectedDelivered: number, options: Parameters<typeof relayOnce>[1]): Promise<RelayStep> {
  const totals: RelayStep = { relayed: 0, attempted: 0, delivered: 0, retried: 0, dead: 0, gone: 0, superseded: 0, probed: 0, probeFailed: 0, pulledForward: 0 };
  const sinkIds = configuredSinks(deps).map((sink) => sink.id);
  await eventually(
    async () => {
      const step = await relayOnce(deps, options);
      for (const key of Object.keys(totals) as (keyof RelayStep)[]) totals[key] += step[key];
      if (step.attempted > 0 || step.relayed > 0) return false;
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from event_deliveries where state = 'delivered' and sink_id = any(${sinkIds})`;
      return row!.n >= expectedDelivered;
    },
    { timeoutMs: 40_000, intervalMs: 5, what: 'every delivery' },
  );
  return totals;
}

function perPaymentVersions(requests: ReceivedRequest[]): Map<string, number[]> {
  const versions = new Map<string, number[]>();
  for (const r of requests) {
    const paymentId = r.json?.data.paymentId as string | undefined;
    if (!paymentId) continue;
    versions.set(paymentId, [...(versions.get(paymentId) ?? []), r.json!.data.version as number]);
  }
  return versions;
}

describe('several relays at once', () => {
  it('three relays (two pools here, one other OS process) deliver each event once per attempt, in per-payment order', async () => {
    const receivers = [await flakyReceiver(), await flakyReceiver()];
    for (const r of receivers) cleanups.push(() => r.close());
    const options = { retryDelaysMs: Array.from({ length: 20 }, () => 5), deliveryBatch: 8, concurrency: 4 };

    const payments = Array.from({ length: 16 }, () => newPaymentId());
    const eventCount = payments.length * 5 + 20;
    const worker = startWorker({
      databaseUrl: database.url,
      sinkUrls: receivers.map((r) => r.url),
      secret: SINK_SECRET,
      retryDelaysMs: options.retryDelaysMs,
      deliveryBatch: options.deliveryBatch,
      expectedDelivered: eventCount * receivers.length,
      deadlineMs: 45_000,
    });
    await worker.ready;

    const [a, b] = [relayDeps(receivers), relayDeps(receivers)];
    const writing = (async () => {
      await Promise.all(payments.map((id) => writePaymentHistory(a.db, id, 2)));
      await writeGatewayEvents(a.db, 'race', 20);
    })();
    const [stepsA, stepsB] = await Promise.all([relayUntil(a, eventCount * 2, options), relayUntil(b, eventCount * 2, options), writing]);
    const stepsWorker = await worker.done;

    const verifier = new Webhook(SINK_SECRET);
    for (const receiver of receivers) {
      const counts = new Map<string, number>();
      for (const r of receiver.requests) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
      expect(counts.size).toBe(eventCount);
      // Once per attempt: exactly one request per event, plus exactly one retry for each
      // event whose first attempt failed. A double claim would show as an extra request.
      for (const [id, n] of counts) expect(n, id).toBe(failsFirst(id) ? 2 : 1);
      const accepted = receiver.accepted();
      expect(accepted).toHaveLength(eventCount);
      expect(new Set(accepted.map((r) => r.id)).size).toBe(eventCount);
      for (const [paymentId, versions] of perPaymentVersions(accepted)) expect(versions, paymentId).toEqual([1, 2, 3, 4, 5]);
      for (const r of receiver.requests) expect(verifier.verify(r.body, r.headers as Record<string, string>)).toMatchObject({ id: r.id });
    }

    const all = [stepsA, stepsB, stepsWorker];
    const sum = (key: keyof RelayStep) => all.reduce((total, s) => total + s[key], 0);
    expect(sum('relayed')).toBe(eventCount);
    expect(sum('delivered')).toBe(eventCount * 2);
    expect(sum('attempted')).toBe(receivers[0]!.requests.length + receivers[1]!.requests.length);
    expect(sum('superseded')).toBe(0);
    // The work really was shared (each in-process relay claimed some).
    expect(stepsA.attempted).toBeGreaterThan(0);
    expect(stepsB.attempted).toBeGreaterThan(0);
    const [rows] = await sql<{ n: number }[]>`select count(*)::int as n from event_deliveries where state <> 'delivered'`;
    expect(rows!.n).toBe(0);
  });

  it('an attempt that outlives its lease is taken over; its late outcome is not recorded over the new owner', async () => {
    const slowOnce = await startReceiver((r) => (r.n === 0 ? { status: 200, delayMs: 800 } : { status: 200 }));
    cleanups.push(() => slowOnce.close());
    const [a, b] = [relayDeps([slowOnce]), relayDeps([slowOnce])];
    const [eventId] = await writeGatewayEvents(a.db, 'lease', 1);

    // A claims with a short lease and is stuck on the slow first answer.
    await eventually(async () => (await relayOnce(a, { deliveryBatch: 0 })).relayed > 0, { what: 'fan-out' });
    const stepA = relayOnce(a, { leaseMs: 150 });
    await eventually(async () => slowOnce.requests.length === 1, { what: 'first attempt' });
    // B takes the delivery over once A's lease has run out.
    await eventually(async () => (await relayOnce(b, {})).delivered === 1, { what: 'B delivers' });
    const a1 = await stepA;
    expect(a1).toMatchObject({ attempted: 1, delivered: 0, superseded: 1 });
    expect(slowOnce.requests.map((r) => r.id)).toEqual([eventId, eventId]);
    const [row] = await sql<{ state: string; attempts: number }[]>`select state, attempts from event_deliveries where event_id = ${eventId!}`;
    expect(row).toEqual({ state: 'delivered', attempts: 2 });
  });
});
