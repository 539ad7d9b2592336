/** At most `limit` pieces of work at once; the rest wait their turn, first come first served. */
export interface ConcurrencyLimit {
  run<T>(work: () => Promise<T>): Promise<T>;
}

export function createConcurrencyLimit(limit: number): ConcurrencyLimit {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(work) {
      if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      else active++;
      try {
        return await work();
      } finally {
        // Hand the slot straight to the next waiter, or free it.
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}
