import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { enqueueEvents } from '../../src/events/outbox.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps, eventually } from '../helpers/deps.js';
import { newPaymentId, writePaymentHistory } from '../helpers/outbound-events.js';

let database: TestDatabase;
let deps: Deps;
let sql: postgres.Sql;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url });
  sql = postgres(database.url, { max: 30, onnotice: () => {} });
  app = createApp(deps);
});

afterAll(async () => {
  await sql?.end();
  await deps?.close();
  await database?.drop();
});

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

interface Page {
  data: { id: string; type: string; timestamp: string; data: Record<string, unknown> }[];
  nextCursor: string;
}

async function page(query: string): Promise<Page> {
  const res = await app.request(`/v1/events${query}`, { headers: auth });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

/** Pages from `cursor` to the end of what is visible now; returns the ids and the cursor to resume from. */
async function readAll(cursor: string | undefined, limit = 50, filter = ''): Promise<{ ids: string[]; cursor: string }> {
  const ids: string[] = [];
  for (;;) {
    const body = await page(`?limit=${limit}${filter}${cursor ? `&after=${cursor}` : ''}`);
    ids.push(...body.data.map((event) => event.id));
    expect(body.nextCursor).toEqual(expect.any(String));
    if (body.data.length === 0) {
      // An empty page hands back the cursor it was given, so the consumer keeps polling with it.
      if (cursor) expect(body.nextCursor).toBe(cursor);
      return { ids, cursor: body.nextCursor };
    }
    cursor = body.nextCursor;
  }
}

/** Inserts an outbox row on the given connection (inside whatever transaction it has open); its type is no catalogue type, and not gateway.test (which the feed leaves out). */
async function insertEvent(on: postgres.Sql | postgres.ReservedSql | postgres.TransactionSql, label: string): Promise<string> {
  const id = `evt_${label}_${randomBytes(6).toString('hex')}`;
  const payload = { id, type: 'gateway.pull_check', timestamp: new Date().toISOString(), data: { label } };
  await on`insert into outbox (event_id, dedupe_key, type, payload) values (${id}, ${id}, 'gateway.pull_check', ${on.json(payload)})`;
  return id;
}

describe('GET /v1/events: the pull API', () => {
  it('serves {id,type,timestamp,data} in commit-safe order with an opaque cursor, and filters', async () => {
    const a = newPaymentId();
    const b = newPaymentId('PM');
    await writePaymentHistory(deps.db, a, 1);
    await enqueueEvents(deps.db, [{ type: 'gocardless.payments.confirmed', dedupeKey: `gc:${b}`, provider: 'gocardless', providerPaymentId: b, data: { provider: 'gocardless', paymentId: b } }]);

    const all = await eventually(async () => {
      const { ids } = await readAll(undefined, 2);
      return ids.length >= 5 && ids;
    }, { what: 'events visible' });
    expect(new Set(all).size).toBe(all.length);

    const first = await page('?limit=2');
    expect(first.data).toHaveLength(2);
    expect(Object.keys(first.data[0]!)).toEqual(['id', 'type', 'timestamp', 'data']);
    expect(first.data.map((event) => event.type)).toEqual(['payment.open', 'payment.pending']);
    expect(first.data[0]!.data).toMatchObject({ provider: 'mollie', paymentId: a, status: 'open', previousStatus: null, version: 1, amount: { value: '49.95', currency: 'EUR' } });

    const onlyA = await page(`?paymentId=${a}`);
    expect(onlyA.data.map((event) => event.data.version)).toEqual([1, 2, 3, 4]);
    const gocardless = await page('?provider=gocardless');
    expect(gocardless.data.map((event) => event.type)).toEqual(['gocardless.payments.confirmed']);
    expect((await page(`?provider=mollie&paymentId=${b}`)).data).toEqual([]);
  });

  it('an empty page returns the cursor it was given; a consumer keeps polling with it', async () => {
    const { cursor } = await readAll(undefined);
    const empty = await page(`?after=${cursor}`);
    expect(empty).toEqual({ data: [], nextCursor: cursor });
    const id = await insertEvent(sql, 'after-empty');
    const next = await eventually(async () => {
      const body = await page(`?after=${cursor}`);
      return body.data.length > 0 && body;
    }, { what: 'the new event' });
    expect(next.data.map((event) => event.id)).toEqual([id]);
    expect(next.nextCursor).not.toBe(cursor);
  });

  it('never skips an event whose transaction took a lower id but committed later', async () => {
    let { cursor } = await readAll(undefined);
    const [top] = await sql<{ max: number }[]>`select coalesce(max(id), 0)::int as max from outbox`;
    const lastSeenId = top!.max;

    // The slow transaction inserts first (lower id, lower tx id) and stays open...
    const slow = await sql.reserve();
    try {
      await slow`begin`;
      const early = await insertEvent(slow, 'slow');
      // ...while a later transaction inserts and commits.
      const late = await insertEvent(sql, 'fast');

      // The hazard is real: by id, the late event is visible and the early one is not, so
      // a consumer paging by id would move its cursor past the early event for good.
      const byId = await sql<{ event_id: string }[]>`select event_id from outbox where id > ${lastSeenId} order by id`;
      expect(byId.map((row) => row.event_id)).toEqual([late]);

      // The feed holds the late event back while the early transaction can still commit.
      const during = await readAll(cursor);
      expect(during.ids).toEqual([]);
      expect(during.cursor).toBe(cursor);

      await slow`commit`;
      const after = await eventually(async () => {
        const read = await readAll(cursor);
        return read.ids.length >= 2 && read;
      }, { what: 'both events' });
      expect(after.ids).toEqual([early, late]);
      cursor = after.cursor;
    } finally {
      slow.release();
    }
    expect((await readAll(cursor)).ids).toEqual([]);
  });

  it('orders by transaction, so a row inserted late by an early transaction still comes before the cursor moves past it', async () => {
    let { cursor } = await readAll(undefined);
    const slow = await sql.reserve();
    try {
      await slow`begin`;
      // The slow transaction takes its id first but writes its event last (higher row id).
      await slow`select pg_current_xact_id()`;
      const other = await insertEvent(sql, 'other');
      const early = await insertEvent(slow, 'early-tx');
      expect((await readAll(cursor)).ids).toEqual([]);
      await slow`commit`;
      const read = await eventually(async () => {
        const r = await readAll(cursor, 1);
        return r.ids.length >= 2 && r;
      }, { what: 'both events' });
      expect(read.ids).toEqual([early, other]);
      cursor = read.cursor;
    } finally {
      slow.release();
    }
  });

  it('a consumer polling while many transactions commit in shuffled order sees every event exactly once', async () => {
    let { cursor } = await readAll(undefined);
    const writers = 24;
    const gates = Array.from({ length: writers }, () => deferred());
    const inserted: Promise<string>[] = [];
    const started: Promise<void>[] = [];
    for (let i = 0; i < writers; i++) {
      const ready = deferred();
      started.push(ready.promise);
      inserted.push(
        sql.begin(async (tx) => {
          const id = await insertEvent(tx, `w${i}`);
          ready.resolve();
          await gates[i]!.promise;
          return id;
        }) as Promise<string>,
      );
    }
    await Promise.all(started);
    // Commit in an order unrelated to id order, reading a page between every commit.
    const order = Array.from({ length: writers }, (_, i) => i).sort(() => Math.random() - 0.5);
    const seen: string[] = [];
    for (const i of order) {
      gates[i]!.resolve();
      const body = await page(`?limit=3&after=${cursor}`);
      seen.push(...body.data.map((event) => event.id));
      cursor = body.nextCursor;
    }
    const ids = await Promise.all(inserted);
    await eventually(async () => {
      const rest = await readAll(cursor, 3);
      seen.push(...rest.ids);
      cursor = rest.cursor;
      return seen.length >= writers;
    }, { what: 'every event' });
    expect(seen).toHaveLength(writers);
    expect(new Set(seen)).toEqual(new Set(ids));
  });

  it('rejects bad input and missing tokens', async () => {
    const cases: [string, number, RegExp][] = [
      ['/v1/events?after=%%%', 400, /cursor/],
      [`/v1/events?after=${Buffer.from(JSON.stringify({ t: 'x', i: 1 })).toString('base64url')}`, 400, /cursor/],
      ['/v1/events?limit=0', 400, /limit/],
      ['/v1/events?provider=paypal', 400, /provider/],
      ['/v1/events?paymentId=no%20spaces', 400, /paymentId/],
    ];
    for (const [path, status, message] of cases) {
      const res = await app.request(path, { headers: auth });
      expect(res.status, path).toBe(status);
      expect((await res.json()).error.message, path).toMatch(message);
    }
    expect((await app.request('/v1/events')).status).toBe(401);
  });

  it('takes one limit on every list route: 1000 is accepted everywhere, 1001 nowhere', async () => {
    for (const route of ['/v1/events', '/v1/payments', '/v1/dead-letters']) {
      const ok = await app.request(`${route}?limit=1000`, { headers: auth });
      expect(ok.status, route).toBe(200);
      expect(Array.isArray((await ok.json()).data), route).toBe(true);
      const over = await app.request(`${route}?limit=1001`, { headers: auth });
      expect(over.status, route).toBe(400);
      expect((await over.json()).error.message, route).toMatch(/limit: must be at most 1000/);
    }
  });
});
