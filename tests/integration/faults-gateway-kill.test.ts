/**
 * Fault: a gateway process SIGKILLed with provider fetches in flight, then started again.
 * The Mollie sandbox answers slowly and webhooks are answered at a short deadline, so
 * when the process dies it has acknowledged webhooks whose syncs are still fetching:
 * their durable receipts are all that is left of them. The surviving process and the
 * restarted one must apply every one of them (receipt worker), and the invariants hold.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { eventually } from '../helpers/deps.js';
import { checkInvariants, metricSum, printFigures, scrape, settle, startFaultStack, startMollieLoad, type FaultStack } from '../helpers/fault-harness.js';

let database: TestDatabase;
let sql: postgres.Sql;
let stack: FaultStack | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await stack?.close();
  await sql?.end();
  await database?.drop();
}, 30_000);

describe('faults: a gateway killed mid-work', () => {
  it('SIGKILL with fetches in flight, then a restart: every acknowledged webhook still applied', async () => {
    stack = await startFaultStack({
      databaseUrl: database.url,
      redisUrl: TEST_REDIS_URL,
      gateways: 2,
      // Acknowledge at 400 ms while Mollie takes 1.2 s: the kill lands between the two.
      // A dead process's locks lapse after 3 s.
      env: { MOLLIE_WEBHOOK_DEADLINE_MS: '400', LOCK_TTL_MS: '3000', POLLER_LEASE_MS: '3000' },
    });
    const [victim, survivor] = stack.gateways as [FaultStack['gateways'][number], FaultStack['gateways'][number]];
    stack.sandbox.setLatency(1200);
    let targets = [victim.url, survivor.url];
    const started = performance.now();
    const load = startMollieLoad({ sandbox: stack.sandbox, targets: () => targets, payments: 48, concurrency: 8, paceMs: 30, retryDelayMs: 150 });

    await load.advance(Math.floor(load.totalSteps / 4));
    // Kill once the victim has acknowledged webhooks whose fetches have not come back.
    await eventually(async () => metricSum(await scrape(victim.url), 'gateway_webhooks_total', { provider: 'mollie', outcome: 'deadline' }) >= 3, {
      what: 'webhooks acknowledged at the deadline with their fetch still running',
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    const fetchesInFlight = () => {
      const arrived = [...stack!.sandbox.state.requestCounts.values()].reduce((a, b) => a + b, 0);
      const answered = stack!.sandbox.state.requests.filter((r) => /^\/v2\/payments\/[^/]+$/.test(r.path)).length;
      return arrived - answered;
    };
    const inFlight = fetchesInFlight();
    await victim.kill();
    const killedAt = load.steps();
    // Acknowledged, then lost with the process: receipts still pending, not yet applied.
    const [orphans] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where state = 'pending'`;
    // Mollie keeps retrying at the dead address for a while (connection refused), then it is back.
    await load.advance(Math.floor(load.totalSteps / 6));
    const restarted = await stack.startGateway();
    targets = [restarted.url, survivor.url];
    const stepsWhileDown = load.steps() - killedAt;
    await load.done;
    stack.sandbox.setLatency(0);
    const settleMs = await settle(sql, stack.sink);

    expect(stack.crashed()).toEqual([]);
    expect(inFlight).toBeGreaterThan(0);
    expect(orphans!.n).toBeGreaterThan(0);
    // Receipts the receipt worker had to take over (attempts > 0): the orphans among them.
    const [retried] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_receipts where attempts > 0`;
    const refused = load.webhooks.flatMap((w) => w.attempts).filter((a) => a.status === null).length;
    expect(refused).toBeGreaterThan(0);
    const figures = await checkInvariants(sql, stack, load, { webhook: [200], sync: [200, 409] });
    printFigures('gateway-sigkill', {
      ...figures,
      fetchesInFlightAtKill: inFlight,
      receiptsPendingAtKill: orphans!.n,
      receiptsRetriedByWorker: retried!.n,
      webhookAttemptsRefused: refused,
      stepsWhileDown,
      settleMs,
      totalMs: Math.round(performance.now() - started),
    });
  }, 120_000);
});
