/**
 * Two real gateway OS processes (src/node.ts) share Postgres and Redis. Every GoCardless
 * batch is delivered to both at the same instant, over and over, shuffled, while the
 * sandbox moves 40 payments pending_submission → confirmed → paid_out. Whatever the
 * interleaving: one row per payment, one receipt per event, one transition into paid,
 * no regression, one payment.paid each.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { buildGoCardlessWebhook, seededRandom } from '../../src/sandbox/gocardless-webhook-sender.js';
import { expectOutboxMatchesSchemas } from '../helpers/event-contract.js';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const PAYMENTS = 40;
/** Provider statuses in the order this test moves them; a transition must never go down. */
const RANK: Record<string, number> = { pending_submission: 0, confirmed: 1, paid_out: 2 };

let database: TestDatabase;
let sql: postgres.Sql;
let sandbox: GoCardlessSandbox;
let gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  sandbox = await startGoCardlessSandbox();
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    GOCARDLESS_ACCESS_TOKEN: sandbox.accessToken,
    GOCARDLESS_API_URL: sandbox.url,
    GOCARDLESS_WEBHOOK_SECRETS: sandbox.webhookSecret,
    LOG_LEVEL: 'warn',
  };
  gateways = await Promise.all([startGatewayProcess(env, { timeoutMs: 60_000 }), startGatewayProcess(env, { timeoutMs: 60_000 })]);
  for (const gateway of gateways) {
    await eventually(async () => (await fetch(`${gateway.url}/readyz`)).ok, { timeoutMs: 20_000, what: `${gateway.url}/readyz` });
  }
});

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.stop()));
  await sandbox?.close();
  await sql?.end();
  await database?.drop();
});

// Registered after the cleanup above, so it runs first (hooks run as a stack): every event
// this file's scenarios produced must match its published JSON Schema.
afterAll(() => expectOutboxMatchesSchemas(database.url));

