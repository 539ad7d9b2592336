/**
 * Group commit on and off (WRITE_BATCH_MAX), side by side: the gateway as its own process
 * (bench/gateway.ts), the sandboxes in theirs (bench/sandbox-process.ts), distinct paid
 * Mollie payments, N classic webhooks per pass at a fixed concurrency, passes interleaved
 * off, on, off, on... Judged by what a shared, loaded machine cannot blur much:
 * - commits per webhook: pg_stat_database's xact_commit delta for the bench database,
 *   read after the gateway has exited (its backends flush their counts as they end);
 * - the gateway's CPU per webhook: user + system time from /proc across the load only.
 * Wall-clock figures are printed for reference, not as the result.
 *
 *   npx tsx bench/write-batch.ts            # BENCH_WB_N=1500 BENCH_WB_CONCURRENCY=32 BENCH_WB_ROUNDS=2
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { runMigrations } from '../src/db/client.js';
import { ROOT, startGateway } from './gateway.js';
import { sampleProcess } from './proc-stats.js';

const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.env.BENCH_WB_N ?? 1500);
const CONCURRENCY = Number(process.env.BENCH_WB_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_WB_ROUNDS ?? 2);
const ON = process.env.BENCH_WB_MAX ?? '64';
const RUN = `${process.pid}${Date.now().toString(36)}`;

for (const url of [ADMIN_URL, REDIS_URL]) {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) throw new Error(`${url}: the benchmark only talks to this machine`);
}

interface Sandbox {
  mollieUrl: string;
  mollieApiKey: string;
  call<T>(message: Record<string, unknown>): Promise<T>;
  stop(): Promise<void>;
}

async function startSandbox(): Promise<Sandbox> {
  const child: ChildProcess = fork(path.join(ROOT, 'bench/sandbox-process.ts'), [], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, (message: Record<string, unknown>) => void>();
  let nextId = 1;
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sandbox process exited ${code}`)));
    child.on('message', (message: Record<string, unknown>) => {
      if (message.ready) return resolve(message);
      pending.get(message.id as number)?.(message);
      pending.delete(message.id as number);
    });
  });
  return {
    mollieUrl: String(ready.mollieUrl),
    mollieApiKey: String(ready.mollieApiKey),
    call<T>(message: Record<string, unknown>) {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, (answer) => (answer.error ? reject(new Error(String(answer.error))) : resolve(answer.result as T)));
        child.send({ ...message, id });
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}

async function commits(admin: postgres.Sql, name: string): Promise<number> {
  const [row] = await admin<{ commits: number }[]>`select xact_commit::float8 as commits from pg_stat_database where datname = ${name}`;
  return row?.commits ?? 0;
}

/** Posts `ids` as classic Mollie webhooks, `CONCURRENCY` at a time; counts the answers by status. */
async function post(url: string, ids: string[]): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const res = await fetch(`${url}/webhooks/mollie`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `id=${id}` });
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

interface Pass {
  mode: 'off' | 'on';
  commitsPerWebhook: number;
  cpuMsPerWebhook: number;
  webhooksPerSecond: number;
  statuses: Record<number, number>;
  load: number[];
}

async function pass(admin: postgres.Sql, sandbox: Sandbox, databaseUrl: string, databaseName: string, mode: 'off' | 'on', index: number): Promise<Pass> {
  const prefix = `tr_wb${RUN}${index}x`;
  await sandbox.call({ command: 'mollie.bulk', prefix, from: 0, count: N, status: 'paid' });
  const ids = Array.from({ length: N }, (_, n) => `${prefix}${n}`);
  const gateway = await startGateway({
    runtime: 'tsx',
    heapCapMb: 192,
    logFile: path.join(ROOT, 'node_modules/.cache/gw-bench-write-batch', `${mode}-${index}.log`),
    env: {
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef',
      MOLLIE_API_KEY: sandbox.mollieApiKey,
      MOLLIE_API_URL: sandbox.mollieUrl,
      MOLLIE_SWEEP_INTERVAL_MS: '0',
      GOCARDLESS_EVENTS_INTERVAL_MS: '0',
      LOG_LEVEL: 'info',
      WRITE_BATCH_MAX: mode === 'on' ? ON : '1',
    },
  });
  try {
    // A short warm-up (JIT, prepared statements, pool), outside the counts.
    await post(gateway.url, Array.from({ length: 64 }, (_, n) => `${prefix}warm${n}`));
    const load = loadavg().map((value) => Math.round(value * 10) / 10);
    const cpuBefore = await sampleProcess(gateway.pid);
    const commitsBefore = await commits(admin, databaseName);
    const started = performance.now();
    const statuses = await post(gateway.url, ids);
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = await sampleProcess(gateway.pid);
    await gateway.stop();
    // Backends report their counts as they exit; give the statistics a moment to land.
    let commitsAfter = await commits(admin, databaseName);
    for (let attempt = 0; attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const now = await commits(admin, databaseName);
      if (now === commitsAfter && attempt >= 4) break;
      commitsAfter = now;
    }
    return {
      mode,
      commitsPerWebhook: (commitsAfter - commitsBefore) / N,
      cpuMsPerWebhook: ((cpuAfter.cpuSeconds - cpuBefore.cpuSeconds) * 1000) / N,
      webhooksPerSecond: N / seconds,
      statuses,
      load,
    };
  } finally {
    await gateway.stop();
  }
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const databaseName = `gw_bench_wb_${RUN}`;
  await admin.unsafe(`create database "${databaseName}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${databaseName}`;
  const sandbox = await startSandbox();
  const passes: Pass[] = [];
  try {
    await runMigrations(url.toString(), path.join(ROOT, 'drizzle'));
    for (let roundIndex = 0; roundIndex < ROUNDS; roundIndex++) {
      for (const mode of ['off', 'on'] as const) {
        const result = await pass(admin, sandbox, url.toString(), databaseName, mode, passes.length);
        passes.push(result);
        console.log(
          `${mode.padEnd(3)} commits/webhook ${round(result.commitsPerWebhook)}  cpu ms/webhook ${round(result.cpuMsPerWebhook)}  ` +
            `(wall: ${round(result.webhooksPerSecond, 0)} webhooks/s; answers ${JSON.stringify(result.statuses)}; load ${result.load.join(' ')})`,
        );
      }
    }
    for (const mode of ['off', 'on'] as const) {
      const mine = passes.filter((p) => p.mode === mode);
      const mean = (pick: (p: Pass) => number) => round(mine.reduce((sum, p) => sum + pick(p), 0) / mine.length);
      console.log(`mean ${mode}: commits/webhook ${mean((p) => p.commitsPerWebhook)}, cpu ms/webhook ${mean((p) => p.cpuMsPerWebhook)}, webhooks/s ${mean((p) => p.webhooksPerSecond)}`);
    }
  } finally {
    await sandbox.stop();
    await admin.unsafe(`drop database if exists "${databaseName}" with (force)`);
    await admin.end();
  }
}

await main();
