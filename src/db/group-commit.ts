import type postgres from 'postgres';
import { DEFAULT_WRITE_BATCH_MAX } from '../config/env.js';
import type { DbOrTx } from './client.js';
import { poolClient } from './prepared.js';

/**
 * Group commit: many callers' small writes sent as one. While a flush is in flight, new
 * requests queue; when it returns, the queue goes as the next flush (at most `maxBatch`
 * requests). No timer: an idle request goes at once (after the current microtasks, so
 * requests made in the same tick share a flush), and under load a flush carries what
 * arrived while the previous one ran. Each request gets its own result or its own error.
 */

export interface GroupCommitOptions {
  /** Most requests one flush carries (at least 1). */
  maxBatch: number;
  /**
   * A batch whose flush failed with this error is run again one request per flush, so one
   * bad member fails alone. Only for errors after which nothing of the batch was applied
   * (the database refused a statement, so the transaction rolled back); any other error
   * (a lost connection: the outcome may be unknown) fails every member.
   */
  retryAlone?: (error: unknown) => boolean;
}

export interface GroupCommit<Req, Res> {
  submit(request: Req): Promise<Res>;
}

/** Runs one flush: one result per request, in the requests' order (throws to fail them all). */
export type Flush<Req, Res> = (requests: Req[]) => Promise<Res[]>;

interface Pending<Req, Res> {
  request: Req;
  resolve(value: Res): void;
  reject(error: unknown): void;
}

export function createGroupCommit<Req, Res>(flush: Flush<Req, Res>, options: GroupCommitOptions): GroupCommit<Req, Res> {
  const maxBatch = Math.max(1, Math.floor(options.maxBatch));
  const queue: Pending<Req, Res>[] = [];
  let running = false;

  async function runBatch(batch: Pending<Req, Res>[]): Promise<void> {
    try {
      const results = await flush(batch.map((pending) => pending.request));
      if (results.length !== batch.length) throw new Error(`a flush answered ${results.length} results for ${batch.length} requests`);
      batch.forEach((pending, index) => pending.resolve(results[index]!));
    } catch (error) {
      if (batch.length > 1 && options.retryAlone?.(error)) {
        await Promise.all(batch.map((pending) => runBatch([pending])));
        return;
      }
      for (const pending of batch) pending.reject(error);
    }
  }

  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) await runBatch(queue.splice(0, maxBatch));
    } finally {
      running = false;
    }
  }

  return {
    submit(request) {
      return new Promise<Res>((resolve, reject) => {
        queue.push({ request, resolve, reject });
        if (running) return;
        running = true;
        queueMicrotask(() => void drain());
      });
    },
  };
}

const batchMax = new WeakMap<postgres.Sql, number>();
const batchers = new WeakMap<postgres.Sql, Map<string, GroupCommit<never, unknown>>>();

/** How many writes one flush on this pool may carry (1: every write alone, as without batching). */
export function setWriteBatchMax(client: postgres.Sql, max: number): void {
  batchMax.set(client, max);
}

/**
 * The pool's group commit named `name`, created on first use; undefined inside a caller's
 * transaction (its statements run in it, one by one) or when batching is off for the pool.
 * One per pool and name, so every request of a process shares it.
 */
export function groupCommitOn<Req, Res>(db: DbOrTx, name: string, create: (maxBatch: number) => GroupCommit<Req, Res>): GroupCommit<Req, Res> | undefined {
  const client = poolClient(db);
  if (!client) return undefined;
  const max = batchMax.get(client) ?? DEFAULT_WRITE_BATCH_MAX;
  if (max <= 1) return undefined;
  let named = batchers.get(client);
  if (!named) batchers.set(client, (named = new Map()));
  let batcher = named.get(name) as GroupCommit<Req, Res> | undefined;
  if (!batcher) {
    batcher = create(max);
    named.set(name, batcher as GroupCommit<never, unknown>);
  }
  return batcher;
}

/**
 * The database refused a statement: its transaction rolled back, nothing of it was applied,
 * and the members may be retried one by one. Not a lost connection (class 08), nor an
 * operator's intervention (57: a terminated backend or a cancelled query), after which a
 * COMMIT's outcome may be unknown.
 */
export function refusedByDatabase(error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'PostgresError') return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && !code.startsWith('08') && !code.startsWith('57');
}
