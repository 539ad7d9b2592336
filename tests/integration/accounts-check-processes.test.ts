/**
 * The account check across a fleet: two real gateway processes run the check job
 * (ACCOUNT_CHECK_INTERVAL_MS=500) against one database and the Mollie sandbox over HTTP.
 * Idle accounts (no webhook, no payment) are still checked, about once per account per
 * interval fleet-wide (the sandbox counts the calls), not once per process; a key revoked
 * at the sandbox breaks its account alone with exactly one gateway.account.broken; an
 * outage (503) breaks nothing; a PATCH with a working key mends it with one
 * gateway.account.recovered.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import type { SandboxCredential } from '../../src/sandbox/mollie/accounts.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { eventContractProblems } from '../helpers/event-contract.js';
import { startGatewayProcesses, type GatewayProcess } from '../helpers/gateway-process.js';

const INTERVAL_MS = 500;
const NAMES = ['idle-a', 'idle-b', 'idle-c'] as const;

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
const gateways: GatewayProcess[] = [];
const keys = new Map<string, SandboxCredential>();

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox({ port: 0 });
  const env = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'),
    ACCOUNT_CHECK_INTERVAL_MS: String(INTERVAL_MS),
    MOLLIE_API_URL: mollie.url,
    REDIS_URL: '',
  };
  gateways.push(...(await startGatewayProcesses(env, 2, { timeoutMs: 90_000 })));
  for (const name of NAMES) {
    const key = mollie.accounts.addApiKey();
    keys.set(name, key);
    const res = await fetch(`${gateways[0]!.url}/v1/accounts`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ provider: 'mollie', name, credentials: { apiKey: key.token } }),
    });
    expect(res.status).toBe(201);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.stop()));
  await mollie?.close();
  await sql?.end();
  await database?.drop();
});

interface AccountRow {
  name: string;
  status: string;
  broken_since: Date | null;
  last_checked_at: Date | null;
  last_error: string | null;
}

async function account(name: string): Promise<AccountRow> {
  const [row] = await sql<AccountRow[]>`select name, status, broken_since, last_checked_at, last_error from accounts where name = ${name}`;
  return row!;
}

const events = (name: string) =>
  sql<{ type: string; payload: { type: string; data: Record<string, string> } }[]>`
    select type, payload from outbox where type like 'gateway.account.%' and payload->'data'->>'account' = ${name} order by id`;

/** Calls of the check's endpoint at the sandbox since `from` (by time: the sandbox keeps its last 1000 requests). */
const profileCalls = (from: Date, status?: number) =>
  mollie.state.requests.filter((request) => request.path === '/v2/profiles/me' && request.at >= from && (status === undefined || request.status === status)).length;

/** Waits until the account has been checked again (with an answer) after `after`, `times` times over. */
async function checkedAgain(name: string, after: Date, times = 1): Promise<void> {
  let since = after;
  for (let i = 0; i < times; i++) {
    const row = await eventually(async () => {
      const current = await account(name);
      return current.last_checked_at && current.last_checked_at > since ? current : null;
    }, { timeoutMs: 10_000, what: `${name} checked again` });
    since = row.last_checked_at!;
  }
}

