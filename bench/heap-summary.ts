/**
 * Summarises a sampling heap profile (bench/heap-sampler.mjs): bytes by allocating function,
 * by the nearest package or src/ frame, and the heaviest stacks.
 *
 *   npx tsx bench/heap-summary.ts bench/profiles/heap-<pid>.heapprofile
 */
import { readFileSync } from 'node:fs';

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: npx tsx bench/heap-summary.ts <file.heapprofile>\n');
  process.exit(2);
}
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };

const byFunction = new Map<string, number>();
const byOwner = new Map<string, number>();
const byStack = new Map<string, number>();
const add = (map: Map<string, number>, key: string, bytes: number) => map.set(key, (map.get(key) ?? 0) + bytes);
const label = (node: HeapNode) => `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.split('/').slice(-2).join('/')}:${node.callFrame.lineNumber}`;
/** The package (node_modules/<name>) or src/ directory a frame belongs to. */
function owner(url: string): string | undefined {
  // The gateway's own code: src/, or the bench's build of it (node_modules/.cache/gw-bench-build/src).
  const src = /(?:^|\/)(?:gw-bench-build\/)?(src\/[^/]+)/.exec(url);
  if (src && (!url.includes('node_modules/') || url.includes('gw-bench-build/'))) return src[1];
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `pkg:${pkg[1]}`;
  if (url.startsWith('node:')) return 'node:internal';
  return undefined;
}

function walk(node: HeapNode, path: HeapNode[]): void {
  const here = [...path, node];
  if (node.selfSize > 0) {
    add(byFunction, label(node), node.selfSize);
    const nearest = [...here].reverse().find((frame) => owner(frame.callFrame.url) && !frame.callFrame.url.startsWith('node:'));
    add(byOwner, nearest ? owner(nearest.callFrame.url)! : (owner(node.callFrame.url) ?? '(native)'), node.selfSize);
    add(byStack, here.slice(-6).reverse().map(label).join(' <- '), node.selfSize);
  }
  for (const child of node.children) walk(child, here);
}
walk(head, []);

const total = [...byFunction.values()].reduce((sum, bytes) => sum + bytes, 0);
const top = (title: string, map: Map<string, number>, count: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    process.stdout.write(`${((100 * bytes) / total).toFixed(1).padStart(6)}%  ${(bytes / 1e6).toFixed(1).padStart(7)} MB  ${key}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} MB sampled\n`);
top('by nearest package or src/ frame:', byOwner, 15);
top('by allocating function:', byFunction, 15);
top('heaviest stacks:', byStack, 10);
