/**
 * What the benchmark reads from its environment (BENCH_*), once, and what follows from it.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ROOT, type GatewayRuntime } from './gateway.js';

export const env = process.env;
export const SCENARIOS = (process.argv.slice(2).join(',') || env.BENCH_SCENARIOS || 'a,b,c,d,e,f').split(',').map((s) => s.trim()).filter(Boolean);
export const SECONDS = Number(env.BENCH_SECONDS ?? 10);
export const WARMUP_SECONDS = Math.min(3, SECONDS);
/**
 * The paced pass's warm-up at its own rate, on its fresh gateway, before the measured 60 s:
 * long enough for the process to reach its steady state (its JIT, its heap, its pool).
 */
export const PACED_WARMUP_SECONDS = Number(env.BENCH_PACED_WARMUP_SECONDS ?? 20);
/** The evenly paced half-rate pass: longer, because its p99 is decided by rare stalls. */
export const PACED_SECONDS = Number(env.BENCH_PACED_SECONDS ?? 6 * SECONDS);
export const CEILING_SECONDS = Math.min(SECONDS, 10);
export const ADMIN_URL = env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const RUNTIME = (env.BENCH_GATEWAY_RUNTIME ?? 'node') as GatewayRuntime;
export const COMPARE_RUNTIME = env.BENCH_COMPARE_RUNTIME !== '0' && !env.BENCH_GATEWAY_SRC;
export const PROFILE = env.BENCH_PROFILE === '1';
export const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 32);
export const POOL_SIZE = env.BENCH_POOL_SIZE ? Number(env.BENCH_POOL_SIZE) : undefined;
/** Extra V8/Node flags for the gateway process (e.g. --max-old-space-size=160). */
export const GATEWAY_NODE_OPTIONS = env.BENCH_GATEWAY_NODE_OPTIONS ?? '';
export const HEAP_CAP_MB = Number(env.BENCH_HEAP_CAP_MB ?? 192);
export const GC_BATCHES = Number(env.BENCH_GC_BATCHES ?? 40);
export const GC_CONCURRENCY = Number(env.BENCH_GC_CONCURRENCY ?? 4);
export const HOT_PAYMENTS = Number(env.BENCH_HOT_PAYMENTS ?? 10);
export const POLL_PAYMENTS = Number(env.BENCH_POLL_PAYMENTS ?? 100_000);
export const POLL_SECONDS = Number(env.BENCH_POLL_SECONDS ?? SECONDS * 2);
export const DEADLINE_SECONDS = Number(env.BENCH_DEADLINE_SECONDS ?? 1200);
export const ADMIN_TOKEN = `bench_admin_${randomBytes(12).toString('hex')}`;
export const RUN_ID = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
export const LOG_DIR = path.join(ROOT, 'bench/logs');
export const PROFILE_DIR = path.join(ROOT, 'bench/profiles');
export const ALL_SCENARIOS = ['a', 'b', 'c', 'd', 'e', 'f'];

export const GATEWAY_DEFAULT_POOL = 10; // src/config/env.ts DATABASE_POOL_SIZE default

export function assertLoopback(url: string, what: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`${what} must point at this machine (127.0.0.1), not ${host}: the benchmark loads only local services`);
  }
}
