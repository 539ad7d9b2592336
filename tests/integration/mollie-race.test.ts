/**
 * The Invoice Ninja race, end to end: for each of 500 payments that has just turned paid,
 * Mollie's classic webhook hits gateway process A while the customer's return page asks
 * gateway process B to sync, at the same instant. Two real OS processes (src/node.ts),
 * one Postgres, one Redis, the Mollie sandbox on a free port. Exactly one row and one
 * `payment.paid` event per payment, and no 5xx.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox, SANDBOX_DEFAULT_API_KEY, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { sendMollieClassicWebhook } from '../../src/sandbox/mollie-webhook-sender.js';
import { forEachLimited } from '../../src/primitives/for-each-limited.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const PAYMENTS = 500;
/** Pairs in flight at once: enough to overlap everything, few enough for a 2-core box. */
const CONCURRENCY = 12;

let database: TestDatabase;
let sandbox: MollieSandbox;
let sql: postgres.Sql;
const gateways: GatewayProcess[] = [];
let bootMs = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = await startMollieSandbox();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    MOLLIE_API_KEY: SANDBOX_DEFAULT_API_KEY,
    MOLLIE_API_URL: sandbox.url,
    // The race is webhook against return page; a sweep joining in would only blur it.
    MOLLIE_SWEEP_INTERVAL_MS: '0',
    LOG_LEVEL: 'warn',
  };
  const started = performance.now();
  gateways.push(...(await Promise.all([startGatewayProcess(env), startGatewayProcess(env)])));
  for (const gateway of gateways) {
    await eventually(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, { what: `${gateway.url}/readyz`, timeoutMs: 20_000 });
  }
  bootMs = performance.now() - started;
}, 60_000);

afterAll(async () => {
  for (const gateway of gateways) {
    // A gateway that died mid-test explains the failure better than the client's error.
    if (gateway.child.exitCode !== null || gateway.child.signalCode !== null) {
      process.stderr.write(`gateway ${gateway.url} exited (${gateway.child.exitCode ?? gateway.child.signalCode}):\n${gateway.output().slice(-4000)}\n`);
    }
  }
  await Promise.all(
    gateways.map(async (gateway) => {
      const stopped = await Promise.race([gateway.stop(), new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000))]);
      if (stopped === 'timeout') await gateway.kill();
    }),
  );
  await sql?.end();
  await sandbox?.close();
  await database?.drop();
}, 30_000);

// Registered after the cleanup above, so it runs first (hooks run as a stack): every event
// this file's scenarios produced must match its published JSON Schema.
afterAll(() => expectOutboxMatchesSchemas(database.url, ['payment.paid']));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
}

/** gateway_syncs_total by source and outcome, summed over both processes. */
async function syncCounts(): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const gateway of gateways) {
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    for (const match of text.matchAll(/^gateway_syncs_total\{provider="mollie",source="(\w+)",outcome="(\w+)"\} (\d+)/gm)) {
      const key = `${match[1]}:${match[2]}`;
      totals[key] = (totals[key] ?? 0) + Number(match[3]);
    }
  }
  return totals;
}

