/** ±20%, so that work failing together (a provider or sink coming back) is not retried at the same instant. */
const JITTER = 0.2;

export interface RetryDelayOptions {
  /** The other side's own hint (Retry-After); it wins when it asks for longer. */
  retryAfterMs?: number;
  /** The longest hint honoured: a bogus "come back next year" must not park work forever. */
  maxRetryAfterMs?: number;
  random?: () => number;
}

/**
 * Attempt `attempts` (1-based) failed: how long to wait before the next, from a schedule
 * that is data (one delay per attempt), jittered; null once the schedule is spent. A
 * hint never buys attempts past the schedule.
 */
export function retryDelayMs(schedule: readonly number[], attempts: number, options: RetryDelayOptions = {}): number | null {
  const base = schedule[attempts - 1];
  if (base === undefined) return null;
  const jittered = Math.round(base * (1 - JITTER + 2 * JITTER * (options.random ?? Math.random)()));
  return Math.max(jittered, Math.min(options.retryAfterMs ?? 0, options.maxRetryAfterMs ?? Infinity));
}
