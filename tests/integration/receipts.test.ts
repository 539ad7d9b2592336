import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { deferReceipt, getReceipts, leaseDueReceipts, nextRetryDelayMs, recordReceipts, settleReceipts, type NewReceipt } from '../../src/webhooks/receipts.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 6 });
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await db?.close();
  await database?.drop();
});

const receipt = (eventId: string | null, body = `{"id":"${eventId}"}`): NewReceipt => ({
  provider: 'gocardless',
  account: 'default',
  eventId,
  resourceType: 'payments',
  resourceId: 'PM1',
  body: new TextEncoder().encode(body),
  headers: { 'content-type': 'application/json' },
  signature: 'valid',
});

describe('webhook receipts', () => {
  it('stores a batch in one statement and reports repeated event ids as duplicates', async () => {
    const first = await recordReceipts(db.db, [receipt('EV_A'), receipt('EV_B'), receipt('EV_A'), receipt(null, 'id=tr_1'), receipt(null, 'id=tr_2')]);
    expect(first.map((r) => r.duplicate)).toEqual([false, false, true, false, false]);
    expect(first[2]!.id).toBe(first[0]!.id);
    const second = await recordReceipts(db.db, [receipt('EV_B'), receipt('EV_C')]);
    expect(second.map((r) => r.duplicate)).toEqual([true, false]);
    const stored = await getReceipts(db.db, [first[3]!.id, first[4]!.id]);
    expect(stored.map((r) => new TextDecoder().decode(r.body))).toEqual(['id=tr_1', 'id=tr_2']);
    const [{ count }] = (await sql`select count(*)::int as count from webhook_receipts`) as unknown as [{ count: number }];
    expect(count).toBe(5);
  });

  it('keeps raw bytes exactly, including bytes that are not UTF-8', async () => {
    const bytes = new Uint8Array([0, 255, 254, 10, 13, 0x80]);
    const [stored] = await recordReceipts(db.db, [{ ...receipt('EV_BYTES'), body: bytes }]);
    const [back] = await getReceipts(db.db, [stored!.id]);
    expect([...back!.body]).toEqual([...bytes]);
  });

  it('a new receipt is left to its inline handler before the retry worker may claim it', async () => {
    const [stored] = await recordReceipts(db.db, [receipt('EV_GRACE')]);
    const leased = await leaseDueReceipts(db.db, { limit: 100, leaseMs: 60_000 });
    expect(leased.map((r) => r.id)).not.toContain(stored!.id);
  });

  it('two concurrent claimants never take the same receipt, and a claim expires', async () => {
    const recorded = await recordReceipts(db.db, Array.from({ length: 40 }, (_, i) => receipt(`EV_LEASE_${i}`)));
    const ids = recorded.map((r) => r.id);
    await sql`update webhook_receipts set next_attempt_at = now() - interval '1 second' where id = any(${ids})`;
    const [a, b] = await Promise.all([
      leaseDueReceipts(db.db, { limit: 25, leaseMs: 60_000 }),
      leaseDueReceipts(db.db, { limit: 25, leaseMs: 60_000 }),
    ]);
    const claimed = [...a, ...b].map((r) => r.id).filter((id) => ids.includes(id));
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(claimed.length).toBe(40);
    // A crashed claimant's lease runs out and the receipt is due again, attempt counted.
    await sql`update webhook_receipts set next_attempt_at = now() - interval '1 second' where id = ${ids[0]!}`;
    const again = await leaseDueReceipts(db.db, { limit: 100, leaseMs: 60_000 });
    expect(again.find((r) => r.id === ids[0])?.attempts).toBe(2);
  });

  it('deferral follows the schedule, honours Retry-After, and ends in failed, never deleted', async () => {
    const [stored] = await recordReceipts(db.db, [receipt('EV_DEFER')]);
    expect(await deferReceipt(db.db, { id: stored!.id, attempts: 1 }, 'provider down', 120_000)).toBe('pending');
    const [row] = await sql<{ wait: number }[]>`select extract(epoch from next_attempt_at - now())::float as wait from webhook_receipts where id = ${stored!.id}`;
    expect(row!.wait).toBeGreaterThan(110);
    expect(await deferReceipt(db.db, { id: stored!.id, attempts: 99 }, 'still down')).toBe('failed');
    const [back] = await getReceipts(db.db, [stored!.id]);
    expect(back).toMatchObject({ state: 'failed', lastError: 'still down' });
  });

  it('settling marks processed once; a settled receipt is not claimed again', async () => {
    const [stored] = await recordReceipts(db.db, [receipt('EV_SETTLE')]);
    await settleReceipts(db.db, [stored!.id], 'processed');
    await sql`update webhook_receipts set next_attempt_at = now() - interval '1 second' where id = ${stored!.id}`;
    expect((await leaseDueReceipts(db.db, { limit: 100, leaseMs: 1000 })).map((r) => r.id)).not.toContain(stored!.id);
    expect((await getReceipts(db.db, [stored!.id]))[0]).toMatchObject({ state: 'processed' });
  });

  it('retry delays grow, with jitter inside ±20%', () => {
    expect(nextRetryDelayMs(1, undefined, () => 0.5)).toBe(5_000);
    expect(nextRetryDelayMs(2, undefined, () => 0)).toBe(12_000);
    expect(nextRetryDelayMs(2, undefined, () => 1)).toBe(18_000);
    expect(nextRetryDelayMs(1, 30_000, () => 0.5)).toBe(30_000);
    expect(nextRetryDelayMs(1000)).toBeNull();
  });
});
