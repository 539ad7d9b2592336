import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type postgres from 'postgres';
import type { DbOrTx } from './client.js';

/**
 * Hot statements as named prepared statements. drizzle's `db.execute` sends every
 * statement unprepared, so Postgres parses and plans the large guarded upsert (and the
 * receipt insert) on every call; prepared once per connection, they are only bound and
 * run. Only for statements whose text is fixed (values travel as parameters): postgres.js
 * keeps one prepared statement per distinct text on each connection.
 */

const dialect = new PgDialect();

/** The postgres.js pool behind a drizzle database; undefined for a transaction handle. */
export function poolClient(db: DbOrTx): postgres.Sql | undefined {
  const client = (db as { $client?: postgres.Sql }).$client;
  return typeof client?.reserve === 'function' ? client : undefined;
}

/** A drizzle SQL object as postgres.js text and parameters. */
export function toQuery(query: SQL): { text: string; params: postgres.ParameterOrJSON<never>[] } {
  const { sql, params } = dialect.sqlToQuery(query);
  return { text: sql, params: params as postgres.ParameterOrJSON<never>[] };
}

/** Runs `query` prepared on the pool, or through drizzle inside a caller's transaction. */
export async function executePrepared<T extends Record<string, unknown>>(db: DbOrTx, query: SQL): Promise<T[]> {
  const client = poolClient(db);
  if (!client) return (await db.execute<T>(query)) as unknown as T[];
  const { text, params } = toQuery(query);
  return (await client.unsafe(text, params, { prepare: true })) as unknown as T[];
}
