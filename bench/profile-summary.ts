/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. BENCH_PROFILE=1 npm run bench).
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [--top=25] [--from=<s>] [--to=<s>]
 *
 * - self time by module group (a package, a folder of src/, Node's internals, V8's buckets);
 * - "attributed" time: each sample charged to the nearest caller that is our code or a
 *   package, so Node-internal work (socket writes, fetch, streams) lands on whoever asked
 *   for it (postgres, undici via the Mollie SDK, hono, pino...);
 * - inclusive time of the src/ functions (what a request's phases cost, callees included);
 * - self time by function.
 * --from/--to keep only samples within that window (seconds from the profile's start),
 * to leave start-up out.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Which part of the code a frame belongs to. */
export function groupOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg && pkg[1] !== '.cache') return `pkg:${pkg[1]}`;
  const src = /\/src\/([^/]+)/.exec(url);
  if (src) return `src/${src[1]!.replace(/\.js$|\.ts$/, '')}`;
  if (url.startsWith('node:')) return 'node:internal';
  return url.split('/').slice(-2).join('/');
}

const isOurs = (group: string) => group.startsWith('pkg:') || group.startsWith('src/');

export async function summarise(file: string, options: { top?: number; from?: number; to?: number } = {}): Promise<string> {
  const top = options.top ?? 25;
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<number, number>();
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const seconds = at / 1e6;
    if (options.from !== undefined && seconds < options.from) continue;
    if (options.to !== undefined && seconds > options.to) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const add = (map: Map<string, number>, key: string, micros: number) => map.set(key, (map.get(key) ?? 0) + micros);
  const groups = new Map<string, number>();
  const attributed = new Map<string, number>();
  const functions = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const label = (node: ProfileNode) => {
    const { callFrame } = node;
    const where = callFrame.url ? `${callFrame.url.replace(/^.*?(node_modules\/(?!\.cache)|src\/)/, '$1')}:${callFrame.lineNumber + 1}` : '';
    return `${callFrame.functionName || '(anonymous)'} ${where}`;
  };
  for (const [id, micros] of self) {
    const node = byId.get(id)!;
    const group = groupOf(node.callFrame.url, node.callFrame.functionName);
    add(groups, group, micros);
    add(functions, label(node), micros);
    // Nearest caller that is ours or a package's.
    let owner = group;
    let cursor: number | undefined = id;
    while (cursor !== undefined && !isOurs(owner)) {
      const n = byId.get(cursor)!;
      owner = groupOf(n.callFrame.url, n.callFrame.functionName);
      cursor = parent.get(cursor);
    }
    add(attributed, isOurs(owner) ? owner : group, micros);
    // Inclusive time of each src/ function on the stack (counted once per sample).
    const seen = new Set<string>();
    for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) {
      const n = byId.get(c)!;
      if (!groupOf(n.callFrame.url, '').startsWith('src/')) continue;
      const key = label(n);
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, micros);
    }
  }
  const pct = (micros: number) => `${((micros / total) * 100).toFixed(1).padStart(5)}%`;
  const list = (title: string, map: Map<string, number>) => [
    '',
    title,
    ...[...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, micros]) => `  ${pct(micros)}  ${key}`),
  ];
  return [
    `${file}: ${(total / 1e6).toFixed(1)} s sampled`,
    ...list('self time by group:', groups),
    ...list('time attributed to the nearest package or src/ caller:', attributed),
    ...list('inclusive time of src/ functions:', inclusive),
    ...list('self time by function:', functions),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const value = args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
    return value === undefined ? undefined : Number(value);
  };
  for (const file of args.filter((arg) => arg.endsWith('.cpuprofile'))) {
    process.stdout.write(`${await summarise(file, { top: flag('top'), from: flag('from'), to: flag('to') })}\n\n`);
  }
}
