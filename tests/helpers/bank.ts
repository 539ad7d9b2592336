import postgres from 'postgres';
import { runBankScheduler } from '../../src/bank/scheduler.js';
import { createApp } from '../../src/http/app.js';
import type { Deps } from '../../src/deps.js';
import { SANDBOX_BANK_SECRET_ID, SANDBOX_BANK_SECRET_KEY, SANDBOX_INSTITUTION_ID, startBankSandbox, type BankSandbox } from '../../src/sandbox/gocardless-bank/server.js';
import type { BankSandboxOptions } from '../../src/sandbox/gocardless-bank/state.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { auth, buildTestDeps, TEST_ADMIN_TOKEN } from './deps.js';
import { startTsWorker } from './processes.js';
import type { BankWorkerConfig } from './bank-worker.js';

export { SANDBOX_INSTITUTION_ID };

type App = ReturnType<typeof createApp>;

export interface BankHarness {
  database: TestDatabase;
  sandbox: BankSandbox;
  deps: Deps;
  app: App;
  sql: postgres.Sql;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A database of its own, a bank sandbox, and the gateway's deps and app wired to both (no background loops). */
export async function startBankHarness(options: { sandbox?: BankSandboxOptions; env?: Record<string, string> } = {}): Promise<BankHarness> {
  const database = await createTestDatabase();
  const sandbox = await startBankSandbox(options.sandbox);
  const env = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    GOCARDLESS_BANK_SECRET_ID: SANDBOX_BANK_SECRET_ID,
    GOCARDLESS_BANK_SECRET_KEY: SANDBOX_BANK_SECRET_KEY,
    GOCARDLESS_BANK_API_URL: sandbox.url,
    ...options.env,
  };
  const deps = buildTestDeps(env);
  const sql = postgres(database.url, { max: 2, onnotice: () => {} });
  return {
    database,
    sandbox,
    deps,
    app: createApp(deps),
    sql,
    env,
    async close() {
      await deps.close();
      await sql.end();
      await sandbox.close();
      await database.drop();
    },
  };
}

export async function api(app: App, method: string, path: string, body?: unknown) {
  const response = await app.request(path, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

/** Creates a connection, follows its consent link as the end user would, and lets the gateway see it linked. */
export async function createLinkedConnection(h: BankHarness, reference: string, extra: Record<string, unknown> = {}) {
  const created = await api(h.app, 'POST', '/v1/bank-connections', { institutionId: SANDBOX_INSTITUTION_ID, reference, redirectUrl: 'https://example.test/return', ...extra });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  const consent = await fetch(created.body.link, { redirect: 'manual' });
  if (consent.status !== 302) throw new Error(`consent link answered ${consent.status}`);
  const synced = await api(h.app, 'POST', `/v1/bank-connections/${created.body.id}/sync`);
  return { id: created.body.id as string, redirect: consent.headers.get('location'), synced };
}

export function runBankWorker(config: BankWorkerConfig) {
  return startTsWorker('tests/helpers/bank-worker.ts', { BANK_WORKER_CONFIG: JSON.stringify(config) });
}

export async function outboxEvents(sql: postgres.Sql, prefix = 'bank.') {
  return sql<{ type: string; dedupe_key: string; payload: { data: Record<string, unknown> } }[]>`
    select type, dedupe_key, payload from outbox where type like ${`${prefix}%`} order by id`;
}

/** Runs the bank scheduler loop in this process; the returned stop() ends it and waits for the pass in flight. */
export function startScheduler(h: BankHarness): () => Promise<void> {
  const controller = new AbortController();
  const loop = runBankScheduler(h.deps, { signal: controller.signal });
  return async () => {
    controller.abort();
    await loop;
  };
}
