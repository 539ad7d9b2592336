import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { relayOnce } from '../../src/events/relay.js';
import { configuredSinks } from '../../src/events/sinks.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps, eventually } from '../helpers/deps.js';
import { drainRelay, newPaymentId, writeGatewayEvent, writeGatewayEvents, writePaymentHistory } from '../helpers/outbound-events.js';

let database: TestDatabase;
let sql: postgres.Sql;
let redis: Redis;
const streams: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
});
afterAll(async () => {
  if (streams.length > 0) await redis?.del(...streams);
  redis?.disconnect();
  await sql?.end();
  await database?.drop();
});

function streamName(label: string) {
  const name = `${redisPrefix('events')}${label}`;
  streams.push(name);
  return name;
}

function streamDeps(stream: string, env: Record<string, string> = {}) {
  const deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, EVENT_STREAM: stream, ...env });
  cleanups.push(() => deps.close());
  return deps;
}

const drain = (deps: Parameters<typeof relayOnce>[0]) => drainRelay(deps, { retryDelaysMs: Array.from({ length: 50 }, () => 5) });

type Entry = [string, string[]];
const fieldsOf = (entry: Entry) => {
  const fields: Record<string, string> = {};
  for (let i = 0; i < entry[1].length; i += 2) fields[entry[1][i]!] = entry[1][i + 1]!;
  return fields;
};

describe('the Redis Stream sink', () => {
  it('appends every event once, per payment in version order, readable through a consumer group', async () => {
    const stream = streamName('billing');
    // A consumer group made before anything is written sees every entry from the start.
    await redis.xgroup('CREATE', stream, 'billing', '$', 'MKSTREAM');
    const deps = streamDeps(stream);
    await eventually(async () => deps.redis[0]!.status === 'ready', { what: 'redis connected' });

    const payments = [newPaymentId(), newPaymentId(), newPaymentId()];
    for (const id of payments) await writePaymentHistory(deps.db, id, 1);
    const gatewayEvent = await writeGatewayEvent(deps.db, 'stream');
    await drain(deps);

    const entries = (await redis.xrange(stream, '-', '+')) as Entry[];
    expect(entries).toHaveLength(3 * 4 + 1);
    const fields = entries.map(fieldsOf);
    const ids = fields.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(gatewayEvent);
    for (const id of payments) {
      const mine = fields.filter((f) => f.paymentId === id);
      expect(mine.map((f) => Number(f.version))).toEqual([1, 2, 3, 4]);
      expect(mine.map((f) => f.type)).toEqual(['payment.open', 'payment.pending', 'payment.paid', 'payment.refunded']);
    }
    for (const f of fields) {
      const payload = JSON.parse(f.payload!);
      expect(Object.keys(payload)).toEqual(['id', 'type', 'timestamp', 'data']);
      expect(payload).toMatchObject({ id: f.id, type: f.type, timestamp: f.timestamp });
      if (f.paymentId) expect(payload.data).toMatchObject({ provider: 'mollie', paymentId: f.paymentId, version: Number(f.version) });
    }
    // The same rows in Postgres and in the stream, nothing left pending.
    const [stored] = await sql<{ delivered: number }[]>`
      select count(*)::int as delivered from event_deliveries where state = 'delivered' and sink_id = ${configuredSinks(deps)[0]!.id}`;
    expect(stored!.delivered).toBe(13);

    // Two consumers in one group share the entries between them, each exactly once.
    const read = async (consumer: string) =>
      ((await redis.xreadgroup('GROUP', 'billing', consumer, 'COUNT', 7, 'STREAMS', stream, '>')) as [string, Entry[]][] | null)?.[0]?.[1] ?? [];
    const first = await read('worker-1');
    const second = await read('worker-2');
    expect(first).toHaveLength(7);
    expect(second).toHaveLength(6);
    expect(new Set([...first, ...second].map((e) => fieldsOf(e).id))).toEqual(new Set(ids));
    expect(await redis.xack(stream, 'billing', ...first.map((e) => e[0]), ...second.map((e) => e[0]))).toBe(13);
    expect(await read('worker-1')).toEqual([]);
  });

  it('keeps the stream near EVENT_STREAM_MAXLEN (approximate trimming)', async () => {
    const stream = streamName('capped');
    const deps = streamDeps(stream, { EVENT_STREAM_MAXLEN: '20' });
    await eventually(async () => deps.redis[0]!.status === 'ready', { what: 'redis connected' });
    await writeGatewayEvents(deps.db, 'capped', 300);
    await drain(deps);
    const length = await redis.xlen(stream);
    // MAXLEN ~ trims whole macro nodes (100 entries by default): never below the cap, never far above.
    expect(length).toBeGreaterThanOrEqual(20);
    expect(length).toBeLessThanOrEqual(20 + 100);
    const last = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as Entry[];
    expect(fieldsOf(last[0]!).type).toBe('gateway.poller.degraded');
  });

  it('retries while Redis refuses the write, then delivers in order', async () => {
    const stream = streamName('wrongtype');
    // A plain string under the stream's name makes every XADD fail (WRONGTYPE) until it is gone.
    await redis.set(stream, 'not a stream');
    const deps = streamDeps(stream);
    await eventually(async () => deps.redis[0]!.status === 'ready', { what: 'redis connected' });
    const id = newPaymentId();
    await writePaymentHistory(deps.db, id, 0);
    const options = { retryDelaysMs: Array.from({ length: 50 }, () => 5) };
    await eventually(async () => {
      await relayOnce(deps, options);
      const rows = await sql<{ attempts: number; last_error: string }[]>`
        select attempts, last_error from event_deliveries where provider_payment_id = ${id} and payment_version = 1 and sink_id = ${configuredSinks(deps)[0]!.id}`;
      return rows[0] && rows[0].attempts >= 3 && rows[0].last_error.includes('WRONGTYPE');
    }, { what: 'failed attempts' });
    // The later versions were held back behind the failing first one.
    const [held] = await sql<{ attempted: number }[]>`
      select count(*)::int as attempted from event_deliveries where provider_payment_id = ${id} and payment_version > 1 and attempts > 0`;
    expect(held!.attempted).toBe(0);
    await redis.del(stream);
    await drain(deps);
    const entries = ((await redis.xrange(stream, '-', '+')) as Entry[]).map(fieldsOf);
    expect(entries.map((f) => Number(f.version))).toEqual([1, 2, 3]);
  });

  it('is off, and says so, when EVENT_STREAM is set but there is no Redis', async () => {
    const lines: string[] = [];
    const logger = createLogger('warn', new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));
    const deps = buildTestDeps({ DATABASE_URL: database.url, EVENT_STREAM: streamName('nowhere') }, { logger });
    cleanups.push(() => deps.close());
    expect(configuredSinks(deps)).toEqual([]);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ level: 40, msg: 'EVENT_STREAM is set but REDIS_URL is not: the Redis Stream sink is off' }),
    ]);
    // Built once per deps: said once.
    configuredSinks(deps);
    expect(lines).toHaveLength(1);
    // A process without sinks leaves the outbox to the processes that have some.
    const id = await writeGatewayEvent(deps.db, 'no-sinks');
    expect(await relayOnce(deps)).toMatchObject({ relayed: 0, attempted: 0 });
    const [row] = await sql<{ relayed_at: Date | null }[]>`select relayed_at from outbox where event_id = ${id}`;
    expect(row).toEqual({ relayed_at: null });
  });
});
