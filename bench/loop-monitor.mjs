/**
 * A diagnostic preload for the gateway process (not used by default):
 *   BENCH_GATEWAY_NODE_ARGS="--import ./bench/loop-monitor.mjs" npm run bench
 * Writes one JSON line per garbage collection over 5 ms and per event-loop stall over
 * 20 ms (a 5 ms timer that fired late), with wall-clock times, so slow requests in the
 * gateway's log can be lined up with what the process was doing.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
const origin = performance.timeOrigin;
const write = (record) => process.stderr.write(`${JSON.stringify({ monitor: true, ...record })}\n`);

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.duration < 5) continue;
    write({ gc: KINDS[entry.detail?.kind] ?? entry.detail?.kind, at: Math.round(origin + entry.startTime), ms: Math.round(entry.duration * 10) / 10 });
  }
}).observe({ entryTypes: ['gc'] });

let expected = performance.now() + 5;
setInterval(() => {
  const now = performance.now();
  const late = now - expected;
  if (late > 20) write({ stall: true, at: Math.round(origin + expected), ms: Math.round(late) });
  expected = now + 5;
}, 5).unref();
