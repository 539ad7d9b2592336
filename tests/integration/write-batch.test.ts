/**
 * Group commit on the write path (src/db/group-commit.ts): receipts, fetch fences and
 * snapshot writes submitted together go as one statement or one transaction, each caller
 * answered as if it had run alone; and a batch whose transaction fails leaves every member
 * either not applied at all (its caller gets the error) or applied alone afterwards, never
 * half-applied. Failures are injected with triggers in this file's own database.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { applySnapshot, takeFetchFence, takeFetchFenceAt } from '../../src/payments/apply-snapshot.js';
import { createMollieProvider } from '../../src/providers/mollie/client.js';
import type { PaymentSnapshot, PaymentStatus } from '../../src/providers/types.js';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { recordReceipts, type NewReceipt } from '../../src/webhooks/receipts.js';
import { createTestDatabase, redisPrefix, TEST_REDIS_URL, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';
import { testSnapshot } from '../helpers/snapshots.js';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 4 });
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  // Failures on demand: a payment id with one of these prefixes makes its statement fail.
  await sql.unsafe(`
    create function refuse_marked_payment() returns trigger language plpgsql as $$
    begin
      if new.provider_payment_id like 'tr_refuse%' then raise exception 'refused for the test: %', new.provider_payment_id; end if;
      if new.provider_payment_id like 'tr_kill%' then perform pg_terminate_backend(pg_backend_pid()); end if;
      return new;
    end $$;
    create function refuse_marked_event() returns trigger language plpgsql as $$
    begin
      if new.provider_payment_id like 'tr_noevents%' then raise exception 'outbox refused for the test: %', new.provider_payment_id; end if;
      return new;
    end $$;
    create function refuse_marked_receipt() returns trigger language plpgsql as $$
    begin
      if new.resource_id like 'tr_norcpt%' then raise exception 'receipt refused for the test: %', new.resource_id; end if;
      return new;
    end $$;
    create trigger refuse_marked_payment before insert or update on payments for each row execute function refuse_marked_payment();
    create trigger refuse_marked_event before insert on outbox for each row execute function refuse_marked_event();
    create trigger refuse_marked_receipt before insert on webhook_receipts for each row execute function refuse_marked_receipt();`);
});

afterAll(async () => {
  await sql?.end();
  await db?.close();
  await database?.drop();
});

const newId = (prefix: string) => `${prefix}${randomBytes(5).toString('hex')}`;

const snapshot = testSnapshot;

function receipt(resourceId: string, eventId: string | null = null): NewReceipt {
  return {
    provider: 'mollie',
    account: 'default',
    eventId,
    resourceType: 'payment',
    resourceId,
    body: new TextEncoder().encode(`id=${resourceId}`),
    headers: {},
    signature: eventId ? 'valid' : 'absent',
  };
}

/** One pending receipt per payment id, recorded before the writes under test. */
async function pendingReceipt(id: string): Promise<number> {
  const [recorded] = await recordReceipts(db.db, [receipt(id)]);
  return recorded!.id;
}

/** What is stored for a payment: its row, its transitions' statuses, its events, its receipt's state. */
async function stored(id: string, receiptId: number) {
  const [row] = await sql<{ status: string; version: number; txid: string }[]>`select status, version, xmin::text as txid from payments where provider_payment_id = ${id}`;
  const transitions = await sql<{ new_status: string }[]>`
    select t.new_status from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id = ${id} order by t.version`;
  const events = await sql<{ type: string }[]>`select type from outbox where provider_payment_id = ${id} order by id`;
  const [state] = await sql<{ state: string }[]>`select state from webhook_receipts where id = ${receiptId}`;
  return { row, transitions: transitions.map((t) => t.new_status), events: events.map((e) => e.type), receipt: state?.state };
}

