/**
 * The bank-feed benchmark (`npm run bench -- bank`, or `BENCH_SCENARIOS=bank npm run bench`,
 * or `npx tsx bench/bank.ts`): 200 linked sandbox connections with 2 accounts of 500
 * transactions each (a tenth pending), imported by the gateway's own scheduler.
 *
 * Claims checked:
 *   - the first full import (linking all 200 connections, discovering 400 accounts,
 *     importing 200,000 transactions and their 200,000 events) completes in under 60 s;
 *   - a second sync of every account with the same data writes no transaction row and
 *     adds no event;
 *   - the gateway's peak RSS stays under 250 MB (built and flagged as `npm start` runs it).
 *
 * Everything runs on 127.0.0.1: a fresh database (created and dropped through
 * BENCH_DATABASE_ADMIN_URL), the gateway as its own process, the bank sandbox in another.
 * Knobs: BENCH_BANK_CONNECTIONS (200), BENCH_BANK_TRANSACTIONS (500 per account),
 * BENCH_BANK_CONCURRENCY (the gateway's BANK_SYNC_CONCURRENCY, 8).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { runMigrations } from '../src/db/client.js';
import { SANDBOX_BANK_SECRET_ID, SANDBOX_BANK_SECRET_KEY, SANDBOX_INSTITUTION_ID } from '../src/sandbox/gocardless-bank/state.js';
import { buildGateway, ROOT, startGateway, type GatewayProcess } from './gateway.js';
import { loadAverage, sampleProcess } from './proc-stats.js';

const env = process.env;
const CONNECTIONS = Number(env.BENCH_BANK_CONNECTIONS ?? 200);
const PER_ACCOUNT = Number(env.BENCH_BANK_TRANSACTIONS ?? 500);
const CONCURRENCY = Number(env.BENCH_BANK_CONCURRENCY ?? 8);
const ADMIN_URL = env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const HEAP_CAP_MB = 192; // as `npm start`
const IMPORT_LIMIT_S = 60;
const RSS_LIMIT_MB = 250;
const say = (line: string) => process.stdout.write(`${line}\n`);
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function startSandbox(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/bank-sandbox-process.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const url = /URL (\S+)\n/.exec(out)?.[1];
      if (url) resolve({ url, child });
    });
    child.once('exit', (code) => reject(new Error(`bank sandbox exited ${code}`)));
  });
}

export interface BankBenchResult {
  connections: number;
  accounts: number;
  transactions: number;
  pending: number;
  events: number;
  firstImportSeconds: number;
  firstImportGatewayCpuSeconds: number;
  accountsLinkedDuringSetup: number;
  secondSync: { seconds: number; gatewayCpuSeconds: number; transactionRowsWritten: number; eventsAdded: number; accountsSynced: number };
  gatewayPeakRssMb: number;
  load: { before: number[]; after: number[]; cores: number };
  met: { importUnder60s: boolean; secondSyncWritesNothing: boolean; rssUnder250Mb: boolean };
}

export async function runBankBench(): Promise<BankBenchResult> {
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const dbName = `bench_bank_${runId}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${dbName}"`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const sql = postgres(dbUrl.toString(), { max: 2, onnotice: () => {} });
  let sandbox: { url: string; child: ChildProcess } | undefined;
  let gateway: GatewayProcess | undefined;
  const loadBefore = await loadAverage();
  try {
    await runMigrations(dbUrl.toString(), path.join(ROOT, 'drizzle'));
    say(`bank bench: ${CONNECTIONS} connections x 2 accounts x ${PER_ACCOUNT} transactions; load before ${loadBefore.join(' ')} on ${os.cpus().length} cores`);
    sandbox = await startSandbox();
    await buildGateway();
    const token = `bench_admin_${randomBytes(12).toString('hex')}`;
    gateway = await startGateway({
      runtime: 'node',
      heapCapMb: HEAP_CAP_MB,
      logFile: path.join(ROOT, `bench/logs/bank-${runId}.log`),
      env: {
        DATABASE_URL: dbUrl.toString(),
        REDIS_URL: '',
        ADMIN_TOKEN: token,
        LOG_LEVEL: 'warn',
        GOCARDLESS_BANK_SECRET_ID: SANDBOX_BANK_SECRET_ID,
        GOCARDLESS_BANK_SECRET_KEY: SANDBOX_BANK_SECRET_KEY,
        GOCARDLESS_BANK_API_URL: sandbox.url,
        BANK_DAILY_CALLS: '1000',
        BANK_SYNC_CONCURRENCY: String(CONCURRENCY),
        BANK_SCHEDULER_IDLE_MS: '100',
        // Long enough that nothing comes due again by itself during the run.
        BANK_SYNC_INTERVAL_MS: String(6 * 3600_000),
      },
    });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    // Setup (not timed): connections created through the API, consent given at each link,
    // and every account filled at the bank.
    const links: string[] = [];
    await inParallel(Array.from({ length: CONNECTIONS }, (_, i) => i), 8, async (i) => {
      const response = await fetch(`${gateway!.url}/v1/bank-connections`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ institutionId: SANDBOX_INSTITUTION_ID, reference: `bench-${i}`, redirectUrl: 'https://example.test/return' }),
      });
      if (response.status !== 201) throw new Error(`create ${i}: ${response.status} ${await response.text()}`);
      links.push(((await response.json()) as { link: string }).link);
    });
    // The scheduler would link them as they come; hold it off until the bank holds the data.
    await sql`update bank_connections set next_check_at = now() + interval '1 hour'`;
    await inParallel(links, 8, async (link) => {
      const response = await fetch(link, { redirect: 'manual' });
      if (response.status !== 302) throw new Error(`consent: ${response.status}`);
    });
    const requisitions = (await (await fetch(`${sandbox.url}/__sandbox/requisitions`)).json()) as { accounts: string[] }[];
    const accountIds = requisitions.flatMap((r) => r.accounts);
    say(`  set up ${links.length} connections and ${accountIds.length} accounts at the bank`);

    // First import: the scheduler links every connection, discovers the accounts and imports them.
    const expected = accountIds.length * PER_ACCOUNT;
    const [early] = await sql<{ synced: number }[]>`select count(*)::int as synced from bank_accounts where last_synced_at is not null`;
    const cpuBefore = await sampleProcess(gateway.pid);
    const firstStart = performance.now();
    await sql`update bank_connections set next_check_at = now()`;
    await waitFor('the first import', 300_000, async () => {
      const [row] = await sql<{ synced: number }[]>`select count(*)::int as synced from bank_accounts where last_synced_at is not null`;
      return row!.synced === accountIds.length;
    });
    const firstImportSeconds = (performance.now() - firstStart) / 1000;
    const cpuFirst = (await sampleProcess(gateway.pid)).cpuSeconds - cpuBefore.cpuSeconds;
    const [counts] = await sql<{ transactions: number; pending: number; events: number }[]>`
      select (select count(*)::int from bank_transactions) as transactions,
        (select count(*)::int from bank_transactions where status = 'pending') as pending,
        (select count(*)::int from outbox where type like 'bank.%') as events`;
    say(`  first import: ${round(firstImportSeconds)} s (gateway CPU ${round(cpuFirst)} s) for ${counts!.transactions} transactions (${counts!.pending} pending), ${counts!.events} events; ${early!.synced} accounts were linked during setup`);
    if (counts!.transactions !== expected) throw new Error(`expected ${expected} transactions, found ${counts!.transactions}`);

    // Second sync of the same data: every account due again, nothing may be written.
    const [{ xid }] = (await sql<{ xid: string }[]>`select txid_current()::text as xid`) as unknown as [{ xid: string }];
    const secondStart = performance.now();
    const [marker] = await sql<{ at: Date }[]>`update bank_accounts set next_sync_at = now() returning now() as at`;
    await waitFor('the second sync', 300_000, async () => {
      const [row] = await sql<{ synced: number }[]>`select count(*)::int as synced from bank_accounts where last_synced_at >= ${marker!.at}`;
      return row!.synced === accountIds.length;
    });
    const secondSeconds = (performance.now() - secondStart) / 1000;
    const cpuSecond = (await sampleProcess(gateway.pid)).cpuSeconds - cpuBefore.cpuSeconds - cpuFirst;
    const [after] = await sql<{ transactions: number; written: number; events: number }[]>`
      select (select count(*)::int from bank_transactions) as transactions,
        (select count(*)::int from bank_transactions where xmin::text::bigint >= (${xid}::bigint % 4294967296)) as written,
        (select count(*)::int from outbox where type like 'bank.%') as events`;
    const secondSync = {
      seconds: round(secondSeconds),
      gatewayCpuSeconds: round(cpuSecond),
      transactionRowsWritten: after!.written + Math.abs(after!.transactions - counts!.transactions),
      eventsAdded: after!.events - counts!.events,
      accountsSynced: accountIds.length,
    };
    say(`  second sync: ${secondSync.seconds} s, ${secondSync.transactionRowsWritten} transaction rows written, ${secondSync.eventsAdded} events added`);

    const peak = await sampleProcess(gateway.pid);
    const gatewayPeakRssMb = round(peak.peakRssBytes / 1024 / 1024);
    const loadAfter = await loadAverage();
    say(`  gateway peak RSS: ${gatewayPeakRssMb} MB; load after ${loadAfter.join(' ')}`);
    const result: BankBenchResult = {
      connections: links.length,
      accounts: accountIds.length,
      transactions: counts!.transactions,
      pending: counts!.pending,
      events: counts!.events,
      firstImportSeconds: round(firstImportSeconds),
      firstImportGatewayCpuSeconds: round(cpuFirst),
      accountsLinkedDuringSetup: early!.synced,
      secondSync,
      gatewayPeakRssMb,
      load: { before: loadBefore, after: loadAfter, cores: os.cpus().length },
      met: {
        importUnder60s: firstImportSeconds < IMPORT_LIMIT_S,
        secondSyncWritesNothing: secondSync.transactionRowsWritten === 0 && secondSync.eventsAdded === 0,
        rssUnder250Mb: gatewayPeakRssMb < RSS_LIMIT_MB,
      },
    };
    for (const [claim, met] of Object.entries(result.met)) say(`  ${met ? 'MET    ' : 'NOT MET'} ${claim}`);
    await writeFile(path.join(ROOT, 'bench/bank-results.json'), `${JSON.stringify({ at: new Date().toISOString(), ...result }, null, 2)}\n`);
    return result;
  } finally {
    await gateway?.stop().catch(() => {});
    sandbox?.child.kill('SIGTERM');
    await sql.end();
    await admin.unsafe(`drop database if exists "${dbName}" with (force)`).catch(() => {});
    await admin.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runBankBench().then(
    (result) => process.exit(Object.values(result.met).every(Boolean) ? 0 : 1),
    (error: unknown) => {
      say(`bank bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
}
