import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * A TypeScript worker process that boots, prints READY, then waits for one line on stdin
 * (its go signal, e.g. a start time) before it works. Lets a test start the race only once
 * every process is up, however slow the machine is.
 */
export function startTsWorker(file: string, env: Record<string, string>, timeoutMs = 120_000) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(ROOT, file)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (stdout.includes('READY\n')) markReady();
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout.slice(stdout.indexOf('READY\n') + 6));
      else reject(new Error(`${file} exited ${code}\n${stderr}\n${stdout}`));
    });
  });
  // A worker that dies before READY must fail the wait, not hang it.
  const readyOrDied = Promise.race([ready, done.then(() => {
    throw new Error(`${file} exited before it was ready`);
  })]);
  return { ready: readyOrDied, go: (line: string) => child.stdin.end(`${line}\n`), done };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A Redis server of the test's own, on its own port, so the test can kill it. */
export async function startRedisServer(): Promise<{ url: string; process: ChildProcess; kill(): Promise<void> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    process: child,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** In a worker started by startTsWorker: waits for the go line on stdin. */
export function readLine(): Promise<string> {
  return new Promise((resolve) => {
    let buffer = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline >= 0) resolve(buffer.slice(0, newline));
    });
  });
}
