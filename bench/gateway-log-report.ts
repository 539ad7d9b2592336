/**
 * Reads one gateway log of the benchmark (bench/logs/<pass>.log) and lines up what the
 * requests felt with what the process was doing:
 *
 * - the gateway's own per-request lines (`"msg":"request"`, `ms`): count, p50, p99;
 * - slow windows (requests over `--slow` ms, grouped when less than 300 ms apart), with the
 *   GC pauses and event-loop stalls that bench/loop-monitor.mjs logged inside each;
 * - with `--trace-gc-nvp` in BENCH_GATEWAY_NODE_ARGS: young-generation collections, and bytes
 *   allocated and promoted to the old generation per request.
 *
 *   BENCH_GATEWAY_NODE_ARGS="--import ./bench/loop-monitor.mjs --trace-gc-nvp" BENCH_SCENARIOS=a npm run bench
 *   npx tsx bench/gateway-log-report.ts bench/logs/a1-in-process-node-paced.log [--path=/webhooks/mollie] [--slow=40] [--last=N]
 *
 * `--last=N` keeps the last N requests (the measured pass, without the warm-up before it);
 * allocation figures always cover the whole log, warm-up included.
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((arg) => !arg.startsWith('--'));
const option = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
if (!file) {
  process.stderr.write('usage: npx tsx bench/gateway-log-report.ts <gateway log> [--path=/webhooks/mollie] [--slow=40] [--last=N]\n');
  process.exit(2);
}
const routePath = option('path') ?? '/webhooks/mollie';
const slowMs = Number(option('slow') ?? 40);
const last = option('last') ? Number(option('last')) : undefined;

interface Request {
  time: number;
  ms: number;
}
interface MonitorEvent {
  at: number;
  kind: string;
  ms: number;
}

const requests: Request[] = [];
const events: MonitorEvent[] = [];
let scavenges = 0;
let allocated = 0;
let promoted = 0;
let majors = 0;
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (line.startsWith('{')) {
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record.monitor && typeof record.at === 'number') {
      events.push({ at: record.at, kind: typeof record.gc === 'string' ? `gc ${record.gc}` : 'stall', ms: Number(record.ms) });
    } else if (record.msg === 'request' && record.path === routePath && typeof record.ms === 'number') {
      requests.push({ time: Number(record.time), ms: record.ms });
    }
    continue;
  }
  // --trace-gc-nvp: one line per collection, `gc=s` for a scavenge, `gc=mc`/`gc=ms` for major ones.
  const kind = / gc=(\w+) /.exec(line)?.[1];
  if (kind === 's') {
    scavenges++;
    allocated += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
    promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
  } else if (kind === 'mc' || kind === 'ms') {
    majors++;
  }
}

const allRequests = requests.length;
const measured = last === undefined ? requests : requests.slice(-last);
if (measured.length === 0) {
  process.stdout.write(`no ${routePath} request lines in ${file}\n`);
  process.exit(1);
}
const sorted = measured.map((r) => r.ms).sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const t0 = measured[0]!.time;
const t1 = measured.at(-1)!.time;
process.stdout.write(
  `${measured.length} ${routePath} requests over ${((t1 - t0) / 1000).toFixed(1)} s (gateway-side time): p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${sorted.at(-1)} ms\n`,
);

// A request logged at `time` after `ms` was in flight from time - ms.
const windows: Request[][] = [];
for (const request of measured.filter((r) => r.ms > slowMs)) {
  const current = windows.at(-1);
  if (current && request.time - current.at(-1)!.time < 300) current.push(request);
  else windows.push([request]);
}
process.stdout.write(`\n${windows.length} slow window(s) (requests over ${slowMs} ms), times from the first measured request:\n`);
for (const window of windows) {
  const from = Math.min(...window.map((r) => r.time - r.ms));
  const to = window.at(-1)!.time;
  const inside = events.filter((event) => event.at >= from - 50 && event.at <= to);
  const described = inside.map((event) => `${event.kind} ${event.ms} ms at +${event.at - t0}`).join(', ') || 'no GC pause or stall logged';
  process.stdout.write(`  +${from - t0}..+${to - t0} ms: ${window.length} requests, max ${Math.max(...window.map((r) => r.ms))} ms; ${described}\n`);
}
const inPass = events.filter((event) => event.at >= t0 && event.at <= t1);
if (events.length > 0) {
  const count = (kind: string) => inPass.filter((event) => event.kind === kind).length;
  process.stdout.write(`\nduring these requests: ${count('gc major')} major GC(s), ${count('gc minor')} minor GC(s) over 5 ms, ${count('stall')} loop stall(s) over 20 ms\n`);
}
if (scavenges > 0) {
  process.stdout.write(
    `\nwhole log (${allRequests} requests, warm-up included): ${scavenges} scavenges, ${majors} major GCs; ` +
      `${Math.round(allocated / allRequests / 1000)} KB allocated and ${(promoted / allRequests / 1000).toFixed(1)} KB promoted per request\n`,
  );
}
