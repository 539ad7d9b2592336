/**
 * Runs `work` over `items` with at most `limit` in flight. Spares the provider's API,
 * the database pool and the sinks when one batch, page or pass holds hundreds of items.
 *
 * `work` should not throw; if it does, the other items still run and the first error is
 * rethrown once every lane has finished, so no work is left running behind the caller.
 * Once `signal` aborts, no further item starts; the items never started are returned
 * (none without a signal), for the caller to hand back.
 *
 * For a limit shared by callers that come and go (several batches in flight at once),
 * see slots.ts: this one bounds a single list known up front.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<T[]> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length && !signal?.aborted) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(lanes);
  if (failure) throw (failure as { error: unknown }).error;
  return items.slice(next);
}
