/**
 * The account registry's promises, counted at the database: a known account is answered
 * from memory (no query after the first), an unknown name costs one query however often
 * it is asked, and a change made elsewhere (another connection, as another process would,
 * by any statement) reaches the cache
 * through the table's NOTIFY trigger and LISTEN within a second, with no TTL to wait out.
 */
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsContext, webhookSecretsContext } from '../../src/accounts/accounts.js';
import { createAccountRegistry, LISTENED_TTL_MS, type AccountRegistry } from '../../src/accounts/registry.js';
import { createAccountSecrets } from '../../src/accounts/secrets.js';
import { insertAccount, updateAccount } from '../../src/accounts/store.js';
import { createDatabase, type Database } from '../../src/db/client.js';
import * as schema from '../../src/db/schema/index.js';
import { createInProcessLocker } from '../../src/lock/in-process-locker.js';
import { leaseDuePolls } from '../../src/poller/leases.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { eventually, testEnv } from '../helpers/deps.js';

let database: TestDatabase;
/** The other process: its own pool, making the changes. */
let writer: Database;
let client: postgres.Sql;
let registry: AccountRegistry;
let queries = 0;
const key = randomBytes(32).toString('base64');
const secrets = createAccountSecrets(key);

beforeAll(async () => {
  database = await createTestDatabase();
  writer = createDatabase(database.url, { max: 2 });
  // The registry's own pool, counting every statement it sends.
  client = postgres(database.url, { max: 2, onnotice: () => {}, debug: () => void queries++ });
  const env = testEnv({ DATABASE_URL: database.url, ACCOUNT_SECRETS_KEY: key });
  registry = createAccountRegistry({ db: drizzle(client, { schema }), listenSql: client, secrets, env, locker: createInProcessLocker({ waitMs: 100 }), logger: createLogger('silent') });
});

afterAll(async () => {
  await registry?.close();
  await client?.end();
  await writer?.close();
  await database?.drop();
});

async function store(name: string, apiKey: string, webhookSecrets?: string[]) {
  const sealed = await secrets.seal(JSON.stringify({ kind: 'apiKey', apiKey }), credentialsContext('mollie', name));
  const sealedSecrets = webhookSecrets ? await secrets.seal(JSON.stringify(webhookSecrets), webhookSecretsContext('mollie', name)) : null;
  await insertAccount(writer.db, {
    provider: 'mollie',
    name,
    externalId: `pfl_${name.replace(/[^a-z0-9]/g, '')}`,
    credentialsKind: 'apiKey',
    credentialsLast4: apiKey.slice(-4),
    credentialsKeyId: sealed.keyId,
    credentialsCiphertext: sealed.ciphertext,
    webhookSecretsKeyId: sealedSecrets?.keyId ?? null,
    webhookSecretsCiphertext: sealedSecrets?.ciphertext ?? null,
    lastCheckedAt: new Date(),
  });
}

describe('the account registry', () => {
  it('answers a known account from memory after the first read, credentials and secrets opened', async () => {
    await store('shop-1', 'test_registryshop1key', ['whsec_1']);
    const first = await registry.resolve('mollie', 'shop-1');
    expect(first).toMatchObject({ status: 'active', credentials: { kind: 'apiKey', apiKey: 'test_registryshop1key' }, webhookSecrets: ['whsec_1'] });
    await eventually(async () => registry.listening(), { what: 'LISTEN to be up' });
    await registry.resolve('mollie', 'shop-1');
    const before = queries;
    for (let i = 0; i < 200; i++) await registry.resolve('mollie', 'shop-1');
    const sourced = await registry.credentialsFor('mollie', 'shop-1');
    expect(await sourced!.bearer()).toBe('test_registryshop1key');
    expect(queries - before).toBe(0);
  });

  it('remembers an unknown name: a flood of it costs one query', async () => {
    await eventually(async () => registry.listening(), { what: 'LISTEN to be up' });
    const before = queries;
    const answers = await Promise.all(Array.from({ length: 200 }, () => registry.resolve('mollie', 'nobody-here')));
    expect(answers.every((answer) => answer === null)).toBe(true);
    expect(queries - before).toBe(1);
  });

  it('hears a change made through another connection within a second, long before any TTL', async () => {
    expect(LISTENED_TTL_MS).toBeGreaterThan(60_000);
    await store('shop-2', 'test_registryshop2key');
    // The creation's own notification comes back through LISTEN a moment later: let it pass.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await registry.resolve('mollie', 'shop-2'))?.status).toBe('active');
    // Unknown here first, then created elsewhere: the remembered "unknown" is dropped.
    expect(await registry.resolve('mollie', 'shop-3')).toBeNull();

    // Another process's change: a plain UPDATE on another connection (no store call here to
    // tell this process's registries directly), announced by the table's trigger.
    const changedAt = Date.now();
    await writer.sql`update accounts set status = 'broken', updated_at = now() where name = 'shop-2'`;
    await eventually(async () => (await registry.resolve('mollie', 'shop-2'))?.status === 'broken', { timeoutMs: 2_000, intervalMs: 20, what: 'the status change' });
    expect(Date.now() - changedAt).toBeLessThan(1_000);
    // Bookkeeping columns announce nothing: the entry stays in memory.
    await writer.sql`update accounts set last_checked_at = now() where name = 'shop-2'`;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = queries;
    expect((await registry.resolve('mollie', 'shop-2'))?.status).toBe('broken');
    expect(queries - before).toBe(0);
    // A creation through the store drops a remembered "unknown".
    await store('shop-3', 'test_registryshop3key');
    expect(await registry.resolve('mollie', 'shop-3')).not.toBeNull();
    expect(registry.cachedStatus('mollie', 'shop-2')).toBe('broken');
  });

  it('answers disabled accounts as no credentials', async () => {
    await store('shop-4', 'test_registryshop4key');
    expect(await registry.credentialsFor('mollie', 'shop-4')).not.toBeNull();
    await updateAccount(writer.db, 'mollie', 'shop-4', { status: 'disabled' });
    await eventually(async () => (await registry.credentialsFor('mollie', 'shop-4')) === null, { timeoutMs: 2_000, intervalMs: 20, what: 'the disable' });
  });
});

describe('polling of stored accounts', () => {
  it('leases the payments of an active stored account and never those of a disabled one', async () => {
    await store('shop-polled', 'test_registrypolledkey');
    await store('shop-off', 'test_registryoffkey');
    await updateAccount(writer.db, 'mollie', 'shop-off', { status: 'disabled' });
    for (const [id, account] of [['tr_registrypolled1', 'shop-polled'], ['tr_registryoff1', 'shop-off']] as const) {
      await writer.sql`
        insert into payments (provider, provider_payment_id, account, status, provider_status, amount_minor, currency, method, snapshot, fence, next_poll_at)
        values ('mollie', ${id}, ${account}, 'open', 'open', 1000, 'EUR', 'ideal', '{}'::jsonb, 0, now() - interval '1 minute')`;
    }
    const leased = await leaseDuePolls(writer.db, { owner: 'test', limit: 10, leaseMs: 60_000, providers: ['mollie'] });
    expect(leased.map((row) => row.providerPaymentId)).toEqual(['tr_registrypolled1']);
  });
});
