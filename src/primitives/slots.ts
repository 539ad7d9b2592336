/**
 * A limit on work in flight shared by callers that come and go: each `run` waits for a
 * free slot. Unlike forEachLimited (one list known up front), the work arrives from
 * independent callers over time, e.g. every GoCardless batch being processed in one
 * process at once shares the same few slots.
 */
export interface Slots {
  run<T>(work: () => Promise<T>): Promise<T>;
}

export function createSlots(limit: number): Slots {
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
