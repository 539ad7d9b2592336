import { sleep } from '../abortable-sleep.js';

/**
 * A token bucket per provider account, in this process. It paces this process's polls;
 * the provider's own limit is per account across every process, so with N gateway
 * processes set the rate to about (provider limit / N). What keeps all processes
 * honest when that is wrong is the provider's 429: its Retry-After becomes
 * poller_health.paused_until, which every process's due-selection respects.
 */
export interface TokenBucketOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Bucket size: how many polls may go out at once after a quiet spell. */
  burst: number;
  now?: () => number;
}

export interface RateLimiter {
  /** Resolves when a token for `key` is taken; false when the signal aborted first. */
  take(key: string, signal?: AbortSignal): Promise<boolean>;
  /** How long until a token for `key` would be available, without taking it. */
  waitMs(key: string): number;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
}

export function createTokenBucket(options: TokenBucketOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const rate = options.ratePerSecond / 1000;
  const burst = Math.max(1, options.burst);
  const buckets = new Map<string, Bucket>();

  function refill(key: string): Bucket {
    const at = now();
    let bucket = buckets.get(key);
    if (!bucket) {
      bucket = { tokens: burst, refilledAt: at };
      buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + (at - bucket.refilledAt) * rate);
    bucket.refilledAt = at;
    return bucket;
  }

  function waitMs(key: string): number {
    const bucket = refill(key);
    return bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / rate);
  }

  async function take(key: string, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted) return false;
      const bucket = refill(key);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return true;
      }
      // Several waiters may wake together; the loop lets only as many through as there are tokens.
      await sleep(Math.ceil((1 - bucket.tokens) / rate), signal);
    }
  }

  return { take, waitMs };
}