/** Submits every write in the same tick, so they share a flush; each settles on its own. */
async function writeTogether(ids: string[], receipts: number[], status: PaymentStatus = 'paid') {
  const fences = await Promise.all(ids.map(() => takeFetchFence(db.db)));
  return Promise.allSettled(
    ids.map((id, index) => applySnapshot(db.db, { snapshot: snapshot(id, status), fence: fences[index]!, source: 'webhook', receiptId: receipts[index]!, settleReceiptIds: [receipts[index]!] })),
  );
}

describe('snapshot writes submitted together', () => {
  it('commit in one transaction, each answered and recorded as if written alone', async () => {
    const ids = Array.from({ length: 8 }, () => newId('tr_batch'));
    const receipts = await Promise.all(ids.map(pendingReceipt));
    const results = await writeTogether(ids, receipts);
    for (const result of results) expect(result).toMatchObject({ status: 'fulfilled', value: { changed: true, version: 1, eventTypes: ['payment.paid'], settledReceipts: true } });
    const rows = await Promise.all(ids.map((id, index) => stored(id, receipts[index]!)));
    for (const row of rows) expect(row).toMatchObject({ row: { status: 'paid', version: 1 }, transitions: ['paid'], events: ['payment.paid'], receipt: 'processed' });
    // One transaction wrote them all.
    expect(new Set(rows.map((row) => row.row!.txid)).size).toBe(1);
  });

  it('two snapshots of one payment in a flush give what writing them in fence order gives', async () => {
    const id = newId('tr_twice');
    const older = await takeFetchFence(db.db);
    const newer = await takeFetchFence(db.db);
    // The newer fetch's snapshot is submitted first; the older one must still be written first.
    const [paid, open] = await Promise.all([
      applySnapshot(db.db, { snapshot: snapshot(id, 'paid'), fence: newer, source: 'webhook' }),
      applySnapshot(db.db, { snapshot: snapshot(id, 'open'), fence: older, source: 'poll' }),
    ]);
    expect(open).toMatchObject({ changed: true, version: 1, previous: null });
    expect(paid).toMatchObject({ changed: true, version: 2, previous: { status: 'open' } });
    const [row] = await sql<{ status: string; version: number; fence: number }[]>`select status, version, fence::int from payments where provider_payment_id = ${id}`;
    expect(row).toEqual({ status: 'paid', version: 2, fence: newer });
    const transitions = await sql<{ version: number; previous_status: string | null; new_status: string }[]>`
      select t.version, t.previous_status, t.new_status from payment_transitions t join payments p on p.id = t.payment_id
      where p.provider_payment_id = ${id} order by t.version`;
    expect(transitions).toEqual([
      { version: 1, previous_status: null, new_status: 'open' },
      { version: 2, previous_status: 'open', new_status: 'paid' },
    ]);
  });

  it('several payments in one statement store exactly what writing each alone stores', async () => {
    // Every field set, and every nullable one null, on insert and again on an update that
    // passes the guard and one it refuses: once submitted together (the batched statements),
    // once one after the other (the lone ones), in twin payments compared column by column.
    const variant = (id: string, status: PaymentStatus, sparse: boolean, amountMinor: number): PaymentSnapshot => ({
      ...snapshot(id, status),
      account: sparse ? 'default' : 'acct-twin',
      providerStatus: `${status}-provider`,
      amount: { minor: amountMinor, currency: sparse ? 'JPY' : 'EUR' },
      refundedMinor: sparse ? 0 : 17,
      chargedBackMinor: sparse ? 0 : 3,
      mode: sparse ? null : 'live',
      method: sparse ? null : 'ideal',
      metadata: sparse ? null : { order: 'o-1', nested: { list: [1, 'two', null] }, quote: 'a "b" \\ c' },
      providerCreatedAt: sparse ? null : new Date('2026-11-05T06:07:08.009Z'),
      raw: { id, status, note: 'ünïcödé ✓', sparse },
    });
    const steps: Array<[PaymentStatus, number]> = [['open', 1000], ['paid', 1250], ['open', 1250]];
    const twins = [false, true].map((sparse) => ({ sparse, batched: [newId('tr_many'), newId('tr_many')], alone: [newId('tr_lone'), newId('tr_lone')] }));
    for (const [status, amount] of steps) {
      const nextPollAt = status === 'open' ? new Date(Date.now() + 60_000) : null;
      const write = (id: string, sparse: boolean, fence: number) => applySnapshot(db.db, { snapshot: variant(id, status, sparse, amount), fence, source: 'poll', nextPollAt });
      const batched = twins.flatMap((twin) => twin.batched.map((id) => ({ id, sparse: twin.sparse })));
      const fences = await Promise.all(batched.map(() => takeFetchFence(db.db)));
      const together = await Promise.all(batched.map((member, index) => write(member.id, member.sparse, fences[index]!)));
      const alone = [];
      for (const twin of twins) for (const id of twin.alone) alone.push(await write(id, twin.sparse, await takeFetchFence(db.db)));
      const answer = (result: Awaited<ReturnType<typeof applySnapshot>>) => ({ ...result, paymentRowId: result.paymentRowId === null ? null : 'set' });
      expect(together.map(answer)).toEqual(alone.map(answer));
    }
    const columns = async (id: string) => {
      const [row] = await sql`
        select account, status, provider_status, amount_minor::text, currency, refunded_minor::text, charged_back_minor::text, mode, method,
          metadata, snapshot, version, previous, provider_created_at, next_poll_at is not null as polled
        from payments where provider_payment_id = ${id}`;
      const transitions = await sql`
        select t.version, t.source, t.previous_status, t.new_status, t.previous_provider_status, t.new_provider_status, t.snapshot
        from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id = ${id} order by t.version`;
      const events = await sql`select type, payment_version, payload - 'id' - 'timestamp' - 'data' as envelope, payload->'data'->'payment'->'amount' as amount from outbox where provider_payment_id = ${id} order by id`;
      const raw = (value: unknown) => JSON.parse(JSON.stringify(value).replaceAll(id, 'ID'));
      return raw({ row, transitions, events });
    };
    // The batched ones really went together (a refused batch would have been written again one by one).
    const txids = await sql<{ txid: string }[]>`select xmin::text as txid from payments where provider_payment_id = any(${twins.flatMap((twin) => twin.batched)})`;
    expect(txids).toHaveLength(4);
    expect(new Set(txids.map((row) => row.txid)).size).toBe(1);
    for (const twin of twins) {
      for (let n = 0; n < 2; n++) {
        const batched = await columns(twin.batched[n]!);
        expect(batched.row.version, 'open, then paid; the stale open refused').toBe(2);
        expect(batched).toEqual(await columns(twin.alone[n]!));
      }
    }
  });

  it('one member the database refuses fails alone; the others are applied whole, each on its own', async () => {
    const ids = [...Array.from({ length: 3 }, () => newId('tr_good')), newId('tr_refuse'), ...Array.from({ length: 3 }, () => newId('tr_good'))];
    const receipts = await Promise.all(ids.map(pendingReceipt));
    const results = await writeTogether(ids, receipts);
    const rows = await Promise.all(ids.map((id, index) => stored(id, receipts[index]!)));
    ids.forEach((id, index) => {
      if (id.startsWith('tr_refuse')) {
        expect(results[index]).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('refused for the test') } });
        // Nothing of it: no row, no transition, no event; its receipt stays pending for the retry worker.
        expect(rows[index]).toEqual({ row: undefined, transitions: [], events: [], receipt: 'pending' });
      } else {
        expect(results[index]).toMatchObject({ status: 'fulfilled', value: { changed: true, version: 1 } });
        expect(rows[index]).toMatchObject({ row: { status: 'paid', version: 1 }, transitions: ['paid'], events: ['payment.paid'], receipt: 'processed' });
      }
    });
    // The batch's transaction was refused whole, and the good members were written again one by one.
    const good = rows.filter((_, index) => !ids[index]!.startsWith('tr_refuse'));
    expect(new Set(good.map((row) => row.row!.txid)).size).toBe(good.length);
  });

  it('a member whose events are refused after its upsert leaves no payment row behind (never half-applied)', async () => {
    const ids = [newId('tr_good'), newId('tr_noevents'), newId('tr_good')];
    const receipts = await Promise.all(ids.map(pendingReceipt));
    const results = await writeTogether(ids, receipts);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await stored(ids[1]!, receipts[1]!)).toEqual({ row: undefined, transitions: [], events: [], receipt: 'pending' });
    for (const index of [0, 2]) expect(await stored(ids[index]!, receipts[index]!)).toMatchObject({ transitions: ['paid'], events: ['payment.paid'], receipt: 'processed' });
  });

  it('a batch whose connection dies fails every member and applies none; written again, each is applied once', async () => {
    const ids = [newId('tr_good'), newId('tr_good'), newId('tr_kill'), newId('tr_good')];
    const receipts = await Promise.all(ids.map(pendingReceipt));
    const results = await writeTogether(ids, receipts);
    // The outcome of a transaction on a lost connection is not retried behind the callers' backs.
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    for (const [index, id] of ids.entries()) expect(await stored(id, receipts[index]!)).toEqual({ row: undefined, transitions: [], events: [], receipt: 'pending' });

    // What the receipt worker would do: write them again (the kill switch spares this id now).
    // Until it succeeds: postgres.js keeps the terminated backend's FATAL error and hands it
    // to the first query on the connection's next session, so one more attempt may fail
    // whole, as any attempt during a database outage does (nothing of it is applied).
    const again = ids.map((id) => (id.startsWith('tr_kill') ? id.replace('tr_kill', 'tr_good') : id));
    let retried = await writeTogether(again, receipts).catch(() => null);
    for (let attempt = 0; attempt < 3 && !retried?.every((result) => result.status === 'fulfilled'); attempt++) retried = await writeTogether(again, receipts).catch(() => null);
    expect(retried?.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    for (const [index, id] of again.entries()) expect(await stored(id, receipts[index]!)).toMatchObject({ transitions: ['paid'], events: ['payment.paid'], receipt: 'processed' });
  });

  it('WRITE_BATCH_MAX=1 writes each snapshot in its own transaction', async () => {
    const alone = createDatabase(database.url, { max: 4, writeBatchMax: 1 });
    try {
      const ids = Array.from({ length: 4 }, () => newId('tr_alone'));
      const fences = await Promise.all(ids.map(() => takeFetchFence(alone.db)));
      await Promise.all(ids.map((id, index) => applySnapshot(alone.db, { snapshot: snapshot(id, 'paid'), fence: fences[index]!, source: 'webhook' })));
      const rows = await sql<{ txid: string }[]>`select xmin::text as txid from payments where provider_payment_id = any(${ids})`;
      expect(new Set(rows.map((row) => row.txid)).size).toBe(4);
    } finally {
      await alone.close();
    }
  });
});

