/**
 * The replay CLI (src/cli/replay.ts) as a real process, against a real gateway process
 * and the sandbox providers, in every scenario; against a fake "gateway" whose event
 * feed breaks an invariant (the CLI must fail); and the export → replay round trip into
 * a second, empty gateway. Every assertion about the gateway is also made here directly
 * on its database, so a CLI that checked nothing would not pass.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplayReport } from '../../src/cli/replay/run.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { startMollieSandbox, SANDBOX_DEFAULT_API_KEY, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(ROOT, 'fixtures/replay');
const MOLLIE_SECRET = 'replay_test_mollie_webhook_secret';
const ALL_SETS = ['mollie-classic.jsonl', 'mollie-nextgen.jsonl', 'gocardless-batches.jsonl'].map((file) => path.join(FIXTURES, file));

interface Stack {
  database: TestDatabase;
  sql: postgres.Sql;
  mollie: MollieSandbox;
  gocardless: GoCardlessSandbox;
  gateway: GatewayProcess;
}

async function startStack(): Promise<Stack> {
  const database = await createTestDatabase();
  const [mollie, gocardless] = await Promise.all([startMollieSandbox(), startGoCardlessSandbox()]);
  const gateway = await startGatewayProcess(
    {
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      MOLLIE_API_KEY: SANDBOX_DEFAULT_API_KEY,
      MOLLIE_API_URL: mollie.url,
      MOLLIE_WEBHOOK_SECRETS: MOLLIE_SECRET,
      GOCARDLESS_ACCESS_TOKEN: gocardless.accessToken,
      GOCARDLESS_API_URL: gocardless.url,
      GOCARDLESS_WEBHOOK_SECRETS: gocardless.webhookSecret,
      // Replays send one payment's webhooks moments apart: with the default windows (10 s, and
      // 60 s after a 404) the later ones wait that long for their one fetch, past the settle time.
      WEBHOOK_REFETCH_WINDOW_MS: '1000',
      WEBHOOK_NOT_FOUND_WINDOW_MS: '2000',
      LOG_LEVEL: 'warn',
    },
    { timeoutMs: 60_000 },
  );
  await eventually(async () => (await fetch(`${gateway.url}/readyz`)).ok, { timeoutMs: 20_000, what: `${gateway.url}/readyz` });
  return { database, sql: postgres(database.url, { max: 2, onnotice: () => {} }), mollie, gocardless, gateway };
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  if (!stack) return;
  await stack.gateway.stop();
  await Promise.all([stack.sql.end(), stack.mollie.close(), stack.gocardless.close()]);
  await stack.database.drop();
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one of our CLIs as its own process, with none of the environment it could pick defaults from. */
function runCli(script: string, args: string[], timeoutMs = 75_000): Promise<CliRun> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !['ADMIN_TOKEN', 'GATEWAY_URL', 'DATABASE_URL', 'MOLLIE_WEBHOOK_SECRETS', 'GOCARDLESS_WEBHOOK_SECRETS'].includes(key)) env[key] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish in ${timeoutMs} ms\n${stderr}\n${stdout}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function stackArgs(stack: Stack): string[] {
  return [
    '--gateway', stack.gateway.url,
    '--admin-token', TEST_ADMIN_TOKEN,
    '--mollie-sandbox', stack.mollie.url,
    '--gocardless-sandbox', stack.gocardless.url,
    '--mollie-secret', MOLLIE_SECRET,
    '--gocardless-secret', stack.gocardless.webhookSecret,
    '--database-url', stack.database.url,
    '--settle-timeout', '40000',
    '--json', '--no-progress',
  ];
}

async function replay(stack: Stack, args: string[]): Promise<ReplayReport> {
  const run = await runCli('src/cli/replay.ts', [...stackArgs(stack), ...args]);
  if (run.code !== 0) throw new Error(`replay exited ${run.code}\n${run.stderr}\n${run.stdout}\n--- gateway:\n${stack.gateway.output().slice(-3000)}`);
  return JSON.parse(run.stdout) as ReplayReport;
}

/** Payment rows and their events, straight from the gateway's tables, for this run's ids. */
async function stored(sql: postgres.Sql, suffix: string) {
  const payments = await sql<{ provider: string; id: string; status: string; provider_status: string; version: number; refunded_minor: number }[]>`
    select provider, provider_payment_id as id, status, provider_status, version, refunded_minor::int as refunded_minor
    from payments where provider_payment_id like ${`%${suffix}`} order by provider, provider_payment_id`;
  const events = await sql<{ id: string; type: string; version: number }[]>`
    select provider_payment_id as id, type, payment_version as version from outbox
    where provider_payment_id like ${`%${suffix}`} order by provider_payment_id, payment_version, type`;
  const typesOf = (id: string) => events.filter((event) => event.id === id).map((event) => event.type);
  return { payments, events, typesOf };
}

