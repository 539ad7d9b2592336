import { LockBusyError, type LockOptions, type Locker } from './locker.js';

/** A lock for a gateway that runs as a single process (embedded mode, tests). */
export function createInProcessLocker(defaults: { waitMs: number }): Locker {
  // Each key holds the promise its current holder resolves on release; waiters queue behind it.
  const tails = new Map<string, Promise<void>>();

  async function withLock<T>(key: string, work: () => Promise<T>, options?: LockOptions): Promise<T> {
    const waitMs = options?.waitMs ?? defaults.waitMs;
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    tails.set(key, tail);

    let timer: NodeJS.Timeout | undefined;
    const acquired = await Promise.race([
      previous.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
    ]);
    clearTimeout(timer);
    if (!acquired) {
      // Leave our slot in the queue but free it the moment our turn comes.
      previous.then(release);
      void tail.then(() => tails.get(key) === tail && tails.delete(key));
      throw new LockBusyError(key, waitMs);
    }
    try {
      options?.alongside?.();
      return await work();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  }

  return { kind: 'in-process', withLock, close: async () => {} };
}
