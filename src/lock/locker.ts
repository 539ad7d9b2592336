/**
 * Per-payment mutual exclusion. The lock is an optimisation, not the arbiter: it
 * serialises provider fetches for one payment and spares the provider's API, while
 * the database's unique constraint and guarded upsert keep the data right even when
 * a lock is lost or Redis is gone.
 */
export interface LockOptions {
  waitMs?: number;
  /**
   * Called as each attempt to take the lock is sent, in the same tick. A Redis command it
   * sends on the lock's first client goes in the same write as the attempt (auto-pipelining)
   * and runs right after it there: a read meant for under the lock costs no round trip of
   * its own. What the successful attempt's call sent is what `work` should use; the others
   * ran while someone else held the lock. The in-process lock calls it once, when held.
   */
  alongside?: () => void;
}

export interface Locker {
  /**
   * Runs `work` while holding `key`, waiting at most `waitMs` for it.
   * Throws LockBusyError when someone else kept it that long, and
   * LockUnavailableError when the lock service itself cannot be reached.
   */
  withLock<T>(key: string, work: () => Promise<T>, options?: LockOptions): Promise<T>;
  readonly kind: 'redlock' | 'in-process';
  close(): Promise<void>;
}

export class LockBusyError extends Error {
  override readonly name = 'LockBusyError';
  constructor(readonly key: string, waitedMs: number) {
    super(`lock ${key} is held elsewhere; gave up after ${waitedMs} ms`);
  }
}

export class LockUnavailableError extends Error {
  override readonly name = 'LockUnavailableError';
  constructor(readonly key: string, options?: { cause?: unknown }) {
    super(`lock service unreachable while taking ${key}`, options);
  }
}

export function paymentLockKey(provider: string, providerPaymentId: string): string {
  return `payment:${provider}:${providerPaymentId}`;
}
