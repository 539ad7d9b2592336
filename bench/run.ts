/**
 * `npm run bench`: the gateway under load on this machine, beside the database ceiling
 * for the same SQL (bench/db-ceiling.ts), written to bench/results.json and the
 * generated section of bench/RESULTS.md.
 *
 * Scenarios (BENCH_SCENARIOS=a,b,c,d selects):
 *   a  Mollie classic webhooks, each for a different payment (paid in the sandbox):
 *      max-rate pass, then a pass at half that rate; with the in-process lock and with
 *      Redlock over a Redis of the benchmark's own.
 *   b  GoCardless: signed 250-event batches; acknowledgement latency, then the time
 *      until every event is applied.
 *   c  Contention: webhooks and return-page syncs for 10 payments whose status moves
 *      during the run; checks one row and one event per change afterwards.
 *   d  The poller over BENCH_POLL_PAYMENTS (100,000) tracked payments due now.
 *
 * Everything runs on 127.0.0.1: a fresh database (created and dropped through
 * BENCH_DATABASE_ADMIN_URL), the gateway as its own process (plain node on a build
 * transpiled first, or tsx with BENCH_GATEWAY_RUNTIME=tsx), the sandboxes in a second
 * process, autocannon in this one. BENCH_SECONDS (default 10) sets each pass's length;
 * the whole run stops itself after BENCH_DEADLINE_SECONDS (default 540).
 * BENCH_PROFILE=1 runs the gateway under --cpu-prof (profiles in bench/profiles/).
 *
 * The bank-feed benchmark (bench/bank.ts) is its own scenario, run only when asked:
 * `npm run bench -- bank` or BENCH_SCENARIOS=bank (alone, or beside others).
 */
import autocannon, { type AutocannonRequest, type AutocannonResult } from 'autocannon';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { runMigrations } from '../src/db/client.js';
import { buildGoCardlessWebhook, type WebhookEventPayload } from '../src/sandbox/gocardless-webhook-sender.js';
import { measureCeiling, type CeilingKind, type CeilingResult } from './db-ceiling.js';
import { pacedLoad, type PacedResult } from './paced-load.js';
import { buildGateway, freePort, HEAP_GROWING_PERCENT, ROOT, SOURCE_ROOT, startGateway, type GatewayProcess, type GatewayRuntime } from './gateway.js';
import { cpuCores, loadAverage, sampleProcess, sampleSystem, systemBusyCores, watchRss } from './proc-stats.js';

// ---------------------------------------------------------------------------
// Configuration

const env = process.env;
const SCENARIOS = (process.argv.slice(2).join(',') || env.BENCH_SCENARIOS || 'a,b,c,d').split(',').map((s) => s.trim()).filter(Boolean);
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Math.min(3, SECONDS);
/** The evenly paced half-rate pass: longer, because its p99 is decided by rare stalls. */
const PACED_SECONDS = Number(env.BENCH_PACED_SECONDS ?? 6 * SECONDS);
const CEILING_SECONDS = Math.min(SECONDS, 10);
const ADMIN_URL = env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RUNTIME = (env.BENCH_GATEWAY_RUNTIME ?? 'node') as GatewayRuntime;
const COMPARE_RUNTIME = env.BENCH_COMPARE_RUNTIME !== '0' && !env.BENCH_GATEWAY_SRC;
const PROFILE = env.BENCH_PROFILE === '1';
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 32);
const POOL_SIZE = env.BENCH_POOL_SIZE ? Number(env.BENCH_POOL_SIZE) : undefined;
/** Extra V8/Node flags for the gateway process (e.g. --max-old-space-size=160). */
const GATEWAY_NODE_OPTIONS = env.BENCH_GATEWAY_NODE_OPTIONS ?? '';
const HEAP_CAP_MB = Number(env.BENCH_HEAP_CAP_MB ?? 192);
const GC_BATCHES = Number(env.BENCH_GC_BATCHES ?? 40);
const GC_CONCURRENCY = Number(env.BENCH_GC_CONCURRENCY ?? 4);
const HOT_PAYMENTS = Number(env.BENCH_HOT_PAYMENTS ?? 10);
const POLL_PAYMENTS = Number(env.BENCH_POLL_PAYMENTS ?? 100_000);
const POLL_SECONDS = Number(env.BENCH_POLL_SECONDS ?? SECONDS * 2);
const DEADLINE_SECONDS = Number(env.BENCH_DEADLINE_SECONDS ?? 540);
const ADMIN_TOKEN = `bench_admin_${randomBytes(12).toString('hex')}`;
const RUN_ID = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const LOG_DIR = path.join(ROOT, 'bench/logs');
const PROFILE_DIR = path.join(ROOT, 'bench/profiles');
const ALL_SCENARIOS = ['a', 'b', 'c', 'd'];

const GATEWAY_DEFAULT_POOL = 10; // src/config/env.ts DATABASE_POOL_SIZE default

function assertLoopback(url: string, what: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`${what} must point at this machine (127.0.0.1), not ${host}: the benchmark loads only local services`);
  }
}

// ---------------------------------------------------------------------------
// Small helpers

const say = (line: string) => process.stdout.write(`${line}\n`);
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------
// What is cleaned up at the end, whatever happens

const cleanups: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    await cleanups.pop()!().catch((error: unknown) => say(`cleanup: ${error instanceof Error ? error.message : String(error)}`));
  }
}

// ---------------------------------------------------------------------------
// The machine

interface Machine {
  nproc: number;
  memoryGb: number;
  cpuModel: string;
  node: string;
  postgres: string;
  redis: string | null;
  os: string;
  loadAverageAtStart: [number, number, number];
}

async function describeMachine(adminSql: postgres.Sql, redisVersion: string | null): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const [row] = await adminSql<{ version: string }[]>`select version()`;
  const version = row?.version ?? 'unknown';
  return {
    nproc: os.availableParallelism(),
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    postgres: version.split(' on ')[0] ?? version,
    redis: redisVersion,
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: await loadAverage(),
  };
}

