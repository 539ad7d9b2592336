/**
 * Shared by the fault tests (tests/integration/faults-*.test.ts): a stack of real gateway
 * processes in front of the Mollie sandbox and a signature-checking downstream sink, a
 * Mollie-like load (status changes announced by classic webhooks, retried until 200
 * like Mollie does, plus return-page syncs), and the checks every fault must pass:
 * one row per payment, transitions monotone in Mollie's lattice, every acknowledged
 * webhook applied, every change's event delivered, no 500.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import postgres from 'postgres';
import { expect } from 'vitest';
import { MOLLIE_RANK } from '../../src/payments/status-rules.js';
import { errorMessage } from '../../src/primitives/error-message.js';
import { startDownstreamReceiver, type DownstreamReceiver } from '../../src/sandbox/downstream-receiver.js';
import {
  effectiveStatus,
  SANDBOX_DEFAULT_API_KEY,
  startMollieSandbox,
  type MollieSandbox,
  type SandboxPaymentStatus,
} from '../../src/sandbox/mollie-api.js';
import { auth, eventually, TEST_ADMIN_TOKEN } from './deps.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { SINK_SECRET } from './outbound-events.js';

// ---------------------------------------------------------------------------------------
// The stack

export interface FaultStack {
  sandbox: MollieSandbox;
  sink: DownstreamReceiver;
  gateways: GatewayProcess[];
  env: Record<string, string>;
  /** Starts one more gateway process with the stack's environment. */
  startGateway(extra?: Record<string, string>): Promise<GatewayProcess>;
  /** Gateways that exited on their own (not stopped or killed by the test). */
  crashed(): GatewayProcess[];
  close(): Promise<void>;
}

export async function startFaultStack(options: { databaseUrl: string; redisUrl?: string; gateways: number; env?: Record<string, string> }): Promise<FaultStack> {
  const sandbox = await startMollieSandbox();
  const sink = await startDownstreamReceiver({ secret: SINK_SECRET });
  const env: Record<string, string> = {
    DATABASE_URL: options.databaseUrl,
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    MOLLIE_API_KEY: SANDBOX_DEFAULT_API_KEY,
    MOLLIE_API_URL: sandbox.url,
    EVENT_SINK_URLS: sink.url,
    EVENT_SINK_SECRET: SINK_SECRET,
    EVENT_SINK_TIMEOUT_MS: '3000',
    // The faults are the subject; a sweep or a 30 s first poll would only blur the figures.
    MOLLIE_SWEEP_INTERVAL_MS: '0',
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const gateways: GatewayProcess[] = [];
  const deliberate = new Set<GatewayProcess>();
  const startGateway = async (extra: Record<string, string> = {}) => {
    const gateway = await startGatewayProcess({ ...env, ...extra }, { timeoutMs: 45_000 });
    // stop() and kill() are deliberate; an exit without them is a crash.
    const { stop, kill } = gateway;
    gateway.stop = () => (deliberate.add(gateway), stop());
    gateway.kill = () => (deliberate.add(gateway), kill());
    gateways.push(gateway);
    return gateway;
  };
  await Promise.all(Array.from({ length: options.gateways }, () => startGateway()));
  return {
    sandbox,
    sink,
    gateways,
    env,
    startGateway,
    crashed: () => gateways.filter((g) => !deliberate.has(g) && (g.child.exitCode !== null || g.child.signalCode !== null)),
    async close() {
      for (const gateway of gateways) {
        if (!deliberate.has(gateway) && (gateway.child.exitCode !== null || gateway.child.signalCode !== null)) {
          process.stderr.write(`gateway ${gateway.url} exited by itself (${gateway.child.exitCode ?? gateway.child.signalCode}):\n${gateway.output().slice(-4000)}\n`);
        }
      }
      await Promise.all(
        gateways.map(async (gateway) => {
          const stopped = await Promise.race([gateway.stop(), new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000))]);
          if (stopped === 'timeout') await gateway.kill();
        }),
      );
      await sandbox.close();
      await sink.close();
    },
  };
}

