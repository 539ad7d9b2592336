import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { TEST_ADMIN_TOKEN, eventually } from '../helpers/deps.js';
import { freePort } from '../helpers/processes.js';

/**
 * The same gateway under workerd: `wrangler dev` with nodejs_compat, against the local
 * Postgres and Redis (migrations applied by the Node side, here the test template).
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
let wrangler: ChildProcess;
let persistDir: string;
let url: string;
let output = '';

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0 });
  persistDir = await mkdtemp(path.join(tmpdir(), 'gateway-wrangler-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const vars = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    MOLLIE_API_URL: mollie.url,
    MOLLIE_API_KEY: 'test_sandbox',
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
  };
  wrangler = spawn(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
      'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()),
      '--persist-to', persistDir, '--show-interactive-dev-session=false',
      ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
    ],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  wrangler.stdout!.on('data', (chunk) => (output += chunk));
  wrangler.stderr!.on('data', (chunk) => (output += chunk));
  await eventually(
    async () => {
      if (wrangler.exitCode !== null) throw new Error(`wrangler exited ${wrangler.exitCode}:\n${output}`);
      return (await fetch(`${url}/healthz`).catch(() => null))?.ok;
    },
    { timeoutMs: 90_000, intervalMs: 250, what: 'wrangler dev to serve /healthz' },
  ).catch((error) => {
    throw new Error(`${(error as Error).message}\n${output}`);
  });
}, 120_000);

afterAll(async () => {
  if (wrangler && wrangler.exitCode === null) {
    const exited = new Promise((resolve) => wrangler.once('exit', resolve));
    wrangler.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (wrangler.exitCode === null) wrangler.kill('SIGKILL');
  }
  await mollie?.close();
  await sql?.end();
  await database?.drop();
  if (persistDir) await rm(persistDir, { recursive: true, force: true });
});

const auth = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

describe('Cloudflare Workers target (wrangler dev)', () => {
  it('answers readiness with Postgres and Redis reachable from workerd', async () => {
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ checks: { postgres: { ok: true }, redis: { ok: true } }, lock: 'redlock' });
  });

  it('a Mollie webhook and a return-page sync at once: one payment, one paid event', async () => {
    const ids = Array.from({ length: 6 }, () => mollie.createPayment({ status: 'paid', method: 'ideal' }).id);
    const statuses = await Promise.all(
      ids.flatMap((id) => [
        fetch(`${url}/webhooks/mollie`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `id=${id}` }).then((r) => r.status),
        fetch(`${url}/v1/payments/mollie/${id}/sync`, { method: 'POST', headers: auth }).then((r) => r.status),
      ]),
    );
    expect(statuses.every((status) => status === 200), `statuses ${statuses.join(',')}\n${output}`).toBe(true);
    const rows = await sql<{ provider_payment_id: string; status: string }[]>`
      select provider_payment_id, status from payments where provider_payment_id = any(${ids})`;
    expect(rows).toHaveLength(ids.length);
    expect(rows.every((row) => row.status === 'paid')).toBe(true);
    const events = await sql<{ provider_payment_id: string; count: number }[]>`
      select provider_payment_id, count(*)::int as count from outbox
      where type = 'payment.paid' and provider_payment_id = any(${ids}) group by provider_payment_id`;
    expect(events).toHaveLength(ids.length);
    expect(events.every((event) => event.count === 1)).toBe(true);
  });

  it("a stored account's webhook is fetched with its own key and filed under it", async () => {
    const key = mollie.accounts.addApiKey().token;
    const created = await fetch(`${url}/v1/accounts`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'mollie', name: 'worker-shop', credentials: { apiKey: key } }),
    });
    expect(created.status, `${await created.clone().text()}\n${output}`).toBe(201);
    const payment = mollie.createPayment({ apiKey: key, status: 'paid' });
    const res = await fetch(`${url}/webhooks/mollie/worker-shop`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `id=${payment.id}` });
    expect(res.status, output).toBe(200);
    const row = await eventually(
      async () => (await sql<{ account: string; status: string }[]>`select account, status from payments where provider_payment_id = ${payment.id}`)[0],
      { timeoutMs: 20_000, what: 'the stored account payment' },
    );
    expect(row).toEqual({ account: 'worker-shop', status: 'paid' });
    expect(new Set(mollie.fetchedBy(payment.id))).toEqual(new Set([key]));
  });

  it('a scheduled run polls a due payment', async () => {
    const payment = mollie.createPayment({ status: 'open', method: 'ideal' });
    const tracked = await fetch(`${url}/v1/payments`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'mollie', id: payment.id }),
    });
    expect(tracked.status).toBe(201);
    mollie.setStatus(payment.id, 'paid');
    // Due now, instead of waiting out the iDEAL schedule's first interval.
    await sql`update payments set next_poll_at = now() - interval '1 second' where provider_payment_id = ${payment.id}`;
    const cron = await fetch(`${url}/cdn-cgi/handler/scheduled`);
    expect(cron.status).toBe(200);
    const row = await eventually(
      async () => {
        const [current] = await sql<{ status: string }[]>`select status from payments where provider_payment_id = ${payment.id}`;
        return current?.status === 'paid' ? current : null;
      },
      { timeoutMs: 20_000, what: 'the scheduled poll to apply paid' },
    );
    expect(row.status).toBe('paid');
    const [transition] = await sql<{ source: string }[]>`
      select t.source from payment_transitions t join payments p on p.id = t.payment_id
      where p.provider_payment_id = ${payment.id} and t.new_status = 'paid'`;
    expect(transition?.source).toBe('poll');
  });
});