/** Where each fixture payment ends (its last sandbox state), by fixture id. */
const FINAL: Record<string, string> = {
  tr_5B8cwPMGnU6qLbRvo7qEZo: 'paid',
  tr_WDqYK6vllg: 'failed',
  tr_7UhSN1zuXS: 'expired',
  tr_Hc9xQ2mPzA: 'paid',
  tr_Q2pwTeZGt9: 'paid',
  tr_Kt4mWq8ZcB: 'paid',
  tr_Rm3ZkPq7Yd: 'canceled',
  PM01AB2CD3EF4G: 'paid_out',
  PM01AB2CD3EF4H: 'failed',
  PM01AB2CD3EF4J: 'cancelled',
};

function expectFinalStates(payments: { id: string; provider_status: string }[], suffix: string) {
  const byFixtureId = Object.fromEntries(payments.map((payment) => [payment.id.slice(0, -suffix.length), payment.provider_status]));
  expect(byFixtureId).toEqual(FINAL);
}

let stack: Stack;
let second: Stack | undefined;
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'replay-test-'));
  stack = await startStack();
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([stopStack(stack), stopStack(second)]);
  await rm(workDir, { recursive: true, force: true });
}, 60_000);

describe('npm run replay against a gateway process and the sandboxes', () => {
  it('replays the three fixture sets in order and reproduces each payment history', async () => {
    const report = await replay(stack, ALL_SETS);
    const suffix = report.idSuffix!;
    expect(suffix).toMatch(/^[A-Z0-9]{6}$/);
    expect(report).toMatchObject({ ok: true, webhooks: 18, sent: 18, acknowledged: 18, serverErrors: 0, duplicates: 0, violations: [] });
    expect(report.payments).toMatchObject({ checked: 11, found: 10, expected: 10, settled: 11 });
    expect(report.database).toEqual({ rows: 10, duplicateRows: 0, pendingReceipts: 0, failedReceipts: 0 });

    const { payments, typesOf } = await stored(stack.sql, suffix);
    expectFinalStates(payments, suffix);
    // Each provider state was seen before the next was set: the late failure follows the payout.
    expect(typesOf(`PM01AB2CD3EF4H${suffix}`)).toEqual(['payment.pending', 'payment.paid', 'payment.updated', 'payment.failed']);
    expect(typesOf(`PM01AB2CD3EF4J${suffix}`)).toEqual(['payment.pending', 'payment.canceled']);
    // Each refund's own event is filed under its payment (no payment version: after the payment's).
    expect(typesOf(`tr_5B8cwPMGnU6qLbRvo7qEZo${suffix}`)).toEqual(['payment.paid', 'payment.refunded', 'refund.refunded']);
    expect(typesOf(`tr_Q2pwTeZGt9${suffix}`)).toEqual(['payment.pending', 'payment.paid', 'payment.refunded', 'refund.refunded']);
    expect(payments.find((payment) => payment.id === `tr_Hc9xQ2mPzA${suffix}`)?.refunded_minor).toBe(2500);
    // The mandate cancellation and the payout are forwarded, once each.
    const forwarded = await stack.sql<{ type: string }[]>`
      select type from outbox where dedupe_key in ${stack.sql([`gocardless:event:EV01J7QRF0KJWT${suffix}`, `gocardless:event:EV01J7QRF0KJW5${suffix}`])} order by type`;
    expect(forwarded.map((row) => row.type)).toEqual(['gocardless.mandates.cancelled', 'gocardless.payouts.paid']);
  });

  it('storm: every webhook four times at once still gives one row, one receipt per event id and one event per change', async () => {
    const report = await replay(stack, ['--scenario', 'storm', '--copies', '4', ...ALL_SETS]);
    const suffix = report.idSuffix!;
    expect(report).toMatchObject({ ok: true, sent: 72, acknowledged: 72, serverErrors: 0, duplicates: 0 });

    const { payments, events, typesOf } = await stored(stack.sql, suffix);
    expectFinalStates(payments, suffix);
    expect(new Set(events.map((event) => `${event.id}:${event.version}:${event.type}`)).size).toBe(events.length);
    expect(typesOf(`PM01AB2CD3EF4H${suffix}`)).toEqual(['payment.pending', 'payment.paid', 'payment.updated', 'payment.failed']);
    const receipts = await stack.sql<{ provider: string; signed: boolean; n: number }[]>`
      select provider, event_id is not null as signed, count(*)::int as n from webhook_receipts
      where event_id like ${`%${suffix}`} or resource_id like ${`%${suffix}`} group by 1, 2 order by 1, 2`;
    // 11 GoCardless events and 7 Mollie next-gen events, stored once each; 7 classic posts × 4 (they carry no id).
    expect(receipts).toEqual([
      { provider: 'gocardless', signed: true, n: 11 },
      { provider: 'mollie', signed: false, n: 28 },
      { provider: 'mollie', signed: true, n: 7 },
    ]);
  });

  it('out of order: batches reversed and shuffled after the provider moved on', async () => {
    for (const order of [['--order', 'reverse'], ['--order', 'shuffle', '--seed', '7']]) {
      const report = await replay(stack, ['--scenario', 'out-of-order', ...order, path.join(FIXTURES, 'gocardless-batches.jsonl')]);
      const suffix = report.idSuffix!;
      expect(report).toMatchObject({ ok: true, sent: 4, acknowledged: 4, duplicates: 0 });
      const { payments, typesOf } = await stored(stack.sql, suffix);
      expect(payments.map((payment) => [payment.id.slice(0, -suffix.length), payment.provider_status, payment.version])).toEqual([
        ['PM01AB2CD3EF4G', 'paid_out', 1],
        ['PM01AB2CD3EF4H', 'failed', 1],
        ['PM01AB2CD3EF4J', 'cancelled', 1],
      ]);
      // Stale confirmed/paid_out events arriving after the failure never bring "paid" back.
      expect(typesOf(`PM01AB2CD3EF4H${suffix}`)).toEqual(['payment.failed']);
    }
  });

  it('race: each Mollie webhook and a return-page sync at the same instant', async () => {
    const report = await replay(stack, ['--scenario', 'race', path.join(FIXTURES, 'mollie-race.jsonl'), path.join(FIXTURES, 'mollie-classic.jsonl')]);
    const suffix = report.idSuffix!;
    expect(report).toMatchObject({ ok: true, serverErrors: 0, duplicates: 0 });
    // 8 webhooks, each naming one payment; the unknown id's sync is a 404, the rest 200.
    expect(report.webhookRequests).toMatchObject({ sent: 8, acknowledged: 8 });
    expect(report.syncRequests.byStatus).toEqual({ 200: 7, 404: 1 });
    const { payments, typesOf } = await stored(stack.sql, suffix);
    // The race fixture and the classic set share the classic example's payment: one row, one payment.paid.
    expect(payments.filter((payment) => payment.id === `tr_5B8cwPMGnU6qLbRvo7qEZo${suffix}`)).toHaveLength(1);
    expect(typesOf(`tr_5B8cwPMGnU6qLbRvo7qEZo${suffix}`)).toEqual(['payment.paid', 'payment.refunded', 'refund.refunded']);
    // Two changes (paid, then the refund), each written by exactly one of the racing triggers.
    const transitions = await stack.sql<{ version: number; source: string }[]>`
      select t.version, t.source from payment_transitions t join payments p on p.id = t.payment_id
      where p.provider_payment_id = ${`tr_5B8cwPMGnU6qLbRvo7qEZo${suffix}`} order by t.version`;
    expect(transitions.map((t) => t.version)).toEqual([1, 2]);
    expect(transitions.every((t) => t.source === 'webhook' || t.source === 'sync')).toBe(true);
  });

  it('outage: the providers go down mid-run, heal, and the retry worker settles every receipt', async () => {
    const report = await replay(stack, [
      '--scenario', 'outage', '--outage-ms', '2500', '--outage-at', '0.3',
      path.join(FIXTURES, 'mollie-classic.jsonl'), path.join(FIXTURES, 'gocardless-batches.jsonl'),
    ]);
    const suffix = report.idSuffix!;
    expect(report).toMatchObject({ ok: true, serverErrors: 0, duplicates: 0 });
    expect(report.outage!.downMs).toBeGreaterThanOrEqual(2500);
    expect(report.database).toMatchObject({ pendingReceipts: 0, failedReceipts: 0 });
    // The outage did bite: both providers refused requests, and receipts went through the retry worker.
    expect(stack.gocardless.state.requests.some((request) => request.status === 503)).toBe(true);
    expect(stack.mollie.state.requests.some((request) => request.status === 503)).toBe(true);
    const [retried] = await stack.sql<{ n: number }[]>`
      select count(*)::int as n from webhook_receipts where attempts > 0 and (event_id like ${`%${suffix}`} or resource_id like ${`%${suffix}`})`;
    expect(retried!.n).toBeGreaterThan(0);
    const { payments } = await stored(stack.sql, suffix);
    expect(Object.fromEntries(payments.map((payment) => [payment.id.slice(0, -suffix.length), payment.provider_status]))).toEqual({
      tr_5B8cwPMGnU6qLbRvo7qEZo: 'paid',
      tr_WDqYK6vllg: 'failed',
      tr_7UhSN1zuXS: 'expired',
      tr_Hc9xQ2mPzA: 'paid',
      PM01AB2CD3EF4G: 'paid_out',
      PM01AB2CD3EF4H: 'failed',
      PM01AB2CD3EF4J: 'cancelled',
    });
  });
});