/** Live gateways' URLs (the load picks among them, like a load balancer with health checks would not). */
export const urlsOf = (gateways: GatewayProcess[]) => gateways.map((g) => g.url);

// ---------------------------------------------------------------------------------------
// Metrics

export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** Sum of a metric's samples whose labels include all of `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^(\S+?)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) sum += Number(match[3]);
  }
  return sum;
}

/** A metric summed over several gateways; gateways that do not answer count 0. */
export async function metricAcross(urls: string[], name: string, labels: Record<string, string> = {}): Promise<number> {
  const texts = await Promise.all(urls.map((url) => scrape(url).catch(() => '')));
  return texts.reduce((sum, text) => sum + metricSum(text, name, labels), 0);
}

// ---------------------------------------------------------------------------------------
// A Redis server on a port of the test's choosing, so it can be restarted on the same one

export interface RedisOnPort {
  url: string;
  port: number;
  kill(): Promise<void>;
}

export async function startRedisOnPort(port: number): Promise<RedisOnPort> {
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${port}: ${out}`)), 10_000);
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited ${code}: ${out}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

// ---------------------------------------------------------------------------------------
// The load

/** Each payment walks one of these paths from `open`; every step is one webhook. */
const PATHS: SandboxPaymentStatus[][] = [
  ['pending', 'paid'],
  ['pending', 'authorized', 'paid'],
  ['failed'],
  ['pending', 'expired'],
  ['canceled'],
  ['authorized', 'paid'],
  ['paid'],
];

export interface WebhookRecord {
  paymentId: string;
  /** The sandbox status the webhook announced (set just before it was sent). */
  status: SandboxPaymentStatus;
  attempts: { target: string; status: number | null; error?: string; at: number }[];
  acknowledged: boolean;
}

export interface SyncRecord {
  paymentId: string;
  target: string;
  status: number | null;
  error?: string;
  at: number;
}

export interface LoadOptions {
  sandbox: MollieSandbox;
  /** Where to send each attempt (read at every attempt, so gateways can come and go). */
  targets: () => string[];
  payments: number;
  /** Payments moved at once. */
  concurrency: number;
  /** Pause between a lane's steps, so the load spans the fault. */
  paceMs: number;
  /** A return-page sync accompanies this share of the steps. */
  syncShare?: number;
  /** Mollie retries a webhook until it gets a 200; compressed here. */
  retryDelayMs?: number;
  maxAttempts?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export interface MollieLoad {
  ids: string[];
  webhooks: WebhookRecord[];
  syncs: SyncRecord[];
  /** Steps completed (acknowledged or given up). */
  steps(): number;
  totalSteps: number;
  /** Resolves once `count` more steps have completed after this call. */
  advance(count: number): Promise<void>;
  done: Promise<void>;
}

function pick<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

async function post(url: string, init: RequestInit, timeoutMs: number): Promise<{ status: number | null; error?: string }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    // An unexpected answer keeps the start of its body, so a failed assertion says what it was.
    return res.status >= 500 && res.status !== 503 ? { status: res.status, error: body.slice(0, 300) } : { status: res.status };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { status: null, error: cause ?? (error as Error).name };
  }
}

export function startMollieLoad(options: LoadOptions): MollieLoad {
  const { sandbox } = options;
  const plans = Array.from({ length: options.payments }, (_, i) => {
    const payment = sandbox.createPayment({ status: 'open', method: 'ideal', metadata: { order: `ORD-${i}` } });
    return { id: payment.id, path: PATHS[i % PATHS.length]! };
  });
  const webhooks: WebhookRecord[] = [];
  const syncs: SyncRecord[] = [];
  let completed = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  const timeoutMs = options.timeoutMs ?? 15_000;
  const retryDelayMs = options.retryDelayMs ?? 200;
  const maxAttempts = options.maxAttempts ?? 100;

  const stepDone = () => {
    completed++;
    for (const waiter of [...waiters]) {
      if (completed >= waiter.at) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  async function webhook(paymentId: string, status: SandboxPaymentStatus) {
    const record: WebhookRecord = { paymentId, status, attempts: [], acknowledged: false };
    webhooks.push(record);
    for (let attempt = 0; attempt < maxAttempts && !record.acknowledged; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
      const target = pick(options.targets());
      const result = await post(`${target}/webhooks/mollie`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mollie HTTP client/1.0' },
        body: `id=${paymentId}`,
      }, timeoutMs);
      record.attempts.push({ target, ...result, at: Date.now() });
      // Mollie wants exactly 200; anything else is retried.
      record.acknowledged = result.status === 200;
    }
  }

  async function returnPage(paymentId: string) {
    const target = pick(options.targets());
    const result = await post(`${target}/v1/payments/mollie/${paymentId}/sync`, { method: 'POST', headers: auth }, timeoutMs);
    syncs.push({ paymentId, target, ...result, at: Date.now() });
  }

  let next = 0;
  const lane = async () => {
    while (next < plans.length) {
      const plan = plans[next++]!;
      for (const status of plan.path) {
        sandbox.setStatus(plan.id, status);
        const work = [webhook(plan.id, status)];
        if (Math.random() < (options.syncShare ?? 0.3)) work.push(returnPage(plan.id));
        await Promise.all(work);
        stepDone();
        await new Promise((resolve) => setTimeout(resolve, options.paceMs));
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, lane)).then(() => {
    for (const waiter of waiters.splice(0)) waiter.resolve();
  });

  return {
    ids: plans.map((p) => p.id),
    webhooks,
    syncs,
    steps: () => completed,
    totalSteps: plans.reduce((sum, p) => sum + p.path.length, 0),
    advance: (count) => new Promise<void>((resolve) => waiters.push({ at: completed + count, resolve })),
    done,
  };
}

/**
 * Return-page syncs in a loop, `concurrency` at once, until stopped: keeps many short
 * transactions in flight so a fault lands in the middle of some of them.
 */
export function startSyncPressure(targets: () => string[], ids: () => string[], concurrency: number) {
  const results: SyncRecord[] = [];
  let running = true;
  const lane = async () => {
    while (running) {
      const candidates = ids();
      if (candidates.length === 0) break;
      const paymentId = pick(candidates);
      const target = pick(targets());
      const result = await post(`${target}/v1/payments/mollie/${paymentId}/sync`, { method: 'POST', headers: auth }, 15_000);
      results.push({ paymentId, target, ...result, at: Date.now() });
      // A refused connection answers at once; do not spin on it.
      if (result.status === null || result.status >= 500) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const lanes = Array.from({ length: concurrency }, lane);
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(lanes);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Settling and the checks

/**
 * Waits until every receipt is settled and every outbox event has reached the sink.
 * Retry waits are shortened by making pending receipts and deliveries due now (at most
 * once a second, so a receipt is not hammered through its whole retry schedule).
 */
export async function settle(sql: postgres.Sql, sink: DownstreamReceiver, timeoutMs = 40_000): Promise<number> {
  const started = performance.now();
  // What was still open at the last look, printed if the wait times out.
  let open: Record<string, unknown> = {};
  try {
    await eventually(
      async () => {
        await sql`update webhook_receipts set next_attempt_at = now() where state = 'pending' and next_attempt_at > now()`;
        await sql`update event_deliveries set next_attempt_at = now() where state = 'pending' and next_attempt_at > now()`;
        const [row] = await sql<{ pending: number; unrelayed: number; undelivered: number }[]>`
          select (select count(*) from webhook_receipts where state = 'pending')::int as pending,
                 (select count(*) from outbox where relayed_at is null)::int as unrelayed,
                 (select count(*) from event_deliveries where state <> 'delivered')::int as undelivered`;
        open = { ...row! };
        if (row!.pending + row!.unrelayed + row!.undelivered > 0) return false;
        const received = new Set(sink.events.map((e) => e.webhookId));
        const events = await sql<{ event_id: string }[]>`select event_id from outbox`;
        const missing = events.filter((e) => !received.has(e.event_id)).map((e) => e.event_id);
        open = { missingAtSink: missing.length, firstMissing: missing.slice(0, 5) };
        return missing.length === 0;
      },
      { what: 'every receipt settled and every event delivered', timeoutMs, intervalMs: 1000 },
    );
  } catch (error) {
    const receipts = await sql`
      select id, provider, resource_id, attempts, next_attempt_at, last_error from webhook_receipts where state = 'pending' order by id limit 10`;
    const deliveries = await sql`
      select id, state, attempts, next_attempt_at, last_error from event_deliveries where state <> 'delivered' order by id limit 10`;
    throw new Error(`${errorMessage(error)}; still open: ${JSON.stringify({ ...open, receipts, deliveries })}`, { cause: error });
  }
  return Math.round(performance.now() - started);
}

export interface FaultFigures {
  payments: number;
  webhookAttempts: Record<string, number>;
  acknowledged: number;
  syncs: Record<string, number>;
  receipts: number;
  transitions: number;
  events: number;
  delivered: number;
  duplicatesAtSink: number;
}

const tally = (values: (number | string | null)[]) =>
  values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [String(v)]: (acc[String(v)] ?? 0) + 1 }), {});

/**
 * The invariants every fault must leave intact. `allowedSyncStatuses` are the answers a
 * return-page sync may get during this fault (never a 500).
 */
/**
 * An unexpected answer's body with the gateway log lines of its request (the body names
 * the request id), so a rare failure says what the gateway saw, not only "internal error".
 */
export function explainAnswer(gateways: GatewayProcess[], answer: { status: number | null; error?: string }): string {
  const requestId = /"requestId":"([^"]+)"/.exec(answer.error ?? '')?.[1];
  const lines = requestId ? gateways.flatMap((g) => g.output().split('\n').filter((line) => line.includes(requestId))) : [];
  return [`${answer.status} ${answer.error ?? ''}`, ...lines].join('\n  ');
}

export async function checkInvariants(
  sql: postgres.Sql,
  stack: Pick<FaultStack, 'sandbox' | 'sink'> & { gateways?: GatewayProcess[] },
  load: MollieLoad,
  allowed: { webhook: number[]; sync: number[] },
): Promise<FaultFigures> {
  const attempts = load.webhooks.flatMap((w) => w.attempts);
  // No 500 anywhere: every answer is one this fault may produce (null: no answer at all).
  const said = (answer: { status: number | null; error?: string }) => (answer.error ? `: ${explainAnswer(stack.gateways ?? [], answer)}` : '');
  for (const attempt of attempts) if (attempt.status !== null) expect(allowed.webhook, `webhook answered ${attempt.status}${said(attempt)}`).toContain(attempt.status);
  for (const sync of load.syncs) if (sync.status !== null) expect(allowed.sync, `sync answered ${sync.status}${said(sync)}`).toContain(sync.status);
  // Like Mollie, the load retried every webhook until it got its 200.
  expect(load.webhooks.filter((w) => !w.acknowledged).map((w) => `${w.paymentId}:${w.status}`)).toEqual([]);

  // One row per provider id.
  const duplicates = await sql`select provider_payment_id from payments group by 1 having count(*) > 1`;
  expect(duplicates).toEqual([]);
  const rows = await sql<{ id: number; provider_payment_id: string; status: string; version: number }[]>`
    select id, provider_payment_id, status, version from payments where provider = 'mollie'`;
  const byId = new Map(rows.map((row) => [row.provider_payment_id, row]));
  expect(rows.length).toBe(load.ids.length);

  // Every acknowledged webhook applied: the stored status is at least what it announced,
  // and exactly it when that was final; in the end every payment is where Mollie has it.
  for (const hook of load.webhooks.filter((w) => w.acknowledged)) {
    const stored = byId.get(hook.paymentId);
    expect(stored, `payment ${hook.paymentId}`).toBeDefined();
    expect(MOLLIE_RANK[stored!.status]!).toBeGreaterThanOrEqual(MOLLIE_RANK[hook.status]!);
    if (MOLLIE_RANK[hook.status] === 3) expect(stored!.status).toBe(hook.status);
  }
  for (const id of load.ids) {
    const sandboxPayment = stack.sandbox.state.payments.get(id)!;
    expect(byId.get(id)?.status, id).toBe(effectiveStatus(sandboxPayment).status);
  }

  // No regression: per payment, versions 1..n, each transition strictly up the lattice.
  const transitions = await sql<{ payment_id: number; version: number; previous_status: string | null; new_status: string }[]>`
    select t.payment_id, t.version, t.previous_status, t.new_status
    from payment_transitions t join payments p on p.id = t.payment_id
    where p.provider = 'mollie' order by t.payment_id, t.version`;
  const perPayment = new Map<number, (typeof transitions)[number][]>();
  for (const t of transitions) perPayment.set(t.payment_id, [...(perPayment.get(t.payment_id) ?? []), t]);
  for (const row of rows) {
    const list = perPayment.get(row.id) ?? [];
    expect(list.map((t) => t.version)).toEqual(list.map((_, i) => i + 1));
    expect(row.version).toBe(list.length);
    for (let i = 1; i < list.length; i++) {
      expect(MOLLIE_RANK[list[i]!.new_status]!).toBeGreaterThan(MOLLIE_RANK[list[i - 1]!.new_status]!);
      expect(list[i]!.previous_status).toBe(list[i - 1]!.new_status);
    }
  }

  // Exactly one event per change, and every event delivered (signature checked by the sink).
  const events = await sql<{ event_id: string; type: string; provider: string | null; provider_payment_id: string | null; payment_version: number | null }[]>`
    select event_id, type, provider, provider_payment_id, payment_version from outbox`;
  const paymentEvents = events.filter((e) => e.provider === 'mollie' && e.provider_payment_id !== null && e.type !== 'payment.stuck');
  const expected = transitions.map((t) => `${rows.find((r) => r.id === t.payment_id)!.provider_payment_id}:${t.version}:payment.${t.new_status}`).sort();
  expect(paymentEvents.map((e) => `${e.provider_payment_id}:${e.payment_version}:${e.type}`).sort()).toEqual(expected);
  const received = new Set(stack.sink.events.map((e) => e.webhookId));
  expect(events.filter((e) => !received.has(e.event_id)).map((e) => e.event_id)).toEqual([]);
  expect(stack.sink.rejected).toBe(0);

  // Every 2xx had a durable receipt, and every receipt was processed.
  const receipts = await sql<{ state: string; n: number }[]>`select state, count(*)::int as n from webhook_receipts where provider = 'mollie' group by 1`;
  const receiptTotal = receipts.reduce((sum, r) => sum + r.n, 0);
  expect(receipts.filter((r) => r.state !== 'processed')).toEqual([]);
  const acknowledged = attempts.filter((a) => a.status === 200).length;
  expect(receiptTotal).toBeGreaterThanOrEqual(acknowledged);

  return {
    payments: load.ids.length,
    webhookAttempts: tally(attempts.map((a) => a.status ?? a.error ?? 'no answer')),
    acknowledged,
    syncs: tally(load.syncs.map((s) => s.status ?? s.error ?? 'no answer')),
    receipts: receiptTotal,
    transitions: transitions.length,
    events: events.length,
    delivered: received.size,
    duplicatesAtSink: stack.sink.events.filter((e) => e.duplicate).length,
  };
}

export function printFigures(fault: string, figures: FaultFigures & Record<string, unknown>): void {
  console.log(`fault ${fault}: ${JSON.stringify(figures)}`);
}
