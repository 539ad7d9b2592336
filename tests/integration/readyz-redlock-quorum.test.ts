/**
 * /readyz with a Redlock quorum: three Redis servers of the test's own (OS processes it
 * can kill). One down leaves a quorum, so the lock still works and the gateway is ready,
 * with the node that is down named; two down lose the quorum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { waitForRedis } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually } from '../helpers/deps.js';
import { startRedisServer } from '../helpers/processes.js';

let database: TestDatabase;
let redis: Awaited<ReturnType<typeof startRedisServer>>[] = [];
let deps: Deps;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await Promise.all([startRedisServer(), startRedisServer(), startRedisServer()]);
  deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: redis.map((r) => r.url).join(',') });
  expect(await waitForRedis(deps)).toBe(true);
  app = createApp(deps);
});

afterAll(async () => {
  await deps?.close();
  await Promise.all(redis.map((r) => r.kill()));
  await database?.drop();
});

interface RedisCheck {
  ok: boolean;
  error?: string;
  quorum: { required: number; up: number; of: number };
  nodes: { node: string; ok: boolean; error?: string }[];
}

async function readiness(): Promise<{ status: number; body: { status: string; checks: { redis: RedisCheck } } }> {
  const res = await app.request('/readyz');
  return { status: res.status, body: await res.json() };
}

const nodeName = (url: string) => new URL(url).host;

describe('/readyz with a Redlock quorum of three', () => {
  it('reports every node; one down is still ready (the quorum holds), two down is not', async () => {
    const all = await readiness();
    expect(all.status).toBe(200);
    expect(all.body.status).toBe('ready');
    expect(all.body.checks.redis).toMatchObject({ ok: true, quorum: { required: 2, up: 3, of: 3 } });
    expect(all.body.checks.redis.nodes.map((n) => [n.node, n.ok])).toEqual(redis.map((r) => [nodeName(r.url), true]));

    await redis[1]!.kill();
    const one = await eventually(async () => {
      const r = await readiness();
      return r.body.checks.redis.quorum.up === 2 ? r : undefined;
    }, { what: 'the killed node reported down' });
    expect(one.status).toBe(200);
    expect(one.body.status).toBe('ready');
    expect(one.body.checks.redis).toMatchObject({ ok: true, quorum: { required: 2, up: 2, of: 3 } });
    const down = one.body.checks.redis.nodes.filter((n) => !n.ok);
    expect(down.map((n) => n.node)).toEqual([nodeName(redis[1]!.url)]);
    expect(down[0]!.error).toBeTruthy();
    // The lock agrees: it still takes and releases with one node of three down.
    expect(await deps.locker.withLock('readyz-quorum-check', async () => 'locked')).toBe('locked');

    await redis[2]!.kill();
    const two = await eventually(async () => {
      const r = await readiness();
      return r.body.checks.redis.quorum.up === 1 ? r : undefined;
    }, { what: 'the second killed node reported down' });
    // Still 200: Redis only spares provider calls; the database keeps the guarantees.
    expect(two.status).toBe(200);
    expect(two.body.status).toBe('degraded');
    expect(two.body.checks.redis).toMatchObject({ ok: false, quorum: { required: 2, up: 1, of: 3 } });
    expect(two.body.checks.redis.error).toBe(`no Redlock quorum: 1 of 3 nodes answer, 2 needed (down: ${nodeName(redis[1]!.url)}, ${nodeName(redis[2]!.url)})`);
  });
});