describe('a broken invariant', () => {
  let fake: Server;
  let fakeUrl: string;
  const paid = (id: string, eventId: string) => ({
    id: eventId,
    type: 'payment.paid',
    timestamp: '2026-03-20T09:14:52.000Z',
    data: { provider: 'mollie', paymentId: id, status: 'paid', previousStatus: null, providerStatus: 'paid', previousProviderStatus: null, version: 1 },
  });

  beforeAll(async () => {
    // A "gateway" that acknowledges everything and announces one change twice.
    fake = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      req.resume();
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.pathname === '/healthz') return json(200, { status: 'ok' });
      if (req.method === 'POST' && url.pathname.startsWith('/webhooks/')) return json(200, { received: true });
      const payment = /^\/v1\/payments\/mollie\/([^/]+)$/.exec(url.pathname);
      if (payment) {
        return json(200, { provider: 'mollie', id: payment[1], status: 'paid', providerStatus: 'paid', amount: { value: '49.95', currency: 'EUR', minor: 4995 }, version: 1 });
      }
      if (url.pathname === '/v1/events') {
        const id = url.searchParams.get('paymentId') ?? 'tr_x';
        return json(200, url.searchParams.has('after') ? { data: [], nextCursor: 'c1' } : { data: [paid(id, 'evt_1'), paid(id, 'evt_2')], nextCursor: 'c1' });
      }
      return json(404, { error: { code: 'not_found' } });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => fake.close(() => resolve())));

  it('exits 1 and names the duplicate when the gateway announces one change twice', async () => {
    const run = await runCli('src/cli/replay.ts', ['--gateway', fakeUrl, '--admin-token', TEST_ADMIN_TOKEN, '--no-progress', '--settle-timeout', '5000', path.join(FIXTURES, 'mollie-race.jsonl')]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/duplicates\s+1/);
    expect(run.stdout).toMatch(/FAILED: 1 invariant violation/);
    expect(run.stdout).toMatch(/two payment\.paid events for version 1/);
  });

  it('exits 2 on bad usage: a race needs the admin token', async () => {
    const run = await runCli('src/cli/replay.ts', ['--gateway', fakeUrl, '--scenario', 'race', path.join(FIXTURES, 'mollie-race.jsonl')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--admin-token/);
  });
});

