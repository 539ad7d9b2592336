/**
 * Work a request starts but does not wait for (processing a GoCardless batch after
 * its acknowledgement, a slow Mollie sync past its deadline). Node keeps such promises
 * so that shutdown can wait for them; Workers hand them to `ctx.waitUntil`.
 */
export interface BackgroundWork {
  defer(work: Promise<unknown>): void;
  /** Resolves when everything deferred so far has settled. */
  drain(): Promise<void>;
}

export function createBackgroundWork(onError: (error: unknown) => void): BackgroundWork {
  const pending = new Set<Promise<unknown>>();
  return {
    defer(work) {
      const tracked = work.catch(onError).finally(() => pending.delete(tracked));
      pending.add(tracked);
    },
    async drain() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
