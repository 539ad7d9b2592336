/**
 * `npm run bench`: the gateway under load on this machine, beside the database ceiling
 * for the same SQL (bench/db-ceiling.ts), written to bench/results.json and the
 * generated section of bench/RESULTS.md.
 *
 * Scenarios (BENCH_SCENARIOS=a,b,c,d,e selects):
 *   a  Mollie classic webhooks, each for a different payment (paid in the sandbox):
 *      max-rate pass, then a pass at half that rate; with the in-process lock and with
 *      Redlock over a Redis of the benchmark's own.
 *   b  GoCardless: signed 250-event batches; acknowledgement latency, then the time
 *      until every event is applied.
 *   c  Contention: webhooks and return-page syncs for 10 payments whose status moves
 *      during the run; checks one row and one event per change afterwards.
 *   d  The poller over BENCH_POLL_PAYMENTS (100,000) tracked payments due now.
 *   e  The gateway beside a hand-written handler on the same stack (bench/baseline.ts),
 *      interleaved A B A B (BENCH_AB_ROUNDS, default 2), both with a Redis lock: the ratio.
 *
 * Everything runs on 127.0.0.1: a fresh database (created and dropped through
 * BENCH_DATABASE_ADMIN_URL), the gateway as its own process (plain node on a build
 * transpiled first, or tsx with BENCH_GATEWAY_RUNTIME=tsx), the sandboxes in a second
 * process, autocannon in this one. BENCH_SECONDS (default 10) sets each pass's length;
 * the whole run stops itself after BENCH_DEADLINE_SECONDS (default 1200).
 * BENCH_PROFILE=1 runs the gateway under --cpu-prof (profiles in bench/profiles/).
 *
 * The bank-feed benchmark (bench/bank.ts) and the retention benchmark (bench/retention.ts)
 * are scenarios of their own, run only when asked: `npm run bench -- bank`, `-- retention`
 * or BENCH_SCENARIOS=bank,retention (alone, or beside others).
 *
 * The parts: config.ts (BENCH_* variables), machine.ts, database.ts and services.ts
 * (what a run stands on), measure.ts (a pass and its numbers), scenarios/ (a to e) and
 * report.ts (floors, results.json, RESULTS.md).
 */
import postgres from 'postgres';
import { buildGateway } from './gateway.js';
import { cleanUp, cleanups, round, say } from './common.js';
import { ADMIN_URL, ALL_SCENARIOS, COMPARE_RUNTIME, CONNECTIONS, DEADLINE_SECONDS, GATEWAY_DEFAULT_POOL, GATEWAY_NODE_OPTIONS, HEAP_CAP_MB, POOL_SIZE, PROFILE, RUNTIME, RUN_ID, SCENARIOS, SECONDS, assertLoopback, env } from './config.js';
import { createDatabase } from './database.js';
import { describeMachine, describeSource } from './machine.js';
import type { Context } from './measure.js';
import { type Report, floors, writeReport } from './report.js';
import { scenarioA } from './scenarios/a-mollie-webhooks.js';
import { scenarioB } from './scenarios/b-gocardless-batches.js';
import { scenarioC } from './scenarios/c-contention.js';
import { scenarioD } from './scenarios/d-poller.js';
import { scenarioE } from './scenarios/e-baseline.js';
import { scenarioF } from './scenarios/f-accounts.js';
import { startRedis, startSandboxProcess } from './services.js';

async function main(): Promise<void> {
  assertLoopback(ADMIN_URL, 'BENCH_DATABASE_ADMIN_URL');
  const ownBenches = ['bank', 'retention'];
  for (const scenario of SCENARIOS) if (!ALL_SCENARIOS.includes(scenario) && !ownBenches.includes(scenario)) throw new Error(`unknown scenario ${scenario} (a, b, c, d, e, f, bank, retention)`);
  if (SCENARIOS.includes('retention')) {
    const { runRetentionBench } = await import('./retention.js');
    const retention = await runRetentionBench();
    if (!retention.allExpiredGone || !retention.keptIntact || retention.keepsUp === false) process.exitCode = 1;
    if (SCENARIOS.every((s) => s === 'retention')) return;
  }
  if (SCENARIOS.includes('bank')) {
    const { runBankBench } = await import('./bank.js');
    const bank = await runBankBench();
    if (!Object.values(bank.met).every(Boolean)) process.exitCode = 1;
    if (SCENARIOS.every((s) => ownBenches.includes(s))) return;
  }
  const deadline = setTimeout(() => {
    say(`\nbenchmark exceeded BENCH_DEADLINE_SECONDS=${DEADLINE_SECONDS}; stopping`);
    void cleanUp().finally(() => process.exit(2));
  }, DEADLINE_SECONDS * 1000);
  deadline.unref();
  const started = performance.now();

  const adminSql = postgres(ADMIN_URL, { max: 2, onnotice: () => {} });
  cleanups.push(() => adminSql.end({ timeout: 5 }));
  const redis = (SCENARIOS.includes('a') || SCENARIOS.includes('e')) && env.BENCH_REDIS !== '0' ? await startRedis() : null;
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
  if (SCENARIOS.includes('e')) {
    const e = await scenarioE(ctx);
    if (e) {
      report.e = e;
      report.gateways.push(e.gateway);
      e.rounds.forEach((r, i) => report.passes.push({ name: `e gateway ${i + 1}`, usage: r.gateway.usage }, { name: `e baseline ${i + 1}`, usage: r.baseline.usage }));
    }
  }
  if (SCENARIOS.includes('f')) {
    report.f = await scenarioF(ctx);
    report.gateways.push(report.f.gateway);
    report.f.rounds.forEach((r, i) => report.passes.push({ name: `f single ${i + 1}`, usage: r.single.usage }, { name: `f spread ${i + 1}`, usage: r.spread.usage }));
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
