/**
 * Fault: the lock's Redis dies mid-load and comes back on the same port; and, separately,
 * payment locks expire while their holders are still fetching. Two real gateway processes
 * share a private Redis (the shared one on 6379 is never touched), one database, the
 * Mollie sandbox and a signature-checking sink. The lock is an optimisation: with it gone
 * or lapsing, the database alone must keep one row per payment, no regression, every
 * acknowledged webhook applied and every event delivered.
 */
import postgres from 'postgres';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { eventually } from '../helpers/deps.js';
import {
  checkInvariants,
  metricAcross,
  printFigures,
  settle,
  startFaultStack,
  startMollieLoad,
  startRedisOnPort,
  urlsOf,
  type FaultStack,
  type RedisOnPort,
} from '../helpers/fault-harness.js';
import { freePort } from '../helpers/processes.js';

let database: TestDatabase;
let sql: postgres.Sql;
let redis: RedisOnPort | undefined;
let stack: FaultStack | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await stack?.close();
  await redis?.kill();
  await sql?.end();
  await database?.drop();
}, 30_000);

async function resetTables() {
  await sql`truncate payments, payment_transitions, outbox, event_deliveries, webhook_receipts restart identity cascade`;
}

describe('faults: Redis', () => {
  it('Redis killed mid-load, then restarted on the same port', async () => {
    const port = await freePort();
    redis = await startRedisOnPort(port);
    stack = await startFaultStack({
      databaseUrl: database.url,
      redisUrl: redis.url,
      gateways: 2,
      env: { REDIS_TIMEOUT_MS: '200', MOLLIE_WEBHOOK_DEADLINE_MS: '3000' },
    });
    const urls = urlsOf(stack.gateways);
    const started = performance.now();
    const load = startMollieLoad({ sandbox: stack.sandbox, targets: () => urls, payments: 60, concurrency: 6, paceMs: 60 });

    await load.advance(Math.floor(load.totalSteps / 4));
    const acquiredBefore = await metricAcross(urls, 'gateway_lock_outcomes_total', { outcome: 'acquired' });
    await redis.kill();
    const killedAt = load.steps();
    // Keep Redis away until a good share of the load has run without it.
    await load.advance(Math.floor(load.totalSteps / 4));
    const stepsWithoutRedis = load.steps() - killedAt;
    const fallbacks = await metricAcross(urls, 'gateway_lock_outcomes_total', { outcome: 'unavailable' });
    redis = await startRedisOnPort(port);
    const acquiredAtRestart = await metricAcross(urls, 'gateway_lock_outcomes_total', { outcome: 'acquired' });
    // The gateways reconnect by themselves and take the lock again.
    await eventually(async () => (await metricAcross(urls, 'gateway_lock_outcomes_total', { outcome: 'acquired' })) > acquiredAtRestart, {
      what: 'a lock acquired after the restart',
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    await load.done;
    const settleMs = await settle(sql, stack.sink);

    expect(stack.crashed()).toEqual([]);
    expect(fallbacks).toBeGreaterThan(0);
    expect(acquiredBefore).toBeGreaterThan(0);
    const figures = await checkInvariants(sql, stack, load, { webhook: [200], sync: [200, 409] });
    const acquiredAfter = (await metricAcross(urls, 'gateway_lock_outcomes_total', { outcome: 'acquired' })) - acquiredAtRestart;
    const ready = await Promise.all(urls.map(async (url) => ((await (await fetch(`${url}/readyz`)).json()) as { status: string }).status));
    expect(ready).toEqual(['ready', 'ready']);
    printFigures('redis-restart', {
      ...figures,
      stepsWithoutRedis,
      lockFallbacks: fallbacks,
      locksAcquiredBefore: acquiredBefore,
      locksAcquiredAfterRestart: acquiredAfter,
      settleMs,
      totalMs: Math.round(performance.now() - started),
    });
  }, 90_000);

  it('locks expiring while their holders still fetch', async () => {
    await stack?.close();
    await resetTables();
    redis ??= await startRedisOnPort(await freePort());
    // A slow provider and a short lock: deleting the lock keys mid-fetch is exactly what an
    // expiry looks like to everyone else, and the holder's next extension finds it gone.
    stack = await startFaultStack({
      databaseUrl: database.url,
      redisUrl: redis.url,
      gateways: 2,
      env: { LOCK_TTL_MS: '400', LOCK_WAIT_MS: '3000', MOLLIE_WEBHOOK_DEADLINE_MS: '5000' },
    });
    const urls = urlsOf(stack.gateways);
    stack.sandbox.setLatency(300);
    const started = performance.now();
    const load = startMollieLoad({ sandbox: stack.sandbox, targets: () => urls, payments: 40, concurrency: 6, paceMs: 20, syncShare: 0.8 });
    const expirer = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    let expired = 0;
    const expiring = (async () => {
      while (load.steps() < load.totalSteps) {
        const keys = await expirer.keys('payment:*');
        if (keys.length > 0) expired += await expirer.del(...keys);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await load.done;
    await expiring;
    expirer.disconnect();
    stack.sandbox.setLatency(0);
    const settleMs = await settle(sql, stack.sink);

    expect(stack.crashed()).toEqual([]);
    const lost = await metricAcross(urls, 'gateway_lock_outcomes_total', { outcome: 'lost' });
    expect(expired).toBeGreaterThan(0);
    expect(lost).toBeGreaterThan(0);
    const figures = await checkInvariants(sql, stack, load, { webhook: [200], sync: [200, 409] });
    printFigures('lock-expiry', {
      ...figures,
      lockKeysExpired: expired,
      locksLostMidWork: lost,
      mollieFetches: [...stack.sandbox.state.requestCounts.values()].reduce((a, b) => a + b, 0),
      settleMs,
      totalMs: Math.round(performance.now() - started),
    });
  }, 90_000);
});