/** The commit measured, and whether the working tree differed from it (read-only git calls). */
async function describeSource(): Promise<string> {
  if (SOURCE_ROOT !== ROOT) return `BENCH_GATEWAY_SRC=${SOURCE_ROOT}`;
  const git = (args: string[]) =>
    new Promise<string>((resolve) => {
      const child = spawn('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout!.on('data', (chunk) => (out += chunk));
      child.on('close', () => resolve(out.trim()));
      child.on('error', () => resolve(''));
    });
  const [commit, dirty] = await Promise.all([git(['rev-parse', '--short', 'HEAD']), git(['status', '--porcelain', '--', 'src', 'drizzle'])]);
  return commit ? `${commit}${dirty ? ' + uncommitted changes in src/' : ''}` : 'unknown';
}

// ---------------------------------------------------------------------------
// Databases

async function createDatabase(adminSql: postgres.Sql, name: string): Promise<string> {
  await adminSql.unsafe(`create database "${name}"`);
  cleanups.push(() => adminSql.unsafe(`drop database if exists "${name}" with (force)`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  await runMigrations(url.toString(), path.join(ROOT, 'drizzle'));
  return url.toString();
}

// ---------------------------------------------------------------------------
// The sandboxes' process

interface SandboxProcess {
  pid: number;
  mollieUrl: string;
  mollieApiKey: string;
  gocardlessUrl: string;
  gocardlessAccessToken: string;
  gocardlessWebhookSecret: string;
  call<T>(message: Record<string, unknown>): Promise<T>;
}

async function startSandboxProcess(): Promise<SandboxProcess> {
  const child: ChildProcess = fork(path.join(ROOT, 'bench/sandbox-process.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_SANDBOX_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Bulk-created payments for the poller scenario need room.
    env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=2048' },
  });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  const ready = await new Promise<Omit<SandboxProcess, 'call' | 'pid'>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sandbox process exited ${code}`)));
    child.on('message', (message: Record<string, unknown>) => {
      if (message.ready) return resolve(message as unknown as Omit<SandboxProcess, 'call' | 'pid'>);
      const waiter = pending.get(message.id as number);
      if (!waiter) return;
      pending.delete(message.id as number);
      if (message.error) waiter.reject(new Error(String(message.error)));
      else waiter.resolve(message.result);
    });
  });
  return {
    ...ready,
    pid: child.pid!,
    call<T>(message: Record<string, unknown>) {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ ...message, id });
      });
    },
  };
}

// ---------------------------------------------------------------------------
// Redis of the benchmark's own (a Redis shared with test suites would add their noise)

async function startRedis(): Promise<{ url: string; version: string } | null> {
  if (env.BENCH_REDIS_URL) {
    assertLoopback(env.BENCH_REDIS_URL, 'BENCH_REDIS_URL');
    return { url: env.BENCH_REDIS_URL, version: 'external' };
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = await new Promise<string | null>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(null), 10_000);
    child.on('error', () => resolve(null));
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(/Redis version=([\d.]+)/.exec(out)?.[1] ?? /v=([\d.]+)/.exec(out)?.[1] ?? 'unknown');
      }
    });
  });
  if (!started) {
    child.kill('SIGKILL');
    return null;
  }
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  return { url: `redis://127.0.0.1:${port}`, version: started };
}

// ---------------------------------------------------------------------------
// Measuring a pass

interface Usage {
  seconds: number;
  gatewayCpuCores: number;
  sandboxCpuCores: number;
  driverCpuCores: number;
  machineBusyCores: number;
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

interface Context {
  adminSql: postgres.Sql;
  benchUrl: string;
  benchSql: postgres.Sql;
  sandbox: SandboxProcess;
  redisUrl: string | null;
  nproc: number;
  ceilingDb: () => Promise<string>;
}

async function measured<T>(ctx: Context, gateway: GatewayProcess, work: () => Promise<T>): Promise<{ value: T; usage: Usage }> {
  const loadStart = await loadAverage();
  const [g0, s0, sys0] = await Promise.all([sampleProcess(gateway.pid), sampleProcess(ctx.sandbox.pid), sampleSystem()]);
  const d0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await work();
  const t1 = performance.now();
  const d1 = process.cpuUsage(d0);
  const [g1, s1, sys1] = await Promise.all([sampleProcess(gateway.pid), sampleProcess(ctx.sandbox.pid), sampleSystem()]);
  const seconds = (t1 - t0) / 1000;
  return {
    value,
    usage: {
      seconds: round(seconds, 2),
      gatewayCpuCores: round(cpuCores(g0, g1), 2),
      sandboxCpuCores: round(cpuCores(s0, s1), 2),
      driverCpuCores: round((d1.user + d1.system) / 1e6 / seconds, 2),
      machineBusyCores: round(systemBusyCores(sys0, sys1, ctx.nproc), 2),
      loadAverageStart: loadStart,
      loadAverageEnd: await loadAverage(),
    },
  };
}

/** Gateway CPU milliseconds per event: steadier than rates when other work shares the machine. */
function cpuMsPer(usage: Usage, rate: number): number {
  return rate > 0 ? round((usage.gatewayCpuCores * 1000) / rate, 2) : 0;
}

interface LoadStats {
  requests: number;
  ok: number;
  rate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Paced passes: how late the driver sent requests (a stall of its own, not the gateway's). */
  driverLagP99Ms?: number;
  driverLagMaxMs?: number;
  errorCodes?: Record<string, number>;
}

function fromPaced(result: PacedResult): LoadStats {
  return {
    requests: result.sent,
    ok: result.ok,
    rate: result.rate,
    p50Ms: result.p50Ms,
    p90Ms: result.p90Ms,
    p99Ms: result.p99Ms,
    maxMs: result.maxMs,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: 0,
    statusCodes: result.statusCodes,
    driverLagP99Ms: result.sendLagP99Ms,
    driverLagMaxMs: result.sendLagMaxMs,
    errorCodes: result.errorCodes,
  };
}

function loadStats(result: AutocannonResult): LoadStats {
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count;
  return {
    requests: result.requests.total,
    ok: result['2xx'],
    rate: round(result['2xx'] / result.duration, 1),
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
  };
}

interface GatewayRun {
  name: string;
  runtime: GatewayRuntime;
  lock: 'in-process' | 'redis';
  startupMs: number;
  /** VmHWM at the end: the process's peak RSS over its whole life. */
  peakRssMb: number;
  /** What the gateway's own /metrics says about its memory at the end (MB). */
  memoryAtEnd: Record<string, number>;
}

/** Heap and RSS gauges from the gateway's /metrics (prom-client's default metrics). */
async function memoryGauges(url: string): Promise<Record<string, number>> {
  const wanted = ['process_resident_memory_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes'];
  const out: Record<string, number> = {};
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const name of wanted) {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+]+)$`, 'm').exec(text);
      if (match) out[name.replace(/_bytes$/, '_mb')] = mb(Number(match[1]));
    }
  } catch {
    // not fatal: the numbers are for the report
  }
  return out;
}

async function withGateway<T>(
  ctx: Context,
  name: string,
  options: { lock: 'in-process' | 'redis'; runtime?: GatewayRuntime; env?: Record<string, string>; heapCapMb?: number | null },
  body: (gateway: GatewayProcess) => Promise<T>,
): Promise<{ value: T; gateway: GatewayRun }> {
  const runtime = options.runtime ?? RUNTIME;
  const gateway = await startGateway({
    runtime,
    // As npm start runs it, unless a pass asks for V8's default.
    heapCapMb: options.heapCapMb === undefined ? (HEAP_CAP_MB > 0 ? HEAP_CAP_MB : null) : options.heapCapMb,
    logFile: path.join(LOG_DIR, `${name}.log`),
    cpuProfDir: PROFILE ? path.join(PROFILE_DIR, name) : undefined,
    env: {
      DATABASE_URL: ctx.benchUrl,
      REDIS_URL: options.lock === 'redis' ? ctx.redisUrl! : '',
      ADMIN_TOKEN,
      MOLLIE_API_KEY: ctx.sandbox.mollieApiKey,
      MOLLIE_API_URL: ctx.sandbox.mollieUrl,
      GOCARDLESS_ACCESS_TOKEN: ctx.sandbox.gocardlessAccessToken,
      GOCARDLESS_API_URL: ctx.sandbox.gocardlessUrl,
      GOCARDLESS_WEBHOOK_SECRETS: ctx.sandbox.gocardlessWebhookSecret,
      // Background jobs that would only add noise: no sweep, no events-API recovery.
      MOLLIE_SWEEP_INTERVAL_MS: '0',
      GOCARDLESS_EVENTS_INTERVAL_MS: '0',
      LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'info',
      ...(POOL_SIZE ? { DATABASE_POOL_SIZE: String(POOL_SIZE) } : {}),
      ...(GATEWAY_NODE_OPTIONS ? { NODE_OPTIONS: GATEWAY_NODE_OPTIONS } : {}),
      ...options.env,
    },
  });
  const stopOnce = gateway.stop.bind(gateway);
  cleanups.push(stopOnce);
  try {
    const value = await body(gateway);
    const memoryAtEnd = await memoryGauges(gateway.url);
    const peak = (await sampleProcess(gateway.pid)).peakRssBytes;
    return { value, gateway: { name, runtime, lock: options.lock, startupMs: gateway.startupMs, peakRssMb: mb(peak), memoryAtEnd } };
  } finally {
    await stopOnce();
  }
}

/** A ceiling measured before a scenario's gateway passes and again after them; `tps` is the mean. */
type Ceiling = CeilingResult & { loadAverage: number[]; samples: number[] };
const ceilings = new Map<CeilingKind, Ceiling>();
async function ceiling(ctx: Context, kind: CeilingKind): Promise<Ceiling> {
  const cached = ceilings.get(kind);
  if (cached) return cached;
  const clients = POOL_SIZE ?? GATEWAY_DEFAULT_POOL;
  const loadAverageStart = await loadAverage();
  const measured = await measureCeiling(await ctx.ceilingDb(), { clients, seconds: CEILING_SECONDS, kind });
  const result: Ceiling = { ...measured, loadAverage: loadAverageStart, samples: [measured.tps] };
  say(`  ceiling ${kind}: ${round(result.tps)} tps with ${clients} pgbench clients (load ${loadAverageStart.join(' ')})`);
  ceilings.set(kind, result);
  return result;
}

/**
 * Measures a scenario's ceiling once more, after its gateway passes: on a shared 2-core
 * machine one 10 s pgbench sample moved by 2x within minutes, and the floor is a ratio to it.
 */
async function ceilingAgain(ctx: Context, ceil: Ceiling): Promise<void> {
  if (ceil.samples.length > 1) return;
  const again = await measureCeiling(await ctx.ceilingDb(), { clients: ceil.clients, seconds: CEILING_SECONDS, kind: ceil.kind });
  ceil.samples.push(again.tps);
  ceil.tps = ceil.samples.reduce((sum, tps) => sum + tps, 0) / ceil.samples.length;
  say(`  ceiling ${ceil.kind} again: ${round(again.tps)} tps; mean of before and after ${round(ceil.tps)} tps`);
}

function mollieWebhook(ids: () => string): AutocannonRequest {
  return {
    method: 'POST',
    path: '/webhooks/mollie',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mollie HTTP client/1.0' },
    setupRequest: (request) => {
      request.body = `id=${ids()}`;
      return request;
    },
  };
}

function printLoad(label: string, stats: LoadStats, usage: Usage): void {
  say(
    `  ${label}: ${stats.rate}/s, p50 ${stats.p50Ms} ms, p99 ${stats.p99Ms} ms, non-2xx ${stats.non2xx}, errors ${stats.errors}; ${cpuMsPer(usage, stats.rate)} ms gateway CPU per request; ` +
      (stats.driverLagMaxMs !== undefined ? `driver sent late by p99 ${stats.driverLagP99Ms} ms, max ${stats.driverLagMaxMs} ms; ` : '') +
      (stats.errorCodes && Object.keys(stats.errorCodes).length > 0 ? `errors by code ${JSON.stringify(stats.errorCodes)}; ` : '') +
      `gateway ${usage.gatewayCpuCores} cores, sandbox ${usage.sandboxCpuCores}, driver ${usage.driverCpuCores}, machine ${usage.machineBusyCores}/${os.availableParallelism()} busy; load ${usage.loadAverageStart[0]}→${usage.loadAverageEnd[0]}`,
  );
}

// ---------------------------------------------------------------------------
// (a) Mollie classic webhooks, one payment each

interface ScenarioAResult {
  ceiling: Ceiling;
  runs: Array<{
    lock: 'in-process' | 'redis';
    runtime: GatewayRuntime;
    /** --max-old-space-size of this gateway; null: V8's own default (the comparison pass). */
    heapCapMb: number | null;
    gateway: GatewayRun;
    max: { load: LoadStats; usage: Usage };
    half?: { load: LoadStats; usage: Usage; targetRate: number };
    /** The same half rate, evenly paced and open-loop (bench/paced-load.ts), on a fresh gateway. */
    paced?: { load: LoadStats; usage: Usage; targetRate: number };
    pacedGateway?: GatewayRun;
    check: { idsSent: number; payments: number; events: number; poolExhausted: boolean };
  }>;
  lockRatio: number | null;
  lockRates: { inProcess: number[]; redis: number[] };
}

async function scenarioA(ctx: Context): Promise<ScenarioAResult> {
  say('(a) Mollie classic webhooks, a different payment each');
  const ceil = await ceiling(ctx, 'mollie-webhook');
  const variants: Array<{ lock: 'in-process' | 'redis'; runtime: GatewayRuntime; half: boolean; uncapped?: boolean }> = [
    { lock: 'in-process', runtime: RUNTIME, half: true },
  ];
  if (ctx.redisUrl) {
    // Twice each, interleaved, so a burst of load from elsewhere does not decide the lock's cost.
    variants.push({ lock: 'redis', runtime: RUNTIME, half: true }, { lock: 'in-process', runtime: RUNTIME, half: false }, { lock: 'redis', runtime: RUNTIME, half: false });
  } else {
    say('  no Redis (BENCH_REDIS=0, or no redis-server found): the lock comparison is skipped');
  }
  if (COMPARE_RUNTIME) {
    variants.push({ lock: 'in-process', runtime: RUNTIME === 'node' ? 'tsx' : 'node', half: false });
    // What npm start's heap cap buys and costs: the same pass with V8's own old-generation limit.
    if (HEAP_CAP_MB > 0) variants.push({ lock: 'in-process', runtime: RUNTIME, half: false, uncapped: true });
  }

  const runs: ScenarioAResult['runs'] = [];
  for (const [index, variant] of variants.entries()) {
    const prefix = `tr_ba${index}x`;
    const passSeconds = WARMUP_SECONDS + SECONDS * (variant.half ? 2 : 1) + (variant.half ? WARMUP_SECONDS + PACED_SECONDS : 0);
    // Enough paid payments for 2.5x the ceiling's rate over every pass of this gateway.
    const poolSize = Math.min(400_000, Math.ceil(Math.max(ceil.tps, 400) * 2.5 * passSeconds));
    await ctx.sandbox.call({ command: 'mollie.bulk', prefix, from: 0, count: poolSize, status: 'paid' });
    let next = 0;
    const ids = () => `${prefix}${next++ % poolSize}`;
    const name = `a${index + 1}-${variant.lock}-${variant.runtime}${variant.uncapped ? '-uncapped' : ''}`;
    const gatewayEnv: Record<string, string> = {};
    const heapCapMb = variant.uncapped || HEAP_CAP_MB <= 0 ? null : HEAP_CAP_MB;
    const { value, gateway } = await withGateway(ctx, name, { lock: variant.lock, runtime: variant.runtime, env: gatewayEnv, heapCapMb }, async (gw) => {
      await autocannon({ url: gw.url, connections: CONNECTIONS, duration: WARMUP_SECONDS, requests: [mollieWebhook(ids)] });
      const rss = watchRss(gw.pid);
      const max = await measured(ctx, gw, async () =>
        loadStats(await autocannon({ url: gw.url, connections: CONNECTIONS, duration: SECONDS, requests: [mollieWebhook(ids)] })),
      );
      printLoad(`${variant.lock} lock, ${variant.runtime}${variant.uncapped ? ' without the heap cap' : ''}, max rate`, max.value, max.usage);
      let half: ScenarioAResult['runs'][number]['half'];
      if (variant.half) {
        const targetRate = Math.max(1, Math.floor(max.value.rate / 2));
        const run = await measured(ctx, gw, async () =>
          loadStats(
            await autocannon({ url: gw.url, connections: CONNECTIONS, duration: SECONDS, overallRate: targetRate, requests: [mollieWebhook(ids)] }),
          ),
        );
        printLoad(`${variant.lock} lock, ${variant.runtime}, half rate (${targetRate}/s), autocannon overallRate`, run.value, run.usage);
        half = { load: run.value, usage: run.usage, targetRate };
      }
      await rss.stop();
      return { max, half };
    });
    // The evenly paced half rate runs on a fresh gateway process warmed up at that rate: a
    // steady state at half rate, not the garbage the max-rate pass left for the collector.
    let paced: ScenarioAResult['runs'][number]['paced'];
    let pacedGateway: GatewayRun | undefined;
    if (value.half) {
      const targetRate = value.half.targetRate;
      const webhook = () => ({ method: 'POST', path: '/webhooks/mollie', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `id=${ids()}` });
      const second = await withGateway(ctx, `${name}-paced`, { lock: variant.lock, runtime: variant.runtime, env: gatewayEnv, heapCapMb }, async (gw) => {
        await pacedLoad({ url: gw.url, rate: targetRate, seconds: WARMUP_SECONDS, next: webhook });
        const even = await measured(ctx, gw, async () => fromPaced(await pacedLoad({ url: gw.url, rate: targetRate, seconds: PACED_SECONDS, next: webhook })));
        printLoad(`${variant.lock} lock, ${variant.runtime}, half rate (${targetRate}/s), evenly paced, fresh gateway`, even.value, even.usage);
        return { load: even.value, usage: even.usage, targetRate };
      });
      paced = second.value;
      pacedGateway = second.gateway;
    }
    const [counts] = await ctx.benchSql<{ payments: number; events: number }[]>`
      select (select count(*)::int from payments where provider = 'mollie' and provider_payment_id like ${`${prefix}%`}) as payments,
             (select count(*)::int from outbox where provider = 'mollie' and provider_payment_id like ${`${prefix}%`}) as events`;
    const check = { idsSent: Math.min(next, poolSize), payments: counts!.payments, events: counts!.events, poolExhausted: next > poolSize };
    if (check.poolExhausted) say(`  WARNING: ${next} ids sent for ${poolSize} sandbox payments; later requests repeated ids`);
    runs.push({
      lock: variant.lock,
      runtime: variant.runtime,
      heapCapMb,
      gateway,
      max: { load: value.max.value, usage: value.max.usage },
      half: value.half,
      paced,
      pacedGateway,
      check,
    });
  }
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const inProcessRates = runs.filter((run) => run.lock === 'in-process' && run.runtime === RUNTIME && run.heapCapMb === (HEAP_CAP_MB > 0 ? HEAP_CAP_MB : null)).map((run) => run.max.load.rate);
  const redisRates = runs.filter((run) => run.lock === 'redis').map((run) => run.max.load.rate);
  const lockRatio = inProcessRates.length > 0 && redisRates.length > 0 ? round(mean(redisRates) / mean(inProcessRates), 3) : null;
  if (lockRatio !== null) say(`  Redlock / in-process throughput (means of ${redisRates.length} and ${inProcessRates.length} passes): ${lockRatio}`);
  await ceilingAgain(ctx, ceil);
  return { ceiling: ceil, runs, lockRatio, lockRates: { inProcess: inProcessRates, redis: redisRates } };
}

// ---------------------------------------------------------------------------
// (b) GoCardless 250-event batches

interface ScenarioBResult {
  ceiling: Ceiling;
  gateway: GatewayRun;
  events: number;
  batches: number;
  idleAck: { samples: number; p50Ms: number; maxMs: number };
  loadAck: { samples: number; concurrency: number; p50Ms: number; p99Ms: number; maxMs: number; statuses: Record<string, number> };
  applied: { seconds: number; eventsPerSecond: number; payments: number; pendingReceipts: number };
  usage: Usage;
}

async function scenarioB(ctx: Context): Promise<ScenarioBResult> {
  say(`(b) GoCardless: ${GC_BATCHES} signed batches of 250 events`);
  const ceil = await ceiling(ctx, 'gocardless-sync');
  const events = await ctx.sandbox.call<WebhookEventPayload[]>({ command: 'gocardless.bulk', count: GC_BATCHES * 250, status: 'paid_out' });
  const batches: Array<{ body: string; headers: Record<string, string> }> = [];
  for (let i = 0; i < events.length; i += 250) batches.push(buildGoCardlessWebhook(events.slice(i, i + 250), ctx.sandbox.gocardlessWebhookSecret));
  const idleBatches = Math.min(3, batches.length);

  const { value, gateway } = await withGateway(ctx, 'b-in-process', { lock: 'in-process' }, async (gw) => {
    const send = async (batch: { body: string; headers: Record<string, string> }) => {
      const started = performance.now();
      const response = await fetch(`${gw.url}/webhooks/gocardless`, { method: 'POST', headers: batch.headers, body: batch.body });
      await response.arrayBuffer();
      return { ms: performance.now() - started, status: response.status };
    };
    const waitApplied = async (count: number) =>
      until('every GoCardless event applied', 240_000, async () => {
        const [row] = await ctx.benchSql<{ pending: number; payments: number }[]>`
          select (select count(*)::int from webhook_receipts where provider = 'gocardless' and state = 'pending') as pending,
                 (select count(*)::int from payments where provider = 'gocardless') as payments`;
        return row!.pending === 0 && row!.payments >= count;
      });

    // One batch at a time on an idle gateway, each applied before the next.
    const idle: number[] = [];
    for (let i = 0; i < idleBatches; i++) {
      const { ms, status } = await send(batches[i]!);
      if (status !== 204) throw new Error(`GoCardless batch answered ${status}`);
      idle.push(ms);
      await waitApplied((i + 1) * 250);
    }

    const rss = watchRss(gw.pid);
    const run = await measured(ctx, gw, async () => {
      const started = performance.now();
      const acks: number[] = [];
      const statuses: Record<string, number> = {};
      let next = idleBatches;
      await Promise.all(
        Array.from({ length: GC_CONCURRENCY }, async () => {
          while (next < batches.length) {
            const { ms, status } = await send(batches[next++]!);
            acks.push(ms);
            statuses[status] = (statuses[status] ?? 0) + 1;
          }
        }),
      );
      const ackedAt = performance.now();
      await waitApplied(batches.length * 250);
      return { acks, statuses, ackSeconds: (ackedAt - started) / 1000, seconds: (performance.now() - started) / 1000 };
    });
    await rss.stop();
    return { idle, run };
  });

  const loadEvents = (batches.length - idleBatches) * 250;
  const [counts] = await ctx.benchSql<{ payments: number; pending: number }[]>`
    select (select count(*)::int from payments where provider = 'gocardless') as payments,
           (select count(*)::int from webhook_receipts where provider = 'gocardless' and state = 'pending') as pending`;
  await ceilingAgain(ctx, ceil);
  const result: ScenarioBResult = {
    ceiling: ceil,
    gateway,
    events: events.length,
    batches: batches.length,
    idleAck: { samples: value.idle.length, p50Ms: round(percentile(value.idle, 50)), maxMs: round(Math.max(...value.idle)) },
    loadAck: {
      samples: value.run.value.acks.length,
      concurrency: GC_CONCURRENCY,
      p50Ms: round(percentile(value.run.value.acks, 50)),
      p99Ms: round(percentile(value.run.value.acks, 99)),
      maxMs: round(Math.max(...value.run.value.acks)),
      statuses: value.run.value.statuses,
    },
    applied: {
      seconds: round(value.run.value.seconds, 2),
      eventsPerSecond: round(loadEvents / value.run.value.seconds),
      payments: counts!.payments,
      pendingReceipts: counts!.pending,
    },
    usage: value.run.usage,
  };
  say(
    `  ack idle p50 ${result.idleAck.p50Ms} ms; under load (${GC_CONCURRENCY} in flight) p50 ${result.loadAck.p50Ms} ms, p99 ${result.loadAck.p99Ms} ms, max ${result.loadAck.maxMs} ms; ` +
      `${loadEvents} events acked in ${round(value.run.value.ackSeconds, 2)} s, applied in ${result.applied.seconds} s = ${result.applied.eventsPerSecond} events/s; ` +
      `gateway ${result.usage.gatewayCpuCores} cores, ${cpuMsPer(result.usage, result.applied.eventsPerSecond)} ms per event; load ${result.usage.loadAverageStart[0]}→${result.usage.loadAverageEnd[0]}`,
  );
  return result;
}

// ---------------------------------------------------------------------------
// (c) Contention: many triggers for few payments

interface ScenarioCResult {
  ceiling: Ceiling;
  gateway: GatewayRun;
  payments: number;
  webhooks: LoadStats;
  syncs: LoadStats;
  usage: Usage;
  check: {
    rows: number;
    paid: number;
    paidEvents: number;
    duplicateVersions: number;
    eventsWithoutTransition: number;
    transitions: number;
    pendingReceipts: number;
    ok: boolean;
  };
}

async function scenarioC(ctx: Context): Promise<ScenarioCResult> {
  say(`(c) contention: webhooks and return-page syncs for ${HOT_PAYMENTS} payments`);
  const ceil = await ceiling(ctx, 'noop-webhook');
  const prefix = `tr_hot${RUN_ID}x`;
  const ids = Array.from({ length: HOT_PAYMENTS }, (_, i) => `${prefix}${i}`);
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix, from: 0, count: HOT_PAYMENTS, status: 'open' });
  const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
  const connections = Math.max(2, Math.floor(CONNECTIONS / 2));

  const { value, gateway } = await withGateway(ctx, 'c-in-process', { lock: 'in-process' }, async (gw) => {
    // The payments move open → pending → paid while the triggers arrive.
    await ctx.sandbox.call({
      command: 'mollie.timeline',
      ids,
      steps: [
        { atMs: Math.round(SECONDS * 300), status: 'pending' },
        { atMs: Math.round(SECONDS * 600), status: 'paid' },
      ],
    });
    const rss = watchRss(gw.pid);
    const run = await measured(ctx, gw, async () => {
      const [webhooks, syncs] = await Promise.all([
        autocannon({ url: gw.url, connections, duration: SECONDS, requests: [mollieWebhook(pick)] }),
        autocannon({
          url: gw.url,
          connections,
          duration: SECONDS,
          requests: [
            {
              method: 'POST',
              headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
              setupRequest: (request) => {
                request.path = `/v1/payments/mollie/${pick()}/sync`;
                return request;
              },
            },
          ],
        }),
      ]);
      return { webhooks: loadStats(webhooks), syncs: loadStats(syncs) };
    });
    await rss.stop();
    return run;
  });

  const like = `${prefix}%`;
  const [check] = await ctx.benchSql<Omit<ScenarioCResult['check'], 'ok'>[]>`
    select
      (select count(*)::int from payments where provider_payment_id like ${like}) as rows,
      (select count(*)::int from payments where provider_payment_id like ${like} and status = 'paid') as paid,
      (select count(*)::int from outbox where provider_payment_id like ${like} and type = 'payment.paid') as "paidEvents",
      (select count(*)::int from (select payment_version from outbox where provider_payment_id like ${like}
         group by provider_payment_id, payment_version, type having count(*) > 1) d) as "duplicateVersions",
      (select count(*)::int from outbox o where provider_payment_id like ${like} and not exists (
         select 1 from payment_transitions t join payments p on p.id = t.payment_id
         where p.provider_payment_id = o.provider_payment_id and t.version = o.payment_version)) as "eventsWithoutTransition",
      (select count(*)::int from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id like ${like}) as transitions,
      (select count(*)::int from webhook_receipts where resource_id like ${like} and state = 'pending') as "pendingReceipts"`;
  const ok =
    check!.rows === HOT_PAYMENTS && check!.paid === HOT_PAYMENTS && check!.paidEvents === HOT_PAYMENTS && check!.duplicateVersions === 0 && check!.eventsWithoutTransition === 0;
  await ceilingAgain(ctx, ceil);
  const result: ScenarioCResult = {
    ceiling: ceil,
    gateway,
    payments: HOT_PAYMENTS,
    webhooks: value.value.webhooks,
    syncs: value.value.syncs,
    usage: value.usage,
    check: { ...check!, ok },
  };
  printLoad('webhooks', result.webhooks, result.usage);
  printLoad('return-page syncs', result.syncs, result.usage);
  say(`  together ${round(result.webhooks.rate + result.syncs.rate)}/s, ${cpuMsPer(result.usage, result.webhooks.rate + result.syncs.rate)} ms gateway CPU per trigger`);
  say(`  check: ${JSON.stringify(result.check)}`);
  return result;
}

// ---------------------------------------------------------------------------
// (d) The poller over many tracked payments

interface ScenarioDResult {
  ceiling: Ceiling;
  gateway: GatewayRun;
  tracked: number;
  pollerEnv: Record<string, string>;
  seconds: number;
  polled: number;
  pollsPerSecond: number;
  changed: number;
  lagSecondsStart: number;
  lagSecondsEnd: number;
  pollDelayP50Seconds: number;
  pollDelayP99Seconds: number;
  secondsToPollAll: number;
  usage: Usage;
}

async function scenarioD(ctx: Context): Promise<ScenarioDResult> {
  say(`(d) the poller over ${POLL_PAYMENTS} tracked payments`);
  const ceil = await ceiling(ctx, 'noop-poll');
  const prefix = 'tr_poll';
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix, from: 1, count: POLL_PAYMENTS, status: 'open', amount: { currency: 'EUR', value: '10.00' } });
  // Every tenth payment was paid meanwhile: its poll is a real change with an event.
  const changedIds: string[] = [];
  for (let n = 10; n <= POLL_PAYMENTS; n += 10) changedIds.push(`${prefix}${n}`);
  await ctx.sandbox.call({ command: 'mollie.setStatus', ids: changedIds, status: 'paid' });
  // Due over the last POLL_PAYMENTS milliseconds, oldest first by number.
  const base = (await ctx.benchSql<{ base: Date }[]>`select now() as base`)[0]!.base;
  await ctx.benchSql`
    insert into payments (provider, provider_payment_id, account, status, provider_status, amount_minor, currency,
      refunded_minor, charged_back_minor, mode, method, metadata, snapshot, version, fence, next_poll_at)
    select 'mollie', ${prefix} || g, 'default', 'open', 'open', 1000, 'EUR', 0, 0, 'test', 'ideal', '{"bench":true}', '{}', 1, 0,
      ${base}::timestamptz - (${POLL_PAYMENTS} - g) * interval '1 millisecond'
    from generate_series(1, ${POLL_PAYMENTS}::int) g`;
  await ctx.benchSql`analyze payments`;

  const pollerEnv = {
    // The token bucket paces real providers; here it would be the only thing measured.
    POLLER_RATE_PER_SECOND: env.BENCH_POLLER_RATE ?? '100000',
    POLLER_RATE_BURST: '1000',
    POLLER_BATCH_SIZE: env.BENCH_POLLER_BATCH ?? '200',
    POLLER_CONCURRENCY: env.BENCH_POLLER_CONCURRENCY ?? '16',
  };
  // Polls as the gateway counts them (each as it completes; the database sees them a pass at a time).
  const pollsCounted = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    let total = 0;
    for (const match of text.matchAll(/^gateway_poller_polls_total\{[^}]*\} (\d+)/gm)) total += Number(match[1]);
    return total;
  };
  const polledCount = async (url: string) => {
    const [row] = await ctx.benchSql<{ lag: number | null }[]>`
      select (select extract(epoch from now() - min(next_poll_at))::float8 from payments
               where next_poll_at <= now() and provider_payment_id like 'tr_poll%') as lag`;
    return { polled: await pollsCounted(url), lag: row!.lag };
  };
  const { value, gateway } = await withGateway(ctx, 'd-in-process', { lock: 'in-process', env: pollerEnv }, async (gw) => {
    const rss = watchRss(gw.pid);
    const run = await measured(ctx, gw, async () => {
      const start = await polledCount(gw.url);
      const started = performance.now();
      await sleep(POLL_SECONDS * 1000);
      const end = await polledCount(gw.url);
      return { start, end, seconds: (performance.now() - started) / 1000 };
    });
    await rss.stop();
    return run;
  });
  const { start, end, seconds } = value.value;
  const [delays] = await ctx.benchSql<{ p50: number | null; p99: number | null; changed: number }[]>`
    select percentile_cont(0.5) within group (order by d) as p50, percentile_cont(0.99) within group (order by d) as p99,
      (select count(*)::int from payments where provider_payment_id like 'tr_poll%' and status = 'paid') as changed
    from (select extract(epoch from last_polled_at - (${base}::timestamptz - (${POLL_PAYMENTS} - substr(provider_payment_id, 8)::int) * interval '1 millisecond'))::float8 as d
          from payments where provider_payment_id like 'tr_poll%' and last_polled_at is not null) x`;
  const polled = end.polled - start.polled;
  const pollsPerSecond = round(polled / seconds);
  await ceilingAgain(ctx, ceil);
  const result: ScenarioDResult = {
    ceiling: ceil,
    gateway,
    tracked: POLL_PAYMENTS,
    pollerEnv,
    seconds: round(seconds, 2),
    polled,
    pollsPerSecond,
    changed: delays!.changed,
    lagSecondsStart: round(start.lag ?? 0),
    lagSecondsEnd: round(end.lag ?? 0),
    pollDelayP50Seconds: round(delays!.p50 ?? 0),
    pollDelayP99Seconds: round(delays!.p99 ?? 0),
    secondsToPollAll: pollsPerSecond > 0 ? round(POLL_PAYMENTS / pollsPerSecond) : Infinity,
    usage: value.usage,
  };
  say(
    `  ${pollsPerSecond} polls/s (${polled} in ${result.seconds} s, ${result.changed} changed so far); lag ${result.lagSecondsStart} s → ${result.lagSecondsEnd} s; ` +
      `all ${POLL_PAYMENTS} in ~${result.secondsToPollAll} s; gateway ${result.usage.gatewayCpuCores} cores, ${cpuMsPer(result.usage, pollsPerSecond)} ms per poll; load ${result.usage.loadAverageStart[0]}→${result.usage.loadAverageEnd[0]}`,
  );
  return result;
}

// ---------------------------------------------------------------------------
// Floors and the report

interface Floor {
  floor: string;
  measured: string;
  met: boolean | null;
}

function floors(results: { a?: ScenarioAResult; b?: ScenarioBResult; c?: ScenarioCResult; d?: ScenarioDResult }, gateways: GatewayRun[]): Floor[] {
  const out: Floor[] = [];
  const a = results.a;
  const main = a?.runs.find((run) => run.lock === 'in-process' && run.runtime === RUNTIME && run.heapCapMb === (HEAP_CAP_MB > 0 ? HEAP_CAP_MB : null));
  if (a && main) {
    // Every max-rate pass of the gateway as shipped (in-process lock), averaged: one pass alone swings with the machine.
    const rates = a.lockRates.inProcess.length > 0 ? a.lockRates.inProcess : [main.max.load.rate];
    const rate = round(rates.reduce((sum, value) => sum + value, 0) / rates.length, 1);
    const ratio = rate / a.ceiling.tps;
    out.push({
      floor: '(a) throughput ≥ 0.5× the pgbench ceiling for the same SQL',
      measured: `${rate}/s${rates.length > 1 ? ` (mean of ${rates.join(', ')})` : ''} vs ${round(a.ceiling.tps)} tps${a.ceiling.samples.length > 1 ? ` (mean of ${a.ceiling.samples.map((tps) => round(tps)).join(' before and ')} after the passes)` : ''} = ${round(ratio, 2)}×`,
      met: ratio >= 0.5,
    });
    const redis = a.runs.find((run) => run.lock === 'redis');
    for (const [label, run] of [['in-process lock', main], ['Redlock', redis]] as const) {
      if (!run?.half || !run.paced) continue;
      out.push({
        floor: `(a) p99 < 50 ms at half the maximum rate (${label})`,
        measured: `evenly paced ${run.paced.load.p99Ms} ms at ${run.paced.targetRate}/s (p50 ${run.paced.load.p50Ms} ms); autocannon overallRate (per-second bursts) ${run.half.load.p99Ms} ms`,
        met: run.paced.load.p99Ms < 50,
      });
    }
    if (a.lockRatio !== null) {
      out.push({
        floor: 'the lock costs at most 15% of (a) throughput',
        measured: `Redlock ${a.lockRates.redis.join(', ')}/s vs in-process ${a.lockRates.inProcess.join(', ')}/s (max-rate passes, interleaved): ${a.lockRatio}× on the means`,
        met: a.lockRatio >= 0.85,
      });
    }
  }
  if (results.b) {
    const b = results.b;
    out.push({ floor: '(b) a 250-event batch acknowledged in < 300 ms', measured: `idle max ${b.idleAck.maxMs} ms; under load p99 ${b.loadAck.p99Ms} ms, max ${b.loadAck.maxMs} ms`, met: b.loadAck.maxMs < 300 && b.idleAck.maxMs < 300 });
  }
  if (results.c) out.push({ floor: '(c) one row per payment, exactly one payment.paid each, no duplicate event', measured: JSON.stringify(results.c.check), met: results.c.check.ok });
  // The floor is for the gateway as `npm start` runs it; the tsx pass (npm run dev) is a comparison.
  const asShipped = gateways.filter((g) => !g.name.endsWith('-uncapped') && g.runtime === RUNTIME);
  if (asShipped.length > 0) {
    const peak = Math.max(...asShipped.map((g) => g.peakRssMb));
    const worst = asShipped.find((g) => g.peakRssMb === peak)!;
    const how = HEAP_CAP_MB > 0 ? `as npm start runs it, --max-old-space-size=${HEAP_CAP_MB} --heap-growing-percent=${HEAP_GROWING_PERCENT}` : 'V8 defaults (BENCH_HEAP_CAP_MB=0)';
    out.push({ floor: `gateway peak RSS < 250 MB (${how})`, measured: `${peak} MB (${worst.name}; highest of ${asShipped.length} gateway processes)`, met: peak < 250 });
  }
  const otherRuntime = gateways.filter((g) => g.runtime !== RUNTIME);
  if (otherRuntime.length > 0) {
    const peak = Math.max(...otherRuntime.map((g) => g.peakRssMb));
    out.push({ floor: `for comparison, not a floor: peak RSS under ${otherRuntime[0]!.runtime} (same heap flags)`, measured: `${peak} MB`, met: null });
  }
  const uncapped = gateways.filter((g) => g.name.endsWith('-uncapped'));
  if (uncapped.length > 0) {
    const peak = Math.max(...uncapped.map((g) => g.peakRssMb));
    const rate = results.a?.runs.find((run) => run.heapCapMb === null)?.max.load.rate;
    out.push({ floor: 'for comparison, not a floor: peak RSS without the heap cap (V8 defaults)', measured: `${peak} MB at ${rate}/s in (a)`, met: null });
  }
  return out;
}

function markdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  const la = (values: number[]) => values.map((v) => v.toFixed(2)).join(' ');
  lines.push(
    `Generated by \`npm run bench\` on ${report.generatedAt} (BENCH_SECONDS=${report.config.seconds}, gateway runtime: ${report.config.runtime}, ` +
      `gateway heap flags: ${report.config.heapCapMb ? `--max-old-space-size=${report.config.heapCapMb} --heap-growing-percent=${HEAP_GROWING_PERCENT} as npm start` : 'none (V8 default)'}, ` +
      `gateway NODE_OPTIONS: ${report.config.gatewayNodeOptions || 'none'}${report.config.gatewayNodeArgs ? `, node args: ${report.config.gatewayNodeArgs}` : ''}, ${report.config.connections} connections, DATABASE_POOL_SIZE ${report.config.poolSize}, scenarios ${report.config.scenarios.join(',')}; gateway code: ${report.config.source}).`,
  );
  lines.push('');
  lines.push(`Machine: ${m.nproc} cores (${m.cpuModel}), ${m.memoryGb} GB RAM, ${m.os}; Node ${m.node}; ${m.postgres}; Redis ${m.redis ?? 'n/a'}. Load average at start: ${la(m.loadAverageAtStart)}.`);
  lines.push('Everything on this one machine: Postgres, Redis, the gateway, the sandboxes, the load generator, and whatever else was running.');
  lines.push('');
  lines.push('| Scenario | Rate | p50 | p99 | Gateway CPU (cores) | Gateway CPU ms per event | Gateway peak RSS | Ceiling (pgbench, same SQL) | Load avg (start→end) |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  const ceilingText = (c: CeilingResult & { samples?: number[] }) =>
    `${round(c.tps)} tps (${c.samples && c.samples.length > 1 ? `mean of ${c.samples.map((tps) => round(tps)).join(' before and ')} after; ` : ''}${c.kind}, ${c.clients} clients)`;
  if (report.a) {
    for (const [index, run] of report.a.runs.entries()) {
      const label = `(a${index + 1}) Mollie webhooks, ${run.lock} lock, ${run.runtime}${run.heapCapMb === null ? ' without the heap cap' : ''}`;
      lines.push(`| ${label}: max | ${run.max.load.rate}/s | ${run.max.load.p50Ms} ms | ${run.max.load.p99Ms} ms | ${run.max.usage.gatewayCpuCores} | ${cpuMsPer(run.max.usage, run.max.load.rate)} | ${run.gateway.peakRssMb} MB | ${ceilingText(report.a.ceiling)} | ${la(run.max.usage.loadAverageStart.slice(0, 1))}→${la(run.max.usage.loadAverageEnd.slice(0, 1))} |`);
      if (run.paced) {
        lines.push(`| ${label}: half (${run.paced.targetRate}/s), evenly paced, fresh gateway | ${run.paced.load.rate}/s | ${run.paced.load.p50Ms} ms | ${run.paced.load.p99Ms} ms | ${run.paced.usage.gatewayCpuCores} | ${cpuMsPer(run.paced.usage, run.paced.load.rate)} | ${run.pacedGateway?.peakRssMb ?? ''} MB | | ${la(run.paced.usage.loadAverageStart.slice(0, 1))}→${la(run.paced.usage.loadAverageEnd.slice(0, 1))} |`);
      }
      if (run.half) {
        lines.push(`| ${label}: half (${run.half.targetRate}/s), autocannon overallRate | ${run.half.load.rate}/s | ${run.half.load.p50Ms} ms | ${run.half.load.p99Ms} ms | ${run.half.usage.gatewayCpuCores} | ${cpuMsPer(run.half.usage, run.half.load.rate)} | ${run.gateway.peakRssMb} MB | | ${la(run.half.usage.loadAverageStart.slice(0, 1))}→${la(run.half.usage.loadAverageEnd.slice(0, 1))} |`);
      }
    }
  }
  if (report.b) {
    const b = report.b;
    lines.push(`| (b) GoCardless batches: ack, idle | ${b.idleAck.samples} batches one at a time | ${b.idleAck.p50Ms} ms | max ${b.idleAck.maxMs} ms | | | | | |`);
    lines.push(`| (b) GoCardless batches: ack under load | ${b.loadAck.samples} batches, ${b.loadAck.concurrency} in flight | ${b.loadAck.p50Ms} ms | ${b.loadAck.p99Ms} ms | | | | | |`);
    lines.push(`| (b) GoCardless: events applied | ${b.applied.eventsPerSecond} events/s | | | ${b.usage.gatewayCpuCores} | ${cpuMsPer(b.usage, b.applied.eventsPerSecond)} | ${b.gateway.peakRssMb} MB | ${ceilingText(b.ceiling)} | ${la(b.usage.loadAverageStart.slice(0, 1))}→${la(b.usage.loadAverageEnd.slice(0, 1))} |`);
  }
  if (report.c) {
    const c = report.c;
    lines.push(`| (c) contention, ${c.payments} payments: webhooks | ${c.webhooks.rate}/s | ${c.webhooks.p50Ms} ms | ${c.webhooks.p99Ms} ms | ${c.usage.gatewayCpuCores} (both) | ${cpuMsPer(c.usage, c.webhooks.rate + c.syncs.rate)} (both) | ${c.gateway.peakRssMb} MB | ${ceilingText(c.ceiling)} | ${la(c.usage.loadAverageStart.slice(0, 1))}→${la(c.usage.loadAverageEnd.slice(0, 1))} |`);
    lines.push(`| (c) contention: return-page syncs | ${c.syncs.rate}/s (${c.syncs.non2xx} non-2xx) | ${c.syncs.p50Ms} ms | ${c.syncs.p99Ms} ms | | | | | |`);
  }
  if (report.d) {
    const d = report.d;
    lines.push(`| (d) poller, ${d.tracked} tracked | ${d.pollsPerSecond} polls/s | delay ${d.pollDelayP50Seconds} s | delay ${d.pollDelayP99Seconds} s | ${d.usage.gatewayCpuCores} | ${cpuMsPer(d.usage, d.pollsPerSecond)} | ${d.gateway.peakRssMb} MB | ${ceilingText(d.ceiling)} | ${la(d.usage.loadAverageStart.slice(0, 1))}→${la(d.usage.loadAverageEnd.slice(0, 1))} |`);
  }
  lines.push('');
  if (report.b) {
    const b = report.b;
    lines.push(`(b): ${b.events} events in ${b.batches} batches; all applied ${b.applied.seconds} s after the first of the loaded batches was sent; ${b.applied.pendingReceipts} receipts left pending.`);
  }
  if (report.c) lines.push(`(c) check: ${JSON.stringify(report.c.check)}; return-page statuses ${JSON.stringify(report.c.syncs.statusCodes)}.`);
  if (report.d) {
    const d = report.d;
    lines.push(
      `(d): ${d.polled} polls in ${d.seconds} s (${d.changed} found a change), poller settings ${JSON.stringify(d.pollerEnv)}; ` +
        `lag (age of the oldest due payment) ${d.lagSecondsStart} s → ${d.lagSecondsEnd} s; at this rate all ${d.tracked} take ~${d.secondsToPollAll} s. ` +
        '"delay" = poll time minus due time for the payments polled (all were due at the start, so it mostly measures the backlog).',
    );
  }
  lines.push('');
  lines.push('Other processes during each pass (cores): ' + report.passes.map((p) => `${p.name}: sandbox ${p.usage.sandboxCpuCores}, load generator ${p.usage.driverCpuCores}, machine busy ${p.usage.machineBusyCores}/${m.nproc}`).join('; ') + '.');
  lines.push('');
  lines.push(
    'Gateway processes: ' +
      report.gateways
        .map((g) => `${g.name} (${g.runtime}, start-up ${g.startupMs} ms, peak RSS ${g.peakRssMb} MB; at the end ${Object.entries(g.memoryAtEnd).map(([k, v]) => `${k.replace(/^(process_|nodejs_)/, '')} ${v}`).join(', ')})`)
        .join('; ') +
      '.',
  );
  lines.push('');
  lines.push('| Floor | Measured | Met |');
  lines.push('|---|---|---|');
  for (const f of report.floors) lines.push(`| ${f.floor} | ${f.measured.replaceAll('|', '\\|')} | ${f.met === null ? 'n/a' : f.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

interface Report {
  generatedAt: string;
  config: {
    scenarios: string[];
    seconds: number;
    runtime: GatewayRuntime;
    connections: number;
    poolSize: number;
    profile: boolean;
    gatewayNodeOptions: string;
    gatewayNodeArgs: string;
    heapCapMb: number | null;
    /** Which gateway code was measured: this checkout (commit, and whether it had uncommitted changes) or BENCH_GATEWAY_SRC. */
    source: string;
  };
  machine: Machine;
  a?: ScenarioAResult;
  b?: ScenarioBResult;
  c?: ScenarioCResult;
  d?: ScenarioDResult;
  passes: Array<{ name: string; usage: Usage }>;
  gateways: GatewayRun[];
  floors: Floor[];
}

const BEGIN = '<!-- bench:results:begin (generated by npm run bench; edit outside these markers) -->';
const END = '<!-- bench:results:end -->';

async function writeReport(report: Report): Promise<void> {
  const complete = ALL_SCENARIOS.every((s) => report.config.scenarios.includes(s)) && env.BENCH_WRITE !== '0' && !env.BENCH_OUT && !env.BENCH_GATEWAY_SRC;
  const jsonFile = env.BENCH_OUT ? path.resolve(env.BENCH_OUT) : path.join(ROOT, complete ? 'bench/results.json' : 'bench/results.partial.json');
  await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  say(`\nwrote ${path.relative(ROOT, jsonFile)}`);
  const block = `${BEGIN}\n${markdown(report)}\n${END}`;
  if (!complete) {
    say('(a partial run: bench/RESULTS.md left as it is)\n');
    say(markdown(report));
    return;
  }
  const file = path.join(ROOT, 'bench/RESULTS.md');
  const current = await readFile(file, 'utf8').catch(() => `# Benchmark results\n\n${BEGIN}\n${END}\n`);
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = start >= 0 && end > start ? `${current.slice(0, start)}${block}${current.slice(end + END.length)}` : `${current.trimEnd()}\n\n${block}\n`;
  await writeFile(file, next);
  say(`wrote bench/RESULTS.md\n`);
  say(markdown(report));
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  assertLoopback(ADMIN_URL, 'BENCH_DATABASE_ADMIN_URL');
  for (const scenario of SCENARIOS) if (!ALL_SCENARIOS.includes(scenario) && scenario !== 'bank') throw new Error(`unknown scenario ${scenario} (a, b, c, d, bank)`);
  if (SCENARIOS.includes('bank')) {
    const { runBankBench } = await import('./bank.js');
    const bank = await runBankBench();
    if (!Object.values(bank.met).every(Boolean)) process.exitCode = 1;
    if (SCENARIOS.every((s) => s === 'bank')) return;
  }
  const deadline = setTimeout(() => {
    say(`\nbenchmark exceeded BENCH_DEADLINE_SECONDS=${DEADLINE_SECONDS}; stopping`);
    void cleanUp().finally(() => process.exit(2));
  }, DEADLINE_SECONDS * 1000);
  deadline.unref();
  const started = performance.now();

  const adminSql = postgres(ADMIN_URL, { max: 2, onnotice: () => {} });
  cleanups.push(() => adminSql.end({ timeout: 5 }));
  const redis = SCENARIOS.includes('a') && env.BENCH_REDIS !== '0' ? await startRedis() : null;
  const machine = await describeMachine(adminSql, redis?.version ?? null);
  say(`machine: ${machine.nproc} cores, ${machine.cpuModel}, ${machine.memoryGb} GB, ${machine.node}, ${machine.postgres}; load ${machine.loadAverageAtStart.join(' ')}`);

  if (RUNTIME === 'node' || COMPARE_RUNTIME) {
    const build = await buildGateway();
    say(`gateway build (TypeScript transpile, no type check): ${build.ms} ms`);
  }
  const benchUrl = await createDatabase(adminSql, `gw_bench_${RUN_ID}`);
  const benchSql = postgres(benchUrl, { max: 2, onnotice: () => {} });
  cleanups.push(() => benchSql.end({ timeout: 5 }));
  let ceilingUrl: Promise<string> | null = null;
  const sandbox = await startSandboxProcess();
  const ctx: Context = {
    adminSql,
    benchUrl,
    benchSql,
    sandbox,
    redisUrl: redis?.url ?? null,
    nproc: machine.nproc,
    ceilingDb: () => (ceilingUrl ??= createDatabase(adminSql, `gw_bench_${RUN_ID}_ceiling`)),
  };

  const report: Report = {
    generatedAt: new Date().toISOString(),
    config: {
      scenarios: SCENARIOS,
      seconds: SECONDS,
      runtime: RUNTIME,
      connections: CONNECTIONS,
      poolSize: POOL_SIZE ?? GATEWAY_DEFAULT_POOL,
      profile: PROFILE,
      gatewayNodeOptions: GATEWAY_NODE_OPTIONS,
      gatewayNodeArgs: env.BENCH_GATEWAY_NODE_ARGS ?? '',
      heapCapMb: HEAP_CAP_MB > 0 ? HEAP_CAP_MB : null,
      source: await describeSource(),
    },
    machine,
    passes: [],
    gateways: [],
    floors: [],
  };
  if (SCENARIOS.includes('a')) {
    report.a = await scenarioA(ctx);
    for (const run of report.a.runs) {
      report.gateways.push(run.gateway);
      if (run.pacedGateway) report.gateways.push(run.pacedGateway);
      report.passes.push({ name: `a ${run.lock} ${run.runtime} max`, usage: run.max.usage });
      if (run.half) report.passes.push({ name: `a ${run.lock} ${run.runtime} half`, usage: run.half.usage });
      if (run.paced) report.passes.push({ name: `a ${run.lock} ${run.runtime} paced`, usage: run.paced.usage });
    }
  }
  if (SCENARIOS.includes('b')) {
    report.b = await scenarioB(ctx);
    report.gateways.push(report.b.gateway);
    report.passes.push({ name: 'b', usage: report.b.usage });
  }
  if (SCENARIOS.includes('c')) {
    report.c = await scenarioC(ctx);
    report.gateways.push(report.c.gateway);
    report.passes.push({ name: 'c', usage: report.c.usage });
  }
  if (SCENARIOS.includes('d')) {
    report.d = await scenarioD(ctx);
    report.gateways.push(report.d.gateway);
    report.passes.push({ name: 'd', usage: report.d.usage });
  }
  report.floors = floors(report, report.gateways);
  say(`\nfloors:`);
  for (const f of report.floors) say(`  ${f.met === null ? 'INFO   ' : f.met ? 'MET    ' : 'NOT MET'} ${f.floor}: ${f.measured}`);
  say(`benchmark took ${round((performance.now() - started) / 1000)} s`);
  await writeReport(report);
}

// Interrupted or told to stop: the private Redis, gateways, sandboxes and bench databases go too.
process.on('SIGINT', () => void cleanUp().finally(() => process.exit(130)));
process.on('SIGTERM', () => void cleanUp().finally(() => process.exit(143)));
main()
  .then(cleanUp, async (error: unknown) => {
    say(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanUp();
    process.exitCode = 1;
  })
  .finally(() => process.exit());
