/**
 * Starts the real gateway (src/node.ts) as its own OS process for the benchmark: under
 * tsx (as `npm start` runs it) or with plain `node` on a build transpiled ahead of time,
 * optionally with `--cpu-prof`. Logs go to a file, as a log shipper would take them,
 * so a slow reader cannot stall the gateway's synchronous stdout writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { build } from '../scripts/build.mjs';

export const ROOT = path.resolve(import.meta.dirname, '..');
/** Inside node_modules so the build resolves the project's dependencies, and git ignores it. */
export const BUILD_DIR = path.join(ROOT, 'node_modules/.cache/gw-bench-build');
/**
 * Where the gateway's sources come from: this checkout, or (BENCH_GATEWAY_SRC) another
 * tree holding src/ and drizzle/, e.g. `git archive HEAD src drizzle | tar -x -C /tmp/before`
 * to measure the code before a change with the same benchmark. The build still resolves
 * this checkout's node_modules.
 */
export const SOURCE_ROOT = path.resolve(process.env.BENCH_GATEWAY_SRC ?? ROOT);

export type GatewayRuntime = 'tsx' | 'node';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * The gateway as `npm start` runs it: src/ transpiled by scripts/build.mjs (no type
 * check, no bundling), here into BUILD_DIR/src so another source tree can be measured.
 * Returns the build's entry point and how long the build took.
 */
export async function buildGateway(): Promise<{ entry: string; ms: number }> {
  const started = performance.now();
  await rm(BUILD_DIR, { recursive: true, force: true });
  await build({ srcDir: path.join(SOURCE_ROOT, 'src'), outDir: path.join(BUILD_DIR, 'src') });
  // The entry finds its migrations at ../drizzle; package.json makes the .js files ES modules.
  await symlink(path.join(SOURCE_ROOT, 'drizzle'), path.join(BUILD_DIR, 'drizzle'));
  await writeFile(path.join(BUILD_DIR, 'package.json'), JSON.stringify({ type: 'module' }));
  return { entry: path.join(BUILD_DIR, 'src/node.js'), ms: Math.round(performance.now() - started) };
}

export interface GatewayProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Milliseconds from spawn to the first healthy /healthz. */
  startupMs: number;
  logFile: string;
  stop(): Promise<void>;
}

/** The heap flags of `npm start` (package.json) besides the cap: collect the old generation at 2.5x its live size, not ~1.3x. */
export const HEAP_GROWING_PERCENT = 150;

export interface StartGatewayOptions {
  runtime: GatewayRuntime;
  env: Record<string, string>;
  logFile: string;
  /** --max-old-space-size, passed with npm start's --heap-growing-percent; null for V8's defaults. */
  heapCapMb: number | null;
  /** Directory for a --cpu-prof profile, written when the process exits. */
  cpuProfDir?: string;
  timeoutMs?: number;
}

export async function startGateway(options: StartGatewayOptions): Promise<GatewayProcess> {
  const port = await freePort();
  // Flags NODE_OPTIONS refuses (e.g. --trace-gc), for investigations: BENCH_GATEWAY_NODE_ARGS.
  const args: string[] = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  if (options.heapCapMb !== null) args.push(`--max-old-space-size=${options.heapCapMb}`, `--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  if (options.cpuProfDir) {
    await mkdir(options.cpuProfDir, { recursive: true });
    args.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`);
  }
  if (options.runtime === 'tsx') {
    if (SOURCE_ROOT !== ROOT) throw new Error('BENCH_GATEWAY_SRC needs the node runtime (tsx resolves packages from the source tree)');
    args.push('--import', 'tsx', path.join(ROOT, 'src/node.ts'));
  } else {
    const entry = path.join(BUILD_DIR, 'src/node.js');
    await stat(entry).catch(() => {
      throw new Error(`no gateway build at ${entry}; call buildGateway() first`);
    });
    args.push('--enable-source-maps', entry);
  }
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...options.env, PORT: String(port), HOST: '127.0.0.1' })) {
    if (value !== undefined) env[key] = value;
  }
  await mkdir(path.dirname(options.logFile), { recursive: true });
  const fd = openSync(options.logFile, 'w');
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`gateway exited ${child.exitCode} before it was ready:\n${(await readFile(options.logFile, 'utf8')).slice(-3000)}`);
    }
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway not ready in time:\n${(await readFile(options.logFile, 'utf8')).slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const startupMs = Math.round(performance.now() - started);
  return {
    url,
    pid: child.pid!,
    child,
    startupMs,
    logFile: options.logFile,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
