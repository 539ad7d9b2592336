import { describe, expect, it } from 'vitest';
import { createGroupCommit, refusedByDatabase } from '../../src/db/group-commit.js';

/** A flush the test finishes by hand, recording what each flush carried. */
function manualFlush<Req>() {
  const flushes: Req[][] = [];
  const finishers: Array<() => void> = [];
  const flush = (requests: Req[]) => {
    flushes.push(requests);
    return new Promise<string[]>((resolve) => finishers.push(() => resolve(requests.map((r) => `done ${String(r)}`))));
  };
  const finishNext = async () => {
    while (finishers.length === 0) await new Promise((resolve) => setImmediate(resolve));
    finishers.shift()!();
  };
  return { flush, flushes, finishNext };
}

class FakePostgresError extends Error {
  override readonly name = 'PostgresError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

describe('createGroupCommit', () => {
  it('sends an idle request at once, queues what arrives while a flush is in flight, and sends the queue as the next flush', async () => {
    const { flush, flushes, finishNext } = manualFlush<number>();
    const batcher = createGroupCommit(flush, { maxBatch: 10 });
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushes).toEqual([[1]]);
    const later = [2, 3, 4].map((n) => batcher.submit(n));
    await new Promise((resolve) => setImmediate(resolve));
    // Still one flush: the others wait for it rather than start their own.
    expect(flushes).toEqual([[1]]);
    await finishNext();
    expect(await first).toBe('done 1');
    await finishNext();
    expect(await Promise.all(later)).toEqual(['done 2', 'done 3', 'done 4']);
    expect(flushes).toEqual([[1], [2, 3, 4]]);
  });

  it('requests made in the same tick share a flush, at most maxBatch of them', async () => {
    const { flush, flushes, finishNext } = manualFlush<number>();
    const batcher = createGroupCommit(flush, { maxBatch: 3 });
    const all = [1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n));
    await finishNext();
    await finishNext();
    await finishNext();
    expect(await Promise.all(all)).toHaveLength(7);
    expect(flushes).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('a refused batch is retried one request per flush, so only the bad one fails', async () => {
    const flushes: number[][] = [];
    const batcher = createGroupCommit(
      async (requests: number[]) => {
        flushes.push(requests);
        if (requests.includes(13)) throw new FakePostgresError('refused', '23505');
        return requests.map((n) => n * 2);
      },
      { maxBatch: 10, retryAlone: refusedByDatabase },
    );
    const results = await Promise.allSettled([1, 13, 3].map((n) => batcher.submit(n)));
    expect(results).toEqual([
      { status: 'fulfilled', value: 2 },
      { status: 'rejected', reason: expect.objectContaining({ message: 'refused' }) },
      { status: 'fulfilled', value: 6 },
    ]);
    expect(flushes).toEqual([[1, 13, 3], [1], [13], [3]]);
  });

  it('a batch lost with its connection fails every member, with no retry behind their backs', async () => {
    let calls = 0;
    const lost = Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' });
    const batcher = createGroupCommit(
      async (requests: number[]) => {
        calls++;
        throw requests.length > 0 ? lost : new Error('unreachable');
      },
      { maxBatch: 10, retryAlone: refusedByDatabase },
    );
    const results = await Promise.allSettled([1, 2, 3].map((n) => batcher.submit(n)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(calls).toBe(1);
    expect(refusedByDatabase(new FakePostgresError('terminating connection', '57P01'))).toBe(false);
    expect(refusedByDatabase(new FakePostgresError('connection failure', '08006'))).toBe(false);
  });

  it('keeps working after a failed flush', async () => {
    let fail = true;
    const batcher = createGroupCommit(
      async (requests: number[]) => {
        if (fail) throw new Error('boom');
        return requests;
      },
      { maxBatch: 4 },
    );
    await expect(batcher.submit(1)).rejects.toThrow('boom');
    fail = false;
    expect(await batcher.submit(2)).toBe(2);
  });
});
