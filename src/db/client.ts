import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { setWriteBatchMax } from './group-commit.js';
import * as schema from './schema/index.js';

export type Db = PostgresJsDatabase<typeof schema>;
/** A transaction handle has the same query surface as the database. */
export type DbOrTx = Db | Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  db: Db;
  sql: postgres.Sql;
  close(): Promise<void>;
}

/**
 * `writeBatchMax`: how many concurrent writes (receipts, fences, snapshots) one flush may
 * carry (src/db/group-commit.ts); 1 writes each alone. Defaults to DEFAULT_WRITE_BATCH_MAX.
 */
export function createDatabase(url: string, options: { max?: number; writeBatchMax?: number; onnotice?: () => void } = {}): Database {
  const sql = postgres(url, {
    max: options.max ?? 10,
    // Silence NOTICEs such as "relation already exists, skipping" from migrations.
    onnotice: options.onnotice ?? (() => {}),
    connect_timeout: 10,
    // Reconnect within a second after Postgres goes away. The driver's default backoff
    // grows to 20 s, and queries queued for a connection wait through it: during a
    // restart requests hung past a provider's webhook timeout instead of getting a quick
    // 503, and recovery afterwards took seconds (tests/integration/faults-postgres.test.ts).
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2),
    // int8 comes back as a JS number: ids, fences and minor units all stay far below 2^53.
    types: {
      int8: {
        to: 20,
        from: [20],
        serialize: (value: number | bigint | string) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  });
  if (options.writeBatchMax !== undefined) setWriteBatchMax(sql, options.writeBatchMax);
  const db = drizzle(sql, { schema });
  return { db, sql, close: () => sql.end({ timeout: 5 }) };
}

// Any constant works; it only has to be the same in every gateway process.
const MIGRATION_LOCK = 727_001;

/**
 * Applies pending migrations. Several processes may start at once: an advisory lock
 * makes the second wait for the first rather than race it.
 */
export async function runMigrations(url: string, migrationsFolder: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      await migrate(drizzle(sql), { migrationsFolder });
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Creates the database named in `url` when the server does not have it yet. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) return false;
  const probe = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await probe`select 1`;
    return false;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error;
  } finally {
    await probe.end({ timeout: 5 });
  }
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`create database "${name.replaceAll('"', '""')}"`);
  } catch (error) {
    // Another process created it between our probe and our create: 42P04, or 23505 when
    // both creates reach the catalogue at the same instant.
    const code = (error as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') throw error;
  } finally {
    await sql.end({ timeout: 5 });
  }
  return true;
}
