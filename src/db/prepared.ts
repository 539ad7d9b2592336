import { isDeepStrictEqual } from 'node:util';
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

export interface PgQuery {
  text: string;
  params: postgres.ParameterOrJSON<never>[];
}

/** A drizzle SQL object as postgres.js text and parameters. */
export function toQuery(query: SQL): PgQuery {
  const { sql, params } = dialect.sqlToQuery(query);
  return { text: sql, params: params as postgres.ParameterOrJSON<never>[] };
}

/** A statement as drizzle SQL (inside a caller's transaction) or as text and parameters (on the pool). */
export interface Statement {
  sql(): SQL;
  query(): PgQuery;
}

/** A statement rendered by drizzle on every call. */
export function renderedStatement(build: () => SQL): Statement {
  return { sql: build, query: () => toQuery(build()) };
}

const fixedTexts = new Map<string, string>();

/**
 * A hot statement whose text depends only on `shape`, not on its values. drizzle renders
 * it the first time; later calls reuse that text with `params()` as the parameters, so
 * no SQL object is built or rendered per call. `params()` must list the values in the
 * order `build()` interpolates them: the first rendering of each shape compares the two
 * and throws if they differ, and the statements' tests compare them for inputs whose
 * values are all distinct, so a builder and its parameter list cannot drift apart unseen.
 */
export function fixedTextStatement(shape: string, build: () => SQL, params: () => unknown[]): Statement {
  return {
    sql: build,
    query: () => {
      const values = params() as postgres.ParameterOrJSON<never>[];
      let text = fixedTexts.get(shape);
      if (text === undefined) {
        const rendered = toQuery(build());
        if (!isDeepStrictEqual(rendered.params, values)) {
          throw new Error(`statement ${shape}: its parameter list is out of step with its SQL builder`);
        }
        text = rendered.text;
        fixedTexts.set(shape, text);
      }
      return { text, params: values };
    },
  };
}

/** Runs `query` prepared on the pool, or through drizzle inside a caller's transaction. */
export async function executePrepared<T extends Record<string, unknown>>(db: DbOrTx, query: SQL): Promise<T[]> {
  const client = poolClient(db);
  if (!client) return (await db.execute<T>(query)) as unknown as T[];
  const { text, params } = toQuery(query);
  return (await client.unsafe(text, params, { prepare: true })) as unknown as T[];
}
