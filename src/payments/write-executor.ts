import type postgres from 'postgres';
import type { DbOrTx } from '../db/client.js';
import { poolClient, type Statement } from '../db/prepared.js';

/**
 * The one place that runs a write's statements. A write is one transaction of two
 * steps: the statement that opens it (and answers rows), then the statement that ends
 * it, chosen from that answer.
 *
 * On the pool (the usual case) the transaction is pipelined on one reserved connection:
 * BEGIN travels with the opening statements and COMMIT with the last, so a write (or a
 * group of writes committed together) costs two round trips, with the same statements
 * in the same transaction.
 * The statements are prepared once per connection. Given a caller's transaction, the
 * same statements run one by one inside a savepoint of it.
 */

export interface WriteSteps {
  /** The statements that open the transaction, run in order: each one's rows. */
  open<T>(statements: Statement[]): Promise<T[][]>;
  /** The statements that end it, run in order, then the commit. */
  finish(statements: Statement[]): Promise<void>;
}

/**
 * `ownsCommit`: the executor opened the transaction and commits it itself (on the pool),
 * so the last statement may decide how that commit is made durable; inside a caller's
 * transaction the commit is the caller's.
 */
export type WriteBody<T> = (steps: WriteSteps, ownsCommit: boolean) => Promise<T>;

export async function runWrite<T>(db: DbOrTx, body: WriteBody<T>): Promise<T> {
  const client = poolClient(db);
  if (client) return runPipelined(client, body);
  return db.transaction(async (tx) =>
    body(
      {
        open: async <R>(statements: Statement[]) => {
          const answers: R[][] = [];
          for (const statement of statements) answers.push((await tx.execute(statement.sql())) as unknown as R[]);
          return answers;
        },
        finish: async (statements) => {
          for (const statement of statements) await tx.execute(statement.sql());
        },
      },
      false,
    ),
  );
}

async function runPipelined<T>(client: postgres.Sql, body: WriteBody<T>): Promise<T> {
  const connection = await client.reserve();
  let healthy = true;
  const run = (statement: Statement) => {
    const { text, params } = statement.query();
    return connection.unsafe(text, params, { prepare: true });
  };
  try {
    return await body(
      {
        // Queries issued together on one connection are sent together and answered in order.
        open: async <R>(statements: Statement[]) => {
          const [, ...answers] = await Promise.all([connection.unsafe('begin'), ...statements.map(run)]);
          return answers as unknown as R[][];
        },
        finish: async (statements) => {
          // If a statement fails, the ones behind it are refused and the COMMIT ends the
          // aborted transaction as a rollback; the first failure is the one thrown.
          await Promise.all([...statements.map(run), connection.unsafe('commit')]);
        },
      },
      true,
    );
  } catch (error) {
    // Never hand a connection back inside a transaction (a no-op with a warning if none is open).
    healthy = await connection.unsafe('rollback').then(
      () => true,
      (rollbackError: unknown) => !connectionLost(rollbackError),
    );
    throw error;
  } finally {
    // A connection lost while reserved is already back among the pool's closed ones, and
    // reconnects when next needed; releasing it would list its dead socket as open, and
    // the pool would hand queries to it (postgres.js's release does not check).
    if (healthy) connection.release();
  }
}

const LOST_CONNECTION = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

function connectionLost(error: unknown): boolean {
  return LOST_CONNECTION.has(String((error as { code?: unknown } | null)?.code));
}
