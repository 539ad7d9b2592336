/**
 * Scenario (e): the gateway beside what a user would write instead (bench/baseline.ts: the
 * same stack, one fetch, three commits per webhook, a Redis SET NX PX lock), on the same
 * database server, the same sandbox and the same private Redis, interleaved A B A B so that
 * a burst of load from elsewhere falls on both. Distinct paid Mollie payments, CONNECTIONS
 * connections, max rate. The gateway runs with its Redis lock, as the baseline does.
 *
 * A third contender in each round: the same gateway reading payments through the Mollie
 * SDK (MOLLIE_PAYMENT_FETCH=sdk) instead of the direct GET, the A/B behind that choice.
 * BENCH_E_SDK=0 leaves it out.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import autocannon from 'autocannon';
import { cleanups, mb, round, say } from '../common.js';
import { CONNECTIONS, SECONDS, WARMUP_SECONDS, env } from '../config.js';
import { ROOT, freePort } from '../gateway.js';
import { type Context, type GatewayRun, type LoadStats, type Usage, cpuMsPer, loadStats, measured, mollieWebhook, printLoad, withGateway } from '../measure.js';
import { sampleProcess } from '../proc-stats.js';

const ROUNDS = Number(env.BENCH_AB_ROUNDS ?? 2);
const WITH_SDK = env.BENCH_E_SDK !== '0';

type Pass = { load: LoadStats; usage: Usage };

export interface ScenarioEResult {
  rounds: Array<{ gateway: Pass; baseline: Pass; gatewaySdk: Pass | null }>;
  gatewayRates: number[];
  baselineRates: number[];
  /** Mean gateway rate / mean baseline rate. */
  ratio: number;
  gatewayP99Ms: number[];
  baselineP99Ms: number[];
  gateway: GatewayRun;
  baselinePeakRssMb: number;
  /** The SDK-path gateway's CPU per webhook over the direct GET's, means of the rounds; null without it. */
  sdkCpuPerRequestMs: number[] | null;
  directCpuPerRequestMs: number[];
  directCpuSaving: number | null;
}

interface Baseline {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startBaseline(ctx: Context, redisUrl: string): Promise<Baseline> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/baseline.ts')], {
    cwd: ROOT,
    env: { ...process.env, BASELINE_PORT: String(port), DATABASE_URL: ctx.benchUrl, REDIS_URL: redisUrl, MOLLIE_API_URL: ctx.sandbox.mollieUrl, MOLLIE_API_KEY: ctx.sandbox.mollieApiKey },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the baseline did not start in 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`the baseline exited ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().startsWith('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }));
  cleanups.push(stop);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop };
}

export async function scenarioE(ctx: Context): Promise<ScenarioEResult | null> {
  say('(e) the gateway beside a hand-written handler (bench/baseline.ts), interleaved');
  if (!ctx.redisUrl) {
    say('  no Redis (BENCH_REDIS=0, or no redis-server found): skipped, both sides need one');
    return null;
  }
  // Enough paid payments that no id repeats: both sides, every round, at up to 2,000/s.
  const perPass = 2000 * (3 * WARMUP_SECONDS + SECONDS);
  const prefix = 'tr_be';
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix, from: 0, count: perPass * ROUNDS * (WITH_SDK ? 3 : 2), status: 'paid' });
  let next = 0;
  const ids = () => `${prefix}${next++}`;
  const baseline = await startBaseline(ctx, ctx.redisUrl);
  const rounds: ScenarioEResult['rounds'] = [];
  try {
    // Each contender's first warm-up is longer: a fresh process's JIT is still settling
    // after a few seconds, and the first round would measure that instead of the code.
    const warmedUp = new Set<number>();
    const pass = async (url: string, pid: number, label: string): Promise<Pass> => {
      const warmup = warmedUp.has(pid) ? WARMUP_SECONDS : 3 * WARMUP_SECONDS;
      warmedUp.add(pid);
      await autocannon({ url, connections: CONNECTIONS, duration: warmup, requests: [mollieWebhook(ids)] });
      const result = await measured(ctx, { pid }, async () => loadStats(await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, requests: [mollieWebhook(ids)] })));
      printLoad(label, result.value, result.usage);
      return { load: result.value, usage: result.usage };
    };
    const runRounds = async (gw: { url: string; pid: number }, sdkGw: { url: string; pid: number } | null) => {
      for (let round = 0; round < ROUNDS; round++) {
        const gatewayPass = await pass(gw.url, gw.pid, `round ${round + 1}: gateway (Redis lock)`);
        const baselinePass = await pass(baseline.url, baseline.pid, `round ${round + 1}: baseline`);
        const sdkPass = sdkGw ? await pass(sdkGw.url, sdkGw.pid, `round ${round + 1}: gateway, payments read through the SDK`) : null;
        rounds.push({ gateway: gatewayPass, baseline: baselinePass, gatewaySdk: sdkPass });
      }
    };
    // Both gateways live through every round (the idle one's background jobs cost next to nothing).
    const { gateway } = await withGateway(ctx, 'e-gateway-redis', { lock: 'redis' }, async (gw) => {
      if (WITH_SDK) await withGateway(ctx, 'e-gateway-sdk', { lock: 'redis', env: { MOLLIE_PAYMENT_FETCH: 'sdk' } }, (sdkGw) => runRounds(gw, sdkGw));
      else await runRounds(gw, null);
    });
    const baselinePeakRssMb = mb((await sampleProcess(baseline.pid)).peakRssBytes);
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const gatewayRates = rounds.map((r) => r.gateway.load.rate);
    const baselineRates = rounds.map((r) => r.baseline.load.rate);
    const ratio = round(mean(gatewayRates) / mean(baselineRates), 2);
    say(`  gateway / baseline throughput (means of ${ROUNDS} interleaved passes each): ${ratio}`);
    for (const r of rounds) if (r.gateway.load.non2xx + r.baseline.load.non2xx > 0) say(`  WARNING: non-2xx answers: gateway ${r.gateway.load.non2xx}, baseline ${r.baseline.load.non2xx}`);
    const cpuPerRequest = (p: Pass) => cpuMsPer(p.usage, p.load.rate);
    const directCpuPerRequestMs = rounds.map((r) => cpuPerRequest(r.gateway));
    const sdkCpuPerRequestMs = WITH_SDK ? rounds.map((r) => cpuPerRequest(r.gatewaySdk!)) : null;
    const directCpuSaving = sdkCpuPerRequestMs ? round(1 - mean(directCpuPerRequestMs) / mean(sdkCpuPerRequestMs), 3) : null;
    if (sdkCpuPerRequestMs) {
      say(`  gateway CPU per webhook, direct GET vs SDK: ${directCpuPerRequestMs.join(', ')} vs ${sdkCpuPerRequestMs.join(', ')} ms: ${round(100 * directCpuSaving!, 1)}% less`);
    }
    return {
      rounds,
      gatewayRates,
      baselineRates,
      ratio,
      gatewayP99Ms: rounds.map((r) => r.gateway.load.p99Ms),
      baselineP99Ms: rounds.map((r) => r.baseline.load.p99Ms),
      gateway,
      baselinePeakRssMb,
      sdkCpuPerRequestMs,
      directCpuPerRequestMs,
      directCpuSaving,
    };
  } finally {
    await baseline.stop();
  }
}
