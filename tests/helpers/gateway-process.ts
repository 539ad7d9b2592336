import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface GatewayProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

/** Starts the real gateway (src/node.ts) as its own OS process and waits for /healthz. */
export async function startGatewayProcess(env: Record<string, string | undefined>, options: { timeoutMs?: number; port?: number } = {}): Promise<GatewayProcess> {
  const port = options.port ?? (await freePort());
  const cleanEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' })) {
    if (value !== undefined) cleanEnv[key] = value;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/node.ts')], { cwd: ROOT, env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited ${child.exitCode} before it was ready:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway not ready in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const done = () => child.exitCode !== null || child.signalCode !== null;
  return {
    url,
    port,
    child,
    output: () => output,
    async stop() {
      if (done()) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (done()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Several gateway processes at once; when one cannot start, the others are stopped before the error is thrown (no process outlives a failed setup). */
export async function startGatewayProcesses(env: Record<string, string | undefined>, count: number, options: { timeoutMs?: number } = {}): Promise<GatewayProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => startGatewayProcess(env, options)));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.kill() : undefined)));
    throw failed.reason;
  }
  return started.map((result) => (result as PromiseFulfilledResult<GatewayProcess>).value);
}