async function checksCounted(gateway: GatewayProcess): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return [...text.matchAll(/^gateway_account_checks_total\{[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('the account check across two processes', () => {
  it('checks idle accounts about once per account per interval fleet-wide, not once per process', async () => {
    // Every account scheduled, and a first round done, so the window measures the steady state.
    await eventually(async () => (await sql`select 1 from accounts where next_check_at is null`).length === 0, { what: 'accounts scheduled' });
    const started = new Date();
    for (const name of NAMES) await checkedAgain(name, started);

    const windowMs = 5000;
    const from = new Date();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const calls = profileCalls(from);
    const elapsed = Date.now() - from.getTime();
    const perInterval = elapsed / INTERVAL_MS;
    // One check per account per interval: at most one more per account at the window's edges
    // (plus a little for a late pass that re-spreads). Two processes each checking would make
    // about twice as many.
    const seen = `${calls} checks of ${NAMES.length} accounts in ${elapsed} ms (interval ${INTERVAL_MS} ms)`;
    expect(calls, seen).toBeLessThanOrEqual(NAMES.length * (perInterval + 2));
    expect(calls, seen).toBeGreaterThanOrEqual(NAMES.length * perInterval * 0.5);
    // Both processes take part: the work is shared, not done by one while the other idles.
    for (const gateway of gateways) expect(await checksCounted(gateway)).toBeGreaterThan(0);
  });

  it('a key revoked at the sandbox breaks that idle account alone, within about an interval, with exactly one gateway.account.broken', async () => {
    const revokedAt = new Date();
    mollie.accounts.revoke(keys.get('idle-a')!.token);
    const broken = await eventually(async () => {
      const row = await account('idle-a');
      return row.status === 'broken' ? row : null;
    }, { timeoutMs: 10_000, what: 'idle-a broken' });
    // One interval, plus the loop's tick and a loaded machine's slack.
    expect(broken.broken_since!.getTime() - revokedAt.getTime()).toBeLessThan(INTERVAL_MS + 2000);
    expect(broken.last_error).toMatch(/^unauthorized: Mollie rejected the API key \(401\)/);

    // Checked again and again, by both processes: still the one episode, one event.
    await checkedAgain('idle-a', broken.broken_since!, 3);
    const brokenEvents = await events('idle-a');
    expect(brokenEvents.map((event) => event.type)).toEqual(['gateway.account.broken']);
    expect(brokenEvents[0]!.payload.data).toMatchObject({ provider: 'mollie', account: 'idle-a', reason: 'unauthorized', since: broken.broken_since!.toISOString() });
    expect(eventContractProblems(brokenEvents[0]!.payload)).toEqual([]);
    expect(JSON.stringify(brokenEvents[0]!.payload)).not.toContain(keys.get('idle-a')!.token);
    for (const name of ['idle-b', 'idle-c']) {
      expect(await account(name)).toMatchObject({ status: 'active', broken_since: null, last_error: null });
      expect(await events(name)).toEqual([]);
    }
    // Visible on every process's /readyz, which stays ready.
    for (const gateway of gateways) {
      const res = await fetch(`${gateway.url}/readyz`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { accounts: { broken: { count: number; accounts: Array<{ name: string }> } } };
      expect(body.accounts.broken.count).toBe(1);
      expect(body.accounts.broken.accounts.map((a) => a.name)).toEqual(['idle-a']);
    }
  });

  it('an outage (the sandbox answering 503) notes the error and breaks nothing', async () => {
    const from = new Date();
    mollie.setDown('error');
    try {
      // Several checks of every account during the outage.
      await eventually(async () => profileCalls(from, 503) >= NAMES.length * 3, { timeoutMs: 10_000, what: 'checks during the outage' });
      for (const name of ['idle-b', 'idle-c']) {
        const row = await account(name);
        expect(row.status).toBe('active');
        expect(row.last_error).toMatch(/^unavailable: Mollie answered 503/);
      }
      // The broken one keeps its reason.
      expect((await account('idle-a')).last_error).toMatch(/^unauthorized:/);
    } finally {
      mollie.setDown(null);
    }
    for (const name of ['idle-b', 'idle-c']) {
      await eventually(async () => (await account(name)).last_error === null, { what: `${name} checked after the outage` });
      expect(await events(name)).toEqual([]);
    }
    expect((await events('idle-a')).map((event) => event.type)).toEqual(['gateway.account.broken']);
  });

  it('a PATCH with a working key of the same profile mends it: exactly one gateway.account.recovered, and the checks keep it active', async () => {
    const replacement = mollie.accounts.addApiKey({ profileId: keys.get('idle-a')!.profileId });
    const before = await account('idle-a');
    const res = await fetch(`${gateways[1]!.url}/v1/accounts/mollie/idle-a`, {
      method: 'PATCH',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ credentials: { apiKey: replacement.token } }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'active', brokenSince: null, lastError: null });
    const patchedAt = (await account('idle-a')).last_checked_at!;
    await checkedAgain('idle-a', patchedAt, 3);
    expect(await account('idle-a')).toMatchObject({ status: 'active', broken_since: null, last_error: null });
    const all = await events('idle-a');
    expect(all.map((event) => event.type)).toEqual(['gateway.account.broken', 'gateway.account.recovered']);
    expect(all[1]!.payload.data).toMatchObject({ provider: 'mollie', account: 'idle-a', brokenSince: before.broken_since!.toISOString() });
    expect(eventContractProblems(all[1]!.payload)).toEqual([]);

    // Loud in the log (once, by whichever process flipped it), and never a key there.
    const output = gateways.map((gateway) => gateway.output()).join('\n');
    expect(output.match(/account BROKEN: mollie\/idle-a/g)).toHaveLength(1);
    for (const key of [...keys.values(), replacement]) expect(output).not.toContain(key.token);
  });
});
