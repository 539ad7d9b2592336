/**
 * Scenario (a) Mollie classic webhooks, one payment each
 */
import autocannon from 'autocannon';
import { pacedLoad } from '../paced-load.js';
import type { GatewayRuntime } from '../gateway.js';
import { watchRss } from '../proc-stats.js';
import { round, say } from '../common.js';
import { COMPARE_RUNTIME, CONNECTIONS, HEAP_CAP_MB, PACED_SECONDS, PACED_WARMUP_SECONDS, RUNTIME, SECONDS, WARMUP_SECONDS } from '../config.js';
import { type Ceiling, type Context, type GatewayRun, type LoadStats, type Usage, ceiling, ceilingAgain, fromPaced, loadStats, measured, mollieWebhook, printLoad, withGateway } from '../measure.js';

export interface ScenarioAResult {
  ceiling: Ceiling;
  runs: Array<{
    lock: 'in-process' | 'redis';
    runtime: GatewayRuntime;
    /** --max-old-space-size of this gateway; null: V8's own default (the comparison pass). */
    heapCapMb: number | null;
    gateway: GatewayRun;
    max: { load: LoadStats; usage: Usage };
    half?: { load: LoadStats; usage: Usage; targetRate: number };
    /**
     * The same half rate, evenly paced and open-loop (bench/paced-load.ts), on a fresh gateway,
     * after `warmup` (the same load, not counted; its own figures are kept beside).
     */
    paced?: { load: LoadStats; usage: Usage; targetRate: number; warmup?: { seconds: number; p50Ms: number; p99Ms: number; maxMs: number } };
    pacedGateway?: GatewayRun;
    check: { idsSent: number; payments: number; events: number; poolExhausted: boolean };
  }>;
  lockRatio: number | null;
  lockRates: { inProcess: number[]; redis: number[] };
}

export async function scenarioA(ctx: Context): Promise<ScenarioAResult> {
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
    const passSeconds = WARMUP_SECONDS + SECONDS * (variant.half ? 2 : 1) + (variant.half ? PACED_WARMUP_SECONDS + PACED_SECONDS : 0);
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
        const warm = await pacedLoad({ url: gw.url, rate: targetRate, seconds: PACED_WARMUP_SECONDS, next: webhook });
        const warmup = { seconds: PACED_WARMUP_SECONDS, p50Ms: warm.p50Ms, p99Ms: warm.p99Ms, maxMs: warm.maxMs };
        say(`  ${variant.lock} lock, ${variant.runtime}, half rate (${targetRate}/s), evenly paced: warm-up of ${PACED_WARMUP_SECONDS} s (not counted): p50 ${warm.p50Ms} ms, p99 ${warm.p99Ms} ms, max ${warm.maxMs} ms`);
        const even = await measured(ctx, gw, async () => fromPaced(await pacedLoad({ url: gw.url, rate: targetRate, seconds: PACED_SECONDS, next: webhook })));
        printLoad(`${variant.lock} lock, ${variant.runtime}, half rate (${targetRate}/s), evenly paced, fresh gateway`, even.value, even.usage);
        return { load: even.value, usage: even.usage, targetRate, warmup };
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