describe('export-receipts → replay', () => {
  it('exports the receipts of one gateway and replays them into an empty one with the same result', async () => {
    const file = path.join(workDir, 'receipts.jsonl');
    const exported = await runCli('src/cli/export-receipts.ts', ['--database-url', stack.database.url, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const receiptCount = (await stack.sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts`)[0]!.n;
    expect(lines).toHaveLength(receiptCount);
    const first = lines.find((line) => line.kind === 'classic')!;
    expect(Buffer.from(first.bodyBase64 as string, 'base64').toString()).toMatch(/^id=(tr|re)_/);
    expect(first).toMatchObject({ provider: 'mollie', account: 'default', signature: 'absent', headers: { 'content-type': 'application/x-www-form-urlencoded' } });

    second = await startStack();
    const report = await replay(second, [file]);
    expect(report.idSuffix).toBeNull();
    expect(report).toMatchObject({ ok: true, webhooks: expect.any(Number), serverErrors: 0, duplicates: 0 });

    // Same payments, same end states, same amounts; one receipt per exported receipt.
    const snapshot = (sql: postgres.Sql) => sql<{ provider: string; id: string; provider_status: string; amount: number; refunded: number }[]>`
      select provider, provider_payment_id as id, provider_status, amount_minor::int as amount, refunded_minor::int as refunded
      from payments order by provider, provider_payment_id`;
    const [before, after] = await Promise.all([snapshot(stack.sql), snapshot(second.sql)]);
    expect(after).toEqual(before);
    const replayedReceipts = (await second.sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts`)[0]!.n;
    expect(replayedReceipts).toBe(receiptCount);
  });
});
