/**
 * A diagnostic preload for the gateway process (not used by default): samples the
 * allocations that outlive a young-generation collection, i.e. what ends up as old-generation
 * garbage (objects collected by a minor GC are left out; those collected by a major GC kept).
 *
 *   BENCH_GATEWAY_NODE_ARGS="--import ./bench/heap-sampler.mjs" BENCH_SCENARIOS=a npm run bench
 *   npx tsx bench/heap-summary.ts bench/profiles/heap-<pid>.heapprofile
 *
 * Sampling starts BENCH_HEAP_SAMPLE_START_MS (default 6000) after the process starts and runs for
 * BENCH_HEAP_SAMPLE_MS (default 10000); the profile is written to bench/profiles/.
 * BENCH_HEAP_SAMPLE_ALL=1 keeps the objects a minor GC collected too: every allocation, by source.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const session = new Session();
session.connect();
const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
const startAfter = Number(process.env.BENCH_HEAP_SAMPLE_START_MS ?? 6000);
const duration = Number(process.env.BENCH_HEAP_SAMPLE_MS ?? 10000);
const dir = path.resolve(import.meta.dirname, 'profiles');

setTimeout(async () => {
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.BENCH_HEAP_SAMPLE_ALL === '1' });
  setTimeout(async () => {
    const { profile } = await post('HeapProfiler.stopSampling');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `heap-${process.pid}.heapprofile`);
    writeFileSync(file, JSON.stringify(profile));
    process.stderr.write(`${JSON.stringify({ monitor: true, heapProfile: file })}\n`);
  }, duration).unref();
}, startAfter).unref();
