/**
 * `npm run replay -- --scenario bank` as a real process against a real gateway process
 * and the bank sandbox: it must pass when the gateway keeps the bank feed's guarantees,
 * and fail, naming the invariant, when it is told a pending grace the gateway does not
 * keep. The rows it vouches for are checked here again on the gateway's database.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BankReplayReport } from '../../src/cli/replay/bank.js';
import { SANDBOX_BANK_SECRET_ID, SANDBOX_BANK_SECRET_KEY, startBankSandbox, type BankSandbox } from '../../src/sandbox/gocardless-bank/server.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const GRACE_MS = 10_000;

let database: TestDatabase;
let sql: postgres.Sql;
let bank: BankSandbox;
let gateway: GatewayProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  bank = await startBankSandbox({ dailyLimit: 10_000 });
  gateway = await startGatewayProcess(
    {
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      GOCARDLESS_BANK_SECRET_ID: SANDBOX_BANK_SECRET_ID,
      GOCARDLESS_BANK_SECRET_KEY: SANDBOX_BANK_SECRET_KEY,
      GOCARDLESS_BANK_API_URL: bank.url,
      BANK_PENDING_GRACE_MS: String(GRACE_MS),
      BANK_DAILY_CALLS: '100',
      LOG_LEVEL: 'warn',
    },
    { timeoutMs: 60_000 },
  );
  await eventually(async () => (await fetch(`${gateway.url}/readyz`)).ok, { timeoutMs: 20_000, what: `${gateway.url}/readyz` });
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
}, 90_000);

afterAll(async () => {
  await gateway?.stop();
  await sql?.end();
  await bank?.close();
  await database?.drop();
});

function replay(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/replay.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

const common = () => ['--scenario', 'bank', '--gateway', gateway.url, '--admin-token', TEST_ADMIN_TOKEN, '--bank-sandbox', bank.url, '--bank-connections', '2', '--bank-rounds', '2'];

describe('replay --scenario bank', () => {
  it('passes against a gateway that keeps the bank feed exactly once, and its counts match the database', async () => {
    const run = await replay([...common(), '--bank-grace-ms', String(GRACE_MS), '--json']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const report = JSON.parse(run.stdout) as BankReplayReport;
    expect(report.violations).toEqual([]);
    expect(report.connections).toBe(2);
    expect(report.accounts).toBe(4);
    expect(report.bank.vanished).toBeGreaterThan(0);
    expect(report.requests.creations).toEqual({ '200': 2, '201': 2 });

    // The same facts, straight from the database.
    const [rows] = await sql<{ booked: number; distinct_booked: number; pending: number; removed: number; settled: number }[]>`
      select count(*) filter (where status = 'booked')::int as booked,
             count(distinct internal_transaction_id) filter (where status = 'booked')::int as distinct_booked,
             count(*) filter (where status = 'pending')::int as pending,
             count(*) filter (where status = 'removed')::int as removed,
             count(*) filter (where pending_of is not null)::int as settled
      from bank_transactions`;
    expect(rows).toMatchObject({ booked: report.bank.booked, distinct_booked: report.bank.booked, pending: report.bank.pending, removed: report.bank.vanished });
    expect(rows!.settled).toBeGreaterThan(0);
    const [events] = await sql<{ n: number; distinct_subjects: number }[]>`
      select count(*)::int as n, count(distinct (type, payload->'data'->>'id'))::int as distinct_subjects
      from outbox where type in ('bank.transaction.booked', 'bank.transaction.removed')`;
    expect(events!.n).toBe(events!.distinct_subjects);
    expect(events!.n).toBe(report.bank.booked + report.bank.vanished);
  }, 150_000);

  it('fails, naming the removed rows, when the gateway keeps pending rows longer than the run waits', async () => {
    const run = await replay([...common(), '--bank-grace-ms', '0']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stdout).toMatch(/FAILED/);
    expect(run.stdout).toMatch(/\d+ removed rows at the gateway, [1-9]\d* pending transactions vanished at the bank/);
  }, 150_000);

  it('exits 2 on bad usage: the bank scenario needs the bank sandbox and runs without files', async () => {
    const missing = await replay(['--scenario', 'bank', '--admin-token', 'x']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--bank-sandbox/);
    const withFiles = await replay(['--scenario', 'bank', '--bank-sandbox', bank.url, '--admin-token', 'x', 'fixtures/replay/mollie-classic.jsonl']);
    expect(withFiles.code).toBe(2);
    expect(withFiles.stderr).toMatch(/runs alone/);
  }, 60_000);
});