describe('webhook and return-page sync at the same instant, across two gateway processes', () => {
  it(`${PAYMENTS} payments: one row and one payment.paid each, no 5xx`, async () => {
    const [webhookGateway, syncGateway] = gateways as [GatewayProcess, GatewayProcess];
    const ids = Array.from({ length: PAYMENTS }, () => sandbox.createPayment({ status: 'open', method: 'ideal' }).id);
    const webhookStatuses: (number | null)[] = [];
    const syncStatuses: number[] = [];
    const syncReported: string[] = [];
    const webhookMs: number[] = [];
    const syncMs: number[] = [];

    const started = performance.now();
    await forEachLimited(ids, CONCURRENCY, async (id) => {
      // The customer has just paid: Mollie calls the webhook as the browser lands on the return page.
      sandbox.setStatus(id, 'paid');
      const t0 = performance.now();
      const [webhook, sync] = await Promise.all([
        sendMollieClassicWebhook(`${webhookGateway.url}/webhooks/mollie`, id, { schedule: [0], timeoutMs: 15_000 }).then((result) => {
          webhookMs.push(performance.now() - t0);
          return result;
        }),
        fetch(`${syncGateway.url}/v1/payments/mollie/${id}/sync`, { method: 'POST', headers: auth, signal: AbortSignal.timeout(20_000) }).then(async (res) => {
          syncMs.push(performance.now() - t0);
          syncReported.push(((await res.json()) as { status?: string }).status ?? `error ${res.status}`);
          return res.status;
        }),
      ]);
      webhookStatuses.push(webhook.attempts[0]?.status ?? null);
      syncStatuses.push(sync);
    });
    const firedMs = performance.now() - started;

    // Anything a busy lock deferred is finished by process A's receipt worker.
    await eventually(
      async () => {
        const [row] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where state = 'pending'`;
        return row!.n === 0;
      },
      { what: 'every receipt to be settled', timeoutMs: 30_000, intervalMs: 200 },
    );
    const settledMs = performance.now() - started;

    const tally = (values: (number | string | null)[]) => values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [String(v)]: (acc[String(v)] ?? 0) + 1 }), {});
    const fetches = [...sandbox.state.requestCounts.values()].reduce((a, b) => a + b, 0);
    const counts = await syncCounts();
    const summary = {
      payments: PAYMENTS,
      concurrency: CONCURRENCY,
      bootTwoProcessesMs: Math.round(bootMs),
      firedMs: Math.round(firedMs),
      settledMs: Math.round(settledMs),
      pairsPerSecond: Math.round((PAYMENTS / firedMs) * 1000),
      webhookMs: { p50: percentile(webhookMs, 50), p95: percentile(webhookMs, 95), max: percentile(webhookMs, 100) },
      syncMs: { p50: percentile(syncMs, 50), p95: percentile(syncMs, 95), max: percentile(syncMs, 100) },
      webhookStatuses: tally(webhookStatuses),
      syncStatuses: tally(syncStatuses),
      mollieFetches: fetches,
      syncs: counts,
    };
    process.stdout.write(`\nmollie race: ${JSON.stringify(summary, null, 2)}\n`);

    // No 5xx, no refusal: Mollie got exactly 200 every time, the return page got its payment.
    expect(tally(webhookStatuses)).toEqual({ 200: PAYMENTS });
    expect(tally(syncStatuses)).toEqual({ 200: PAYMENTS });
    expect(tally(syncReported)).toEqual({ paid: PAYMENTS });

    const [rows] = await sql<{ n: number; paid: number }[]>`
      select count(*)::int as n, count(*) filter (where status = 'paid')::int as paid from payments where provider = 'mollie'`;
    expect(rows).toEqual({ n: PAYMENTS, paid: PAYMENTS });

    const events = await sql<{ provider_payment_id: string; type: string; n: number }[]>`
      select provider_payment_id, type, count(*)::int as n from outbox group by 1, 2`;
    expect(events).toHaveLength(PAYMENTS);
    expect(events.every((e) => e.type === 'payment.paid' && e.n === 1)).toBe(true);
    expect(new Set(events.map((e) => e.provider_payment_id))).toEqual(new Set(ids));

    const receipts = await sql<{ state: string; n: number }[]>`select state, count(*)::int as n from webhook_receipts group by 1`;
    expect(receipts).toEqual([{ state: 'processed', n: PAYMENTS }]);
    // Exactly one of the two triggers wrote each payment; the other found nothing new.
    expect((counts['webhook:changed'] ?? 0) + (counts['sync:changed'] ?? 0)).toBe(PAYMENTS);
    // Every trigger fetched: the body is never trusted, and the lock only serialises.
    expect(fetches).toBeGreaterThanOrEqual(2 * PAYMENTS);
  }, 120_000);
});
