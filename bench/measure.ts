/**
 * Measuring a pass: CPU and load around it, load statistics, a gateway process per pass,
 * the database ceiling beside it, and the load requests.
 */
import type { AutocannonRequest, AutocannonResult } from 'autocannon';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { measureCeiling, type CeilingKind, type CeilingResult } from './db-ceiling.js';
import type { PacedResult } from './paced-load.js';
import { startGateway, type GatewayProcess, type GatewayRuntime } from './gateway.js';
import { cpuCores, loadAverage, sampleProcess, sampleSystem, systemBusyCores } from './proc-stats.js';
import { cleanups, mb, round, say } from './common.js';
import { ADMIN_TOKEN, CEILING_SECONDS, GATEWAY_DEFAULT_POOL, GATEWAY_NODE_OPTIONS, HEAP_CAP_MB, LOG_DIR, POOL_SIZE, PROFILE, PROFILE_DIR, RUNTIME, env } from './config.js';
import type { SandboxProcess } from './services.js';

export interface Usage {
  seconds: number;
  gatewayCpuCores: number;
  sandboxCpuCores: number;
  driverCpuCores: number;
  machineBusyCores: number;
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

export interface Context {
  adminSql: postgres.Sql;
  benchUrl: string;
  benchSql: postgres.Sql;
  sandbox: SandboxProcess;
  redisUrl: string | null;
  nproc: number;
  ceilingDb: () => Promise<string>;
}

export async function measured<T>(ctx: Context, gateway: Pick<GatewayProcess, 'pid'>, work: () => Promise<T>): Promise<{ value: T; usage: Usage }> {
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
export function cpuMsPer(usage: Usage, rate: number): number {
  return rate > 0 ? round((usage.gatewayCpuCores * 1000) / rate, 2) : 0;
}

export interface LoadStats {
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

export function fromPaced(result: PacedResult): LoadStats {
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

export function loadStats(result: AutocannonResult): LoadStats {
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

export interface GatewayRun {
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
export async function memoryGauges(url: string): Promise<Record<string, number>> {
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

export async function withGateway<T>(
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
export type Ceiling = CeilingResult & { loadAverage: number[]; samples: number[] };
export const ceilings = new Map<CeilingKind, Ceiling>();
export async function ceiling(ctx: Context, kind: CeilingKind): Promise<Ceiling> {
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
export async function ceilingAgain(ctx: Context, ceil: Ceiling): Promise<void> {
  if (ceil.samples.length > 1) return;
  const again = await measureCeiling(await ctx.ceilingDb(), { clients: ceil.clients, seconds: CEILING_SECONDS, kind: ceil.kind });
  ceil.samples.push(again.tps);
  ceil.tps = ceil.samples.reduce((sum, tps) => sum + tps, 0) / ceil.samples.length;
  say(`  ceiling ${ceil.kind} again: ${round(again.tps)} tps; mean of before and after ${round(ceil.tps)} tps`);
}

export function mollieWebhook(ids: () => string): AutocannonRequest {
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

export function printLoad(label: string, stats: LoadStats, usage: Usage): void {
  say(
    `  ${label}: ${stats.rate}/s, p50 ${stats.p50Ms} ms, p99 ${stats.p99Ms} ms, non-2xx ${stats.non2xx}, errors ${stats.errors}; ${cpuMsPer(usage, stats.rate)} ms gateway CPU per request; ` +
      (stats.driverLagMaxMs !== undefined ? `driver sent late by p99 ${stats.driverLagP99Ms} ms, max ${stats.driverLagMaxMs} ms; ` : '') +
      (stats.errorCodes && Object.keys(stats.errorCodes).length > 0 ? `errors by code ${JSON.stringify(stats.errorCodes)}; ` : '') +
      `gateway ${usage.gatewayCpuCores} cores, sandbox ${usage.sandboxCpuCores}, driver ${usage.driverCpuCores}, machine ${usage.machineBusyCores}/${os.availableParallelism()} busy; load ${usage.loadAverageStart[0]}→${usage.loadAverageEnd[0]}`,
  );
}