async function metricSum(gateway: GatewayProcess, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

describe('the same GoCardless batches delivered to two gateway processes at once', () => {
  it('keeps one row, one receipt per event and one paid transition per payment, never going back', async () => {
    const payments = Array.from({ length: PAYMENTS }, (_, i) => sandbox.createPayment({ amount: 1000 + i, currency: 'GBP' }));
    const ids = new Set(payments.map((payment) => payment.id));
    payments.forEach((payment, i) =>
      sandbox.scheduleTimeline(payment.id, [
        { afterMs: 200 + i * 40, status: 'confirmed' },
        { afterMs: 2000 + i * 40, status: 'paid_out' },
      ]),
    );

    // Rounds back to back until the timeline is done, then one more: every round sends
    // everything so far, shuffled, as one webhook body posted to both processes at once.
    const random = seededRandom(7);
    const ackMs: number[] = [];
    const statuses: number[] = [];
    let rounds = 0;
    let last = false;
    while (!last) {
      last = sandbox.state.pendingTimelineSteps === 0;
      const events = sandbox.state.events.filter((event) => event.links.payment && ids.has(event.links.payment));
      const shuffled = [...events].sort(() => random() - 0.5);
      const webhook = buildGoCardlessWebhook(shuffled, sandbox.webhookSecret);
      await Promise.all(
        gateways.map(async (gateway) => {
          const started = performance.now();
          const res = await fetch(`${gateway.url}/webhooks/gocardless`, { method: 'POST', headers: webhook.headers, body: webhook.body });
          ackMs.push(performance.now() - started);
          statuses.push(res.status);
        }),
      );
      rounds++;
    }
    const sorted = [...ackMs].sort((a, b) => a - b);
    console.log(
      `gocardless race: ${rounds} rounds × 2 processes, batches up to ${PAYMENTS * 3} events; ack p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`,
    );
    expect(statuses.every((status) => status === 204)).toBe(true);
    expect(rounds).toBeGreaterThan(2);
    expect(sorted.at(-1)!).toBeLessThan(10_000);

    const allEvents = sandbox.state.events.filter((event) => event.links.payment && ids.has(event.links.payment));
    expect(allEvents).toHaveLength(PAYMENTS * 3);
    const eventIds = allEvents.map((event) => event.id);

    await eventually(
      async () => {
        const [row] = await sql<{ done: number; pending: number }[]>`
          select
            (select count(*)::int from payments where provider = 'gocardless' and provider_status = 'paid_out' and provider_payment_id in ${sql([...ids])}) as done,
            (select count(*)::int from webhook_receipts where state = 'pending' and event_id in ${sql(eventIds)}) as pending`;
        return row!.done === PAYMENTS && row!.pending === 0;
      },
      { timeoutMs: 45_000, intervalMs: 100, what: 'every payment paid_out and every receipt settled' },
    );

    // One receipt per event id, all processed; the two processes split the new ones between them.
    const receipts = await sql<{ event_id: string; state: string }[]>`select event_id, state from webhook_receipts where event_id in ${sql(eventIds)}`;
    expect(receipts).toHaveLength(PAYMENTS * 3);
    expect(new Set(receipts.map((r) => r.state))).toEqual(new Set(['processed']));
    const stored = await Promise.all(gateways.map((g) => metricSum(g, 'gateway_provider_events_total', { provider: 'gocardless', origin: 'webhook', outcome: 'new' })));
    console.log(`gocardless race: new events stored per process ${JSON.stringify(stored)}`);
    expect(stored.reduce((a, b) => a + b, 0)).toBe(PAYMENTS * 3);

    const rows = await sql<{ provider_payment_id: string; n: number }[]>`
      select provider_payment_id, count(*)::int as n from payments where provider_payment_id in ${sql([...ids])} group by provider_payment_id`;
    expect(rows).toHaveLength(PAYMENTS);
    expect(rows.every((row) => row.n === 1)).toBe(true);

    const transitions = await sql<{ pid: string; version: number; previous_status: string | null; new_status: string; new_provider_status: string; source: string }[]>`
      select p.provider_payment_id as pid, t.version, t.previous_status, t.new_status, t.new_provider_status, t.source
      from payment_transitions t join payments p on p.id = t.payment_id
      where p.provider_payment_id in ${sql([...ids])} order by p.provider_payment_id, t.version`;
    const events = await sql<{ pid: string; type: string; version: number }[]>`
      select provider_payment_id as pid, type, payment_version as version from outbox
      where provider = 'gocardless' and provider_payment_id in ${sql([...ids])} order by provider_payment_id, payment_version`;
    for (const id of ids) {
      const steps = transitions.filter((t) => t.pid === id);
      expect(steps.map((t) => t.version), id).toEqual(steps.map((_, i) => i + 1));
      for (let i = 1; i < steps.length; i++) {
        expect(RANK[steps[i]!.new_provider_status]!, id).toBeGreaterThan(RANK[steps[i - 1]!.new_provider_status]!);
        expect(steps[i]!.previous_status, id).toBe(steps[i - 1]!.new_status);
      }
      expect(steps.at(-1)!.new_provider_status).toBe('paid_out');
      expect(steps.filter((t) => t.new_status === 'paid' && t.previous_status !== 'paid'), id).toHaveLength(1);
      expect(steps.every((t) => t.source === 'webhook')).toBe(true);
      const types = events.filter((e) => e.pid === id).map((e) => e.type);
      expect(types.filter((type) => type === 'payment.paid'), id).toHaveLength(1);
      // Nothing after payment.paid says pending again.
      expect(types.slice(types.indexOf('payment.paid')), id).not.toContain('payment.pending');
    }
    const fetches = payments.reduce((sum, payment) => sum + sandbox.fetchCount(payment.id), 0);
    const sawConfirmed = new Set(transitions.filter((t) => t.new_provider_status === 'confirmed').map((t) => t.pid)).size;
    console.log(`gocardless race: ${transitions.length} transitions for ${PAYMENTS} payments (${sawConfirmed} seen confirmed on the way) from ${fetches} provider fetches`);

    // Each process ran its events-API recovery at start-up; they shared one cursor.
    const [cursor] = await sql<{ state: { completedAt: string | null } }[]>`
      select state from provider_cursors where provider = 'gocardless' and account = 'default' and name = 'events'`;
    expect(cursor?.state.completedAt).toBeTruthy();
  });
});