describe('receipts recorded together', () => {
  it('share one insert and answer each call as if the calls had run one after another', async () => {
    const ev = (name: string) => `${name}_${randomBytes(4).toString('hex')}`;
    const [a, b, c] = [ev('EV_A'), ev('EV_B'), ev('EV_C')];
    const plain = newId('tr_plain');
    const [first, second, third, fourth] = await Promise.all([
      recordReceipts(db.db, [receipt('tr_x', a), receipt('tr_x', b), receipt('tr_x', a)]),
      recordReceipts(db.db, [receipt('tr_x', b), receipt(plain)]),
      recordReceipts(db.db, [receipt('tr_x', c)]),
      recordReceipts(db.db, [receipt('tr_x', a)]),
    ]);
    // Within one call a repeated event id answers the first's id; across calls (as when
    // stored before) ON CONFLICT DO NOTHING returns no row, so the duplicate's id is 0.
    expect(first!.map((r) => [r.eventId, r.duplicate])).toEqual([[a, false], [b, false], [a, true]]);
    expect(first![2]!.id).toBe(first![0]!.id);
    expect(second!.map((r) => [r.eventId, r.duplicate, r.id === 0])).toEqual([[b, true, true], [null, false, false]]);
    expect(third!.map((r) => [r.eventId, r.duplicate])).toEqual([[c, false]]);
    expect(fourth!.map((r) => [r.eventId, r.duplicate, r.id])).toEqual([[a, true, 0]]);

    const rows = await sql<{ id: number; event_id: string | null; txid: string; received_at: Date }[]>`
      select id::int, event_id, xmin::text as txid, received_at from webhook_receipts where event_id = any(${[a, b, c]}) or resource_id = ${plain} order by id`;
    expect(rows.map((row) => row.event_id)).toEqual([a, b, null, c]);
    expect(rows.find((row) => row.event_id === null)!.id).toBe(second![1]!.id);
    expect(new Set(rows.map((row) => row.txid)).size).toBe(1);
    // Every call that stored a row answers the row's own time.
    expect(third![0]!.receivedAt.getTime()).toBe(rows[0]!.received_at.getTime());
  });

  it('a call the database refuses fails alone; the others are stored', async () => {
    const ids = [newId('tr_r'), newId('tr_norcpt'), newId('tr_r')];
    const results = await Promise.allSettled(ids.map((id) => recordReceipts(db.db, [receipt(id)])));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows = await sql<{ resource_id: string }[]>`select resource_id from webhook_receipts where resource_id = any(${ids}) order by id`;
    expect(rows.map((row) => row.resource_id).sort()).toEqual([ids[0], ids[2]].sort());
  });
});

