/**
 * The floors a run is judged by, and the report: bench/results.json and the generated
 * section of bench/RESULTS.md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CeilingResult } from './db-ceiling.js';
import { HEAP_GROWING_PERCENT, ROOT, type GatewayRuntime } from './gateway.js';
import { round, say } from './common.js';
import { ALL_SCENARIOS, HEAP_CAP_MB, RUNTIME, env } from './config.js';
import type { Machine } from './machine.js';
import { type GatewayRun, type Usage, cpuMsPer } from './measure.js';
import type { ScenarioAResult } from './scenarios/a-mollie-webhooks.js';
import type { ScenarioBResult } from './scenarios/b-gocardless-batches.js';
import type { ScenarioCResult } from './scenarios/c-contention.js';
import type { ScenarioDResult } from './scenarios/d-poller.js';
import type { ScenarioEResult } from './scenarios/e-baseline.js';
import type { ScenarioFResult } from './scenarios/f-accounts.js';

export interface Floor {
  floor: string;
  measured: string;
  met: boolean | null;
}

export function floors(results: { a?: ScenarioAResult; b?: ScenarioBResult; c?: ScenarioCResult; d?: ScenarioDResult; e?: ScenarioEResult; f?: ScenarioFResult }, gateways: GatewayRun[]): Floor[] {
  const out: Floor[] = [];
  const a = results.a;
  const main = a?.runs.find((run) => run.lock === 'in-process' && run.runtime === RUNTIME && run.heapCapMb === (HEAP_CAP_MB > 0 ? HEAP_CAP_MB : null));
  if (a && main) {
    // Every max-rate pass of the gateway as shipped (in-process lock), averaged: one pass alone swings with the machine.
    const rates = a.lockRates.inProcess.length > 0 ? a.lockRates.inProcess : [main.max.load.rate];
    const rate = round(rates.reduce((sum, value) => sum + value, 0) / rates.length, 1);
    const ratio = rate / a.ceiling.tps;
    // Retired as a floor (issue #20): on two shared cores it measured the machine more than the gateway.
    out.push({
      floor: 'for comparison, not a floor: (a) throughput against the pgbench ceiling for the same SQL',
      measured: `${rate}/s${rates.length > 1 ? ` (mean of ${rates.join(', ')})` : ''} vs ${round(a.ceiling.tps)} tps${a.ceiling.samples.length > 1 ? ` (mean of ${a.ceiling.samples.map((tps) => round(tps)).join(' before and ')} after the passes)` : ''} = ${round(ratio, 2)}×`,
      met: null,
    });
    const redis = a.runs.find((run) => run.lock === 'redis');
    for (const [label, run] of [['in-process lock', main], ['Redlock', redis]] as const) {
      if (!run?.half || !run.paced) continue;
      out.push({
        floor: `(a) p99 < 50 ms at half the maximum rate (${label})`,
        measured: `evenly paced ${run.paced.load.p99Ms} ms at ${run.paced.targetRate}/s (p50 ${run.paced.load.p50Ms} ms)${run.paced.warmup ? `, after ${run.paced.warmup.seconds} s of warm-up at that rate (its own p99 ${run.paced.warmup.p99Ms} ms)` : ''}; autocannon overallRate (per-second bursts) ${run.half.load.p99Ms} ms`,
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
  if (results.e) {
    const e = results.e;
    const mean = (values: number[]) => round(values.reduce((sum, value) => sum + value, 0) / values.length, 1);
    out.push({
      floor: '(e) webhooks/s at least the hand-written baseline\'s, same run (target 1.5×)',
      measured: `gateway ${e.gatewayRates.join(', ')}/s vs baseline ${e.baselineRates.join(', ')}/s (interleaved): ${e.ratio}× on the means`,
      met: e.ratio >= 1,
    });
    out.push({
      floor: '(e) p99 at max rate no higher than the baseline\'s',
      measured: `gateway ${e.gatewayP99Ms.join(', ')} ms vs baseline ${e.baselineP99Ms.join(', ')} ms (mean ${mean(e.gatewayP99Ms)} vs ${mean(e.baselineP99Ms)})`,
      met: mean(e.gatewayP99Ms) <= mean(e.baselineP99Ms),
    });
    if (e.sdkCpuPerRequestMs && e.directCpuSaving !== null) {
      out.push({
        floor: '(e) the direct Mollie GET saves at least 15% of the gateway\'s CPU per webhook against the SDK path',
        measured: `${e.directCpuPerRequestMs.join(', ')} vs ${e.sdkCpuPerRequestMs.join(', ')} ms per webhook (interleaved): ${round(100 * e.directCpuSaving, 1)}% less`,
        met: e.directCpuSaving >= 0.15,
      });
    }
  }
  if (results.f) {
    const f = results.f;
    out.push({
      floor: `(f) ${f.accounts} stored accounts, webhooks over ${f.activeAccounts} of them: throughput within 10% of one account's, same run`,
      measured: `spread ${f.spreadRates.join(', ')}/s vs one account ${f.singleRates.join(', ')}/s (interleaved): ${f.ratio}× on the means`,
      met: f.ratio >= 0.9,
    });
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

export function markdown(report: Report): string {
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
  if (report.e) {
    for (const [index, r] of report.e.rounds.entries()) {
      const passes = [['gateway (Redis lock)', r.gateway], ['hand-written baseline (bench/baseline.ts)', r.baseline], ...(r.gatewaySdk ? [['gateway, payments read through the SDK', r.gatewaySdk] as const] : [])] as const;
      for (const [who, pass] of passes) {
        lines.push(`| (e) round ${index + 1}, ${who}: max | ${pass.load.rate}/s | ${pass.load.p50Ms} ms | ${pass.load.p99Ms} ms | ${pass.usage.gatewayCpuCores} | ${cpuMsPer(pass.usage, pass.load.rate)} | ${who === 'gateway (Redis lock)' ? `${report.e.gateway.peakRssMb} MB` : who.startsWith('hand') ? `${report.e.baselinePeakRssMb} MB` : ''} | | ${la(pass.usage.loadAverageStart.slice(0, 1))}→${la(pass.usage.loadAverageEnd.slice(0, 1))} |`);
      }
    }
  }
  if (report.f) {
    for (const [index, r] of report.f.rounds.entries()) {
      for (const [who, pass] of [['one account (env)', r.single], [`${report.f.activeAccounts} of ${report.f.accounts} stored accounts`, r.spread]] as const) {
        lines.push(`| (f) round ${index + 1}, ${who}: max | ${pass.load.rate}/s | ${pass.load.p50Ms} ms | ${pass.load.p99Ms} ms | ${pass.usage.gatewayCpuCores} | ${cpuMsPer(pass.usage, pass.load.rate)} | ${report.f.gateway.peakRssMb} MB | | ${la(pass.usage.loadAverageStart.slice(0, 1))}→${la(pass.usage.loadAverageEnd.slice(0, 1))} |`);
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

export interface Report {
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
  e?: ScenarioEResult;
  f?: ScenarioFResult;
  passes: Array<{ name: string; usage: Usage }>;
  gateways: GatewayRun[];
  floors: Floor[];
}

export const BEGIN = '<!-- bench:results:begin (generated by npm run bench; edit outside these markers) -->';
export const END = '<!-- bench:results:end -->';

export async function writeReport(report: Report): Promise<void> {
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
