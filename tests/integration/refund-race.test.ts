/**
 * Refund status changes raced across two gateway processes: for each of 40 paid Mollie
 * payments with two partial refunds, every step of the refunds (created, moved on, done)
 * is followed by Mollie's webhook at process A and a return-page sync at process B at the
 * same instant. Two real OS processes (src/node.ts), one Postgres, one Redis, the Mollie
 * sandbox. Each refund's status changes become exactly one `refund.*` event each, in
 * version order; the payment's refunded amount moved once and its event names both refunds.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forEachLimited } from '../../src/primitives/for-each-limited.js';
import { startMollieSandbox, SANDBOX_DEFAULT_API_KEY, type MollieSandbox, type SandboxRefundStatus } from '../../src/sandbox/mollie-api.js';
import { sendMollieClassicWebhook } from '../../src/sandbox/mollie-webhook-sender.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { auth, eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const PAYMENTS = 40;
const CONCURRENCY = 8;

let database: TestDatabase;
let sandbox: MollieSandbox;
let sql: postgres.Sql;
const gateways: GatewayProcess[] = [];

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
    MOLLIE_SWEEP_INTERVAL_MS: '0',
    LOG_LEVEL: 'warn',
  };
  gateways.push(...(await Promise.all([startGatewayProcess(env), startGatewayProcess(env)])));
  for (const gateway of gateways) {
    await eventually(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, { what: `${gateway.url}/readyz`, timeoutMs: 20_000 });
  }
}, 60_000);

afterAll(async () => {
  for (const gateway of gateways) {
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

afterAll(() => expectOutboxMatchesSchemas(database.url, ['payment.paid', 'payment.refunded', 'refund.queued', 'refund.pending', 'refund.processing', 'refund.refunded']));

/** Mollie's webhook at A and the return page's sync at B, at once, for every payment; then every receipt settled. */
async function raceAll(ids: string[], webhookGateway: GatewayProcess, syncGateway: GatewayProcess) {
  const statuses: string[] = [];
  await forEachLimited(ids, CONCURRENCY, async (id) => {
    const [webhook, sync] = await Promise.all([
      sendMollieClassicWebhook(`${webhookGateway.url}/webhooks/mollie`, id, { schedule: [0], timeoutMs: 15_000 }),
      fetch(`${syncGateway.url}/v1/payments/mollie/${id}/sync`, { method: 'POST', headers: auth, signal: AbortSignal.timeout(20_000) }).then((res) => res.status),
    ]);
    statuses.push(`webhook:${webhook.attempts[0]?.status ?? null}`, `sync:${sync}`);
  });
  await eventually(
    async () => {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where state = 'pending'`;
      return row!.n === 0;
    },
    { what: 'every receipt to be settled', timeoutMs: 30_000, intervalMs: 200 },
  );
  return statuses;
}

describe('refund status changes, webhook and sync racing across two gateway processes', () => {
  it(`${PAYMENTS} payments, two refunds each: every refund status change is exactly one refund event`, async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    const payments = Array.from({ length: PAYMENTS }, () => sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '50.00' } }).id);
    const statuses = await raceAll(payments, a, b);

    const refunds = payments.map((id) => ({
      first: sandbox.addRefund(id, { amount: { currency: 'EUR', value: '10.00' }, status: 'pending' }).id,
      second: sandbox.addRefund(id, { amount: { currency: 'EUR', value: '5.00' }, status: 'queued' }).id,
    }));
    statuses.push(...(await raceAll(payments, a, b)));

    const steps: Array<[SandboxRefundStatus, SandboxRefundStatus]> = [
      ['processing', 'pending'],
      ['refunded', 'refunded'],
    ];
    for (const [first, second] of steps) {
      for (const refund of refunds) {
        sandbox.setRefundStatus(refund.first, first);
        sandbox.setRefundStatus(refund.second, second);
      }
      // Alternate which process gets the webhook.
      statuses.push(...(await raceAll(payments, first === 'processing' ? b : a, first === 'processing' ? a : b)));
    }

    expect(new Set(statuses)).toEqual(new Set(['webhook:200', 'sync:200']));

    const refundEvents = await sql<{ refund_id: string; type: string; version: number; n: number }[]>`
      select payload->'data'->'refund'->>'id' as refund_id, type, (payload->'data'->'refund'->>'version')::int as version, count(*)::int as n
      from outbox where type like 'refund.%' group by 1, 2, 3 order by 1, 3`;
    const byRefund = new Map<string, string[]>();
    for (const row of refundEvents) {
      expect(row.n).toBe(1);
      byRefund.set(row.refund_id, [...(byRefund.get(row.refund_id) ?? []), `${row.type}:v${row.version}`]);
    }
    expect(byRefund.size).toBe(2 * PAYMENTS);
    for (const refund of refunds) {
      expect(byRefund.get(refund.first)).toEqual(['refund.pending:v1', 'refund.processing:v2', 'refund.refunded:v3']);
      expect(byRefund.get(refund.second)).toEqual(['refund.queued:v1', 'refund.pending:v2', 'refund.refunded:v3']);
    }

    const paymentEvents = await sql<{ paymentId: string; type: string; changed: string[] | null }[]>`
      select provider_payment_id as "paymentId", type, payload->'data'->'changedRefundIds' as changed
      from outbox where type like 'payment.%' order by id`;
    expect(paymentEvents).toHaveLength(2 * PAYMENTS);
    for (const [index, id] of payments.entries()) {
      const mine = paymentEvents.filter((event) => event.paymentId === id);
      expect(mine.map((event) => event.type)).toEqual(['payment.paid', 'payment.refunded']);
      expect([...mine[1]!.changed!].sort()).toEqual([refunds[index]!.first, refunds[index]!.second].sort());
    }

    const [rows] = await sql<{ n: number; refunded: number }[]>`
      select count(*)::int as n, count(*) filter (where status = 'refunded' and version = 3)::int as refunded from payment_adjustments`;
    expect(rows).toEqual({ n: 2 * PAYMENTS, refunded: 2 * PAYMENTS });
  }, 180_000);
});
