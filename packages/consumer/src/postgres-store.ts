/**
 * The consumer's store in Postgres (postgres.js). The unique keys decide: a duplicate
 * event id is an insert that does nothing, a stale version an update whose WHERE refuses
 * it, both race-free under concurrent deliveries. Call `migrate()` once.
 */
import type postgres from 'postgres';
import type { EventStore, StoreTransaction } from './consumer.js';

export interface PostgresStoreOptions {
  /** Table name prefix (default `gateway_consumer_`). */
  prefix?: string;
}

export function createPostgresStore(sql: postgres.Sql, options: PostgresStoreOptions = {}): EventStore<postgres.TransactionSql> & { migrate(): Promise<void> } {
  const prefix = options.prefix ?? 'gateway_consumer_';
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error('prefix must be lower-case letters, digits and _');
  const events = sql(`${prefix}events`);
  const versions = sql(`${prefix}versions`);
  const cursors = sql(`${prefix}cursors`);

  return {
    async migrate() {
      await sql`create table if not exists ${events} (event_id text primary key, type text not null, received_at timestamptz not null default now())`;
      await sql`create table if not exists ${versions} (key text primary key, version integer not null)`;
      await sql`create table if not exists ${cursors} (name text primary key, cursor text not null)`;
    },

    transaction<T>(work: (store: StoreTransaction<postgres.TransactionSql>) => Promise<T>): Promise<T> {
      return sql.begin(async (tx) => {
        const store: StoreTransaction<postgres.TransactionSql> = {
          tx,
          async claimEvent(eventId, type) {
            // The primary key, not a prior SELECT, decides whether the event is new.
            const rows = await tx`insert into ${events} (event_id, type) values (${eventId}, ${type}) on conflict do nothing returning 1`;
            return rows.length > 0;
          },
          async advanceVersion(key, version) {
            // Equal versions pass: one change can carry several events (payment.paid and
            // payment.refunded of version 1). The row lock orders concurrent ones.
            const rows = await tx`
              insert into ${versions} (key, version) values (${key}, ${version})
              on conflict (key) do update set version = excluded.version
              where ${versions}.version <= excluded.version
              returning 1`;
            return rows.length > 0;
          },
          async getCursor(name) {
            const [row] = await tx<{ cursor: string }[]>`select cursor from ${cursors} where name = ${name}`;
            return row?.cursor ?? null;
          },
          async setCursor(name, cursor) {
            await tx`insert into ${cursors} (name, cursor) values (${name}, ${cursor}) on conflict (name) do update set cursor = excluded.cursor`;
          },
        };
        return work(store);
      }) as Promise<T>;
    },
  };
}