describe('fetch fences taken together', () => {
  it('are distinct and each later than anything committed before they were asked for', async () => {
    const [before] = await sql<{ now: number }[]>`select (extract(epoch from clock_timestamp()) * 1000)::float8 as now`;
    const fences = await Promise.all(Array.from({ length: 20 }, () => takeFetchFenceAt(db.db)));
    expect(new Set(fences.map((f) => f.fence)).size).toBe(20);
    for (const f of fences) expect(f.at).toBeGreaterThanOrEqual(before!.now);
  });
});

describe('Mollie webhooks whose receipts share a batch', () => {
  let sandbox: MollieSandbox;
  let deps: Deps;
  let app: ReturnType<typeof createApp>;

  beforeEach(async () => {
    sandbox = await startMollieSandbox({ apiKeys: [SANDBOX_DEFAULT_API_KEY] });
    const provider = createMollieProvider({ accounts: { default: { apiKey: SANDBOX_DEFAULT_API_KEY } }, apiUrl: sandbox.url, retryConfig: { strategy: 'none' } });
    deps = buildTestDeps({ DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL }, { providers: { mollie: provider }, lockKeyPrefix: redisPrefix('write-batch') });
    app = createApp(deps);
  });

  afterEach(async () => {
    await deps?.close();
    await sandbox?.close();
  });

  it('answer an error only to the webhook whose receipt was refused; the others are stored, applied and answered 200', async () => {
    const payments = Array.from({ length: 6 }, () => sandbox.createPayment({ status: 'paid' }));
    const ids = payments.map((payment) => payment.id);
    // The refused one: an id the receipt trigger refuses (the sandbox does not know it; it is never fetched).
    const refused = newId('tr_norcpt');
    const posted = [...ids.slice(0, 3), refused, ...ids.slice(3)];
    const responses = await Promise.all(
      posted.map((id) => app.request('/webhooks/mollie', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `id=${id}` })),
    );
    expect(responses.map((res) => res.status)).toEqual([200, 200, 200, 500, 200, 200, 200]);
    expect(await sql`select 1 from webhook_receipts where resource_id = ${refused}`).toHaveLength(0);
    const rows = await sql<{ provider_payment_id: string; status: string }[]>`select provider_payment_id, status from payments where provider_payment_id = any(${ids})`;
    expect(rows.map((row) => row.status)).toEqual(ids.map(() => 'paid'));
    const receipts = await sql<{ state: string }[]>`select state from webhook_receipts where resource_id = any(${ids})`;
    expect(receipts.map((row) => row.state)).toEqual(ids.map(() => 'processed'));
  });
});
