/**
 * The accounts table's own guarantees, below the HTTP layer: one row per provider-side
 * identity and one per name, decided by the unique indexes even when many inserts race.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { disableAccount, getAccount, insertAccount, listAccountRows, updateAccount, type NewAccountRow } from '../../src/accounts/store.js';
import { createDatabase, type Database } from '../../src/db/client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Database;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase(database.url, { max: 20 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

beforeEach(async () => {
  await db.sql`truncate accounts restart identity`;
});

const row = (name: string, externalId: string, provider: 'mollie' | 'gocardless' = 'mollie'): NewAccountRow => ({
  provider,
  name,
  externalId,
  credentialsKind: 'apiKey',
  credentialsLast4: 'abcd',
  credentialsKeyId: 'k_0000000000000000',
  credentialsCiphertext: 'sealed',
  webhookSecretsKeyId: null,
  webhookSecretsCiphertext: null,
  lastCheckedAt: new Date(),
});

describe('accounts store', () => {
  it('creates, finds the same identity under its first name, and refuses a name of another identity', async () => {
    expect((await insertAccount(db.db, row('shop-a', 'pfl_a'))).outcome).toBe('created');
    const again = await insertAccount(db.db, row('shop-a-again', 'pfl_a'));
    expect(again).toMatchObject({ outcome: 'existing', account: { name: 'shop-a', externalId: 'pfl_a' } });
    const taken = await insertAccount(db.db, row('shop-a', 'pfl_b'));
    expect(taken).toMatchObject({ outcome: 'name_taken', account: { name: 'shop-a', externalId: 'pfl_a' } });
    // Names and identities are per provider.
    expect((await insertAccount(db.db, row('shop-a', 'pfl_a', 'gocardless'))).outcome).toBe('created');
    expect(Number((await db.sql`select count(*) as n from accounts`)[0]!.n)).toBe(2);
  });

  it('lets exactly one row in per identity and per name when 50 inserts race', async () => {
    // 40 distinct merchants, 10 of them created a second time under another name, all at once.
    const inputs = [
      ...Array.from({ length: 40 }, (_, i) => row(`m-${i}`, `pfl_${i}`)),
      ...Array.from({ length: 10 }, (_, i) => row(`m-${i}-dup`, `pfl_${i}`)),
    ];
    const results = await Promise.all(inputs.map((input) => insertAccount(db.db, input)));
    expect(results.filter((result) => result.outcome === 'created')).toHaveLength(40);
    const existing = results.filter((result) => result.outcome === 'existing');
    expect(existing).toHaveLength(10);
    for (const result of existing) expect(result.account.name).toMatch(/^m-\d+(-dup)?$/);
    const rows = await db.sql<{ external_id: string }[]>`select external_id from accounts`;
    expect(rows).toHaveLength(40);
    expect(new Set(rows.map((r) => r.external_id)).size).toBe(40);
  });

  it('pages by id, filters, updates and disables', async () => {
    for (let i = 0; i < 5; i++) await insertAccount(db.db, row(`p-${i}`, `pfl_${i}`));
    const first = await listAccountRows(db.db, { limit: 3 });
    expect(first.map((a) => a.name)).toEqual(['p-0', 'p-1', 'p-2']);
    const rest = await listAccountRows(db.db, { limit: 3, afterId: first.at(-1)!.id });
    expect(rest.map((a) => a.name)).toEqual(['p-3', 'p-4']);

    const broken = await updateAccount(db.db, 'mollie', 'p-1', { status: 'broken', brokenSince: new Date(), lastError: 'refused' });
    expect(broken).toMatchObject({ status: 'broken', lastError: 'refused' });
    expect(broken!.updatedAt.getTime()).toBeGreaterThanOrEqual(broken!.createdAt.getTime());
    expect((await listAccountRows(db.db, { limit: 10, status: 'broken' })).map((a) => a.name)).toEqual(['p-1']);

    expect(await disableAccount(db.db, 'mollie', 'p-2')).toMatchObject({ status: 'disabled' });
    expect((await getAccount(db.db, 'mollie', 'p-2'))!.status).toBe('disabled');
    expect(await disableAccount(db.db, 'mollie', 'nope')).toBeUndefined();
    expect(await getAccount(db.db, 'gocardless', 'p-2')).toBeUndefined();
  });
});
