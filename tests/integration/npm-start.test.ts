/**
 * The gateway as the README's first command runs it: `npm start` (prestart transpiles
 * src/ to dist/, then plain node with the heap cap), against real Postgres and the
 * Mollie sandbox over HTTP. And its shutdown: SIGTERM while a webhook is still being
 * processed answers that webhook, stores its payment, and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

let database: TestDatabase;
let sandbox: MollieSandbox;
let sql: postgres.Sql;
let npm: ChildProcess;
let output = '';
let url: string;
let exited: Promise<number | null>;

/** The gateway's own node process: the one started with this port whose command runs dist/node.js. */
function gatewayProcess(port: number): { pid: number; args: string[] } | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (!args.some((arg) => arg.endsWith('dist/node.js')) || path.basename(args[0] ?? '') !== 'node') continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`PORT=${port}`)) return { pid: Number(entry), args };
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

/** A Mollie webhook on a connection of its own (`Connection: close`), which the caller can hang up. */
function postOnce(body: string): { status: Promise<number | 'hung up'>; hangUp(): void } {
  const target = new URL(url);
  let request: http.ClientRequest;
  const status = new Promise<number | 'hung up'>((resolve) => {
    request = http.request(
      { host: target.hostname, port: target.port, path: '/webhooks/mollie', method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    request.on('error', () => resolve('hung up'));
    request.end(body);
  });
  return { status, hangUp: () => request.destroy() };
}

async function webhook(id: string): Promise<Response> {
  return fetch(`${url}/webhooks/mollie`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `id=${id}`,
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startMollieSandbox({ hostname: '127.0.0.1' });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('npm_')) env[key] = value;
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    REDIS_URL: '',
    MOLLIE_API_KEY: 'test_sandbox',
    MOLLIE_API_URL: sandbox.url,
    LOG_LEVEL: 'warn',
  });
  // Its own process group, so the whole npm → sh → node chain can be cleaned up.
  npm = spawn('npm', ['start', '--silent'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  npm.stdout!.on('data', (chunk) => (output += chunk));
  npm.stderr!.on('data', (chunk) => (output += chunk));
  exited = new Promise((resolve) => npm.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (npm.exitCode !== null) throw new Error(`npm start exited ${npm.exitCode}:\n${output}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`npm start not ready in 60 s:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 90_000);

afterAll(async () => {
  if (npm?.exitCode === null && npm.pid) {
    try {
      process.kill(-npm.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await sql?.end();
  await sandbox?.close();
  await database?.drop();
});

describe('npm start', () => {
  it('runs dist/node.js under plain node with the heap flags, and serves a Mollie webhook end to end', async () => {
    const gateway = gatewayProcess(Number(new URL(url).port));
    expect(gateway, `no node process running dist/node.js for this port:\n${output}`).toBeDefined();
    expect(gateway!.args).toContain('--max-old-space-size=192');
    expect(gateway!.args).toContain('--heap-growing-percent=150');
    expect(gateway!.args.some((arg) => arg.includes('tsx'))).toBe(false);

    const payment = sandbox.createPayment({ status: 'paid' });
    const res = await webhook(payment.id);
    expect(res.status).toBe(200);
    const rows = await sql<{ status: string }[]>`select status from payments where provider = 'mollie' and provider_payment_id = ${payment.id}`;
    expect(rows).toEqual([{ status: 'paid' }]);
  });

  it('SIGTERM while webhooks are being processed: each is finished (even one whose caller left), the waiting one answered, exit 0', async () => {
    const gateway = gatewayProcess(Number(new URL(url).port))!;
    const answered = sandbox.createPayment({ status: 'paid' });
    const abandoned = sandbox.createPayment({ status: 'paid' });
    sandbox.setLatency(1000, answered.id);
    sandbox.setLatency(2500, abandoned.id);
    // One connection per request, closed after its answer (no keep-alive socket holds the server open).
    const answer = postOnce(`id=${answered.id}`);
    const gaveUp = postOnce(`id=${abandoned.id}`);
    // Until the gateway is waiting on the provider for both payments.
    const deadline = Date.now() + 10_000;
    while ([answered.id, abandoned.id].some((id) => (sandbox.state.requestCounts.get(id) ?? 0) === 0)) {
      if (Date.now() > deadline) throw new Error('the gateway never fetched the payments');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // One caller hangs up (its socket closes while the handler still waits on Mollie), then SIGTERM.
    gaveUp.hangUp();
    process.kill(gateway.pid, 'SIGTERM');

    expect(await answer.status).toBe(200);
    expect(await gaveUp.status).toBe('hung up');
    expect(await exited).toBe(0);
    for (const id of [answered.id, abandoned.id]) {
      const rows = await sql<{ status: string }[]>`select status from payments where provider = 'mollie' and provider_payment_id = ${id}`;
      expect(rows, id).toEqual([{ status: 'paid' }]);
      const [receipt] = await sql<{ state: string }[]>`select state from webhook_receipts where resource_id = ${id}`;
      expect(receipt?.state, id).toBe('processed');
    }
    expect(output).not.toMatch(/uncaught|TypeError/i);
  }, 30_000);
});
