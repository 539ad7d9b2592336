/**
 * The processes the gateway talks to during a run: the sandboxes' process and a Redis of
 * the benchmark's own.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, ROOT } from './gateway.js';
import { cleanups } from './common.js';
import { assertLoopback, env } from './config.js';

export interface SandboxProcess {
  pid: number;
  mollieUrl: string;
  mollieApiKey: string;
  gocardlessUrl: string;
  gocardlessAccessToken: string;
  gocardlessWebhookSecret: string;
  call<T>(message: Record<string, unknown>): Promise<T>;
}

export async function startSandboxProcess(): Promise<SandboxProcess> {
  const child: ChildProcess = fork(path.join(ROOT, 'bench/sandbox-process.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_SANDBOX_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Bulk-created payments for the poller scenario need room.
    env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=2048' },
  });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  const ready = await new Promise<Omit<SandboxProcess, 'call' | 'pid'>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`sandbox process exited ${code}`)));
    child.on('message', (message: Record<string, unknown>) => {
      if (message.ready) return resolve(message as unknown as Omit<SandboxProcess, 'call' | 'pid'>);
      const waiter = pending.get(message.id as number);
      if (!waiter) return;
      pending.delete(message.id as number);
      if (message.error) waiter.reject(new Error(String(message.error)));
      else waiter.resolve(message.result);
    });
  });
  return {
    ...ready,
    pid: child.pid!,
    call<T>(message: Record<string, unknown>) {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ ...message, id });
      });
    },
  };
}

// Redis of the benchmark's own (a Redis shared with test suites would add their noise)

export async function startRedis(): Promise<{ url: string; version: string } | null> {
  if (env.BENCH_REDIS_URL) {
    assertLoopback(env.BENCH_REDIS_URL, 'BENCH_REDIS_URL');
    return { url: env.BENCH_REDIS_URL, version: 'external' };
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = await new Promise<string | null>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(null), 10_000);
    child.on('error', () => resolve(null));
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(/Redis version=([\d.]+)/.exec(out)?.[1] ?? /v=([\d.]+)/.exec(out)?.[1] ?? 'unknown');
      }
    });
  });
  if (!started) {
    child.kill('SIGKILL');
    return null;
  }
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  return { url: `redis://127.0.0.1:${port}`, version: started };
}
