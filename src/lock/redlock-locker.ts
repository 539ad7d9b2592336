import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock';
import type { Logger } from 'pino';
import { errorMessage } from '../primitives/error-message.js';
import { LockBusyError, LockUnavailableError, type LockOptions, type Locker } from './locker.js';

export interface RedlockLockerOptions {
  ttlMs: number;
  waitMs: number;
  /** Extend the lock while work runs. Off only in tests that need a lock to lapse. */
  autoExtend?: boolean;
  keyPrefix?: string;
  logger?: Logger;
  onLost?: (key: string) => void;
}

/** Redis clients tuned to fail fast: a Redis outage must cost milliseconds, not seconds. */
export function createRedisClients(urls: string[], timeoutMs: number): Redis[] {
  return urls.map(
    (url) =>
      new Redis(url, {
        connectTimeout: timeoutMs * 4,
        commandTimeout: timeoutMs,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        // Keep reconnecting in the background; calls fail fast meanwhile.
        retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
        lazyConnect: false,
        // Commands issued in the same tick (concurrent webhooks' lock acquisitions,
        // extensions, releases and recent-fetch records) travel as one write and one read.
        enableAutoPipelining: true,
      }),
  );
}

/**
 * Redlock over one or more independent Redis nodes (a quorum when there are several).
 * Release is redlock's atomic compare-and-delete; a timer extends the lock while work runs.
 *
 * The release is sent as the work ends, and `withLock` returns without waiting for Redis to
 * answer it: the caller's answer (a webhook's acknowledgement) does not wait a round trip on
 * a lock that matters only to the next holder. Sent before anything that caller does next,
 * so the next lock attempt from this process, on the same connection, comes after it; one
 * from another process may find the lock still held for that round trip, and waits as for
 * any holder. `close()` waits for the releases still under way.
 */
export function createRedlockLocker(clients: Redis[], options: RedlockLockerOptions): Locker {
  const retryDelay = 50;
  const redlock = new Redlock(clients, {
    driftFactor: 0.01,
    // Retries are ours (below), so that an unreachable Redis is told apart from a busy lock.
    retryCount: 0,
    retryDelay,
    retryJitter: 25,
    automaticExtensionThreshold: 500,
  });
  // Redlock emits errors for failed votes; they are already surfaced through acquire/extend.
  redlock.on('error', () => {});
  useLockValues(redlock, pooledLockValues());
  const prefix = options.keyPrefix ?? '';
  const releasing = new Set<Promise<unknown>>();

  async function acquire(key: string, waitMs: number, alongside?: () => void): Promise<Lock> {
    const started = Date.now();
    for (;;) {
      try {
        // Redlock sends its script before its first await: what `alongside` sends now
        // follows it in the same write to the first node.
        const attempt = redlock.acquire([prefix + key], options.ttlMs);
        alongside?.();
        return await attempt;
      } catch (error) {
        if (!(error instanceof ExecutionError)) throw new LockUnavailableError(key, { cause: error });
        const stats = await Promise.all(error.attempts);
        const busy = stats.some((attempt) => [...attempt.votesAgainst.values()].some((vote) => vote instanceof ResourceLockedError));
        if (!busy) throw new LockUnavailableError(key, { cause: firstVoteError(stats) ?? error });
        if (Date.now() - started >= waitMs) throw new LockBusyError(key, Date.now() - started);
        await new Promise((resolve) => setTimeout(resolve, retryDelay + Math.random() * 25));
      }
    }
  }

  async function withLock<T>(key: string, work: () => Promise<T>, opts?: LockOptions): Promise<T> {
    let lock = await acquire(key, opts?.waitMs ?? options.waitMs, opts?.alongside);
    let extender: NodeJS.Timeout | undefined;
    let lost = false;
    if (options.autoExtend !== false) {
      const schedule = () => {
        extender = setTimeout(async () => {
          try {
            lock = await lock.extend(options.ttlMs);
            schedule();
          } catch (error) {
            lost = true;
            options.onLost?.(key);
            options.logger?.warn({ key, err: errorMessage(error) }, 'lock extension failed; continuing on database guarantees');
          }
        }, Math.max(10, options.ttlMs / 2));
      };
      schedule();
    }
    try {
      return await work();
    } finally {
      clearTimeout(extender);
      if (!lost) {
        // Atomic compare-and-delete: never removes a lock that has passed to someone else.
        // Not awaited (see above); a failure leaves the lock to expire with its TTL.
        const release = lock.release().catch(() => {});
        releasing.add(release);
        void release.finally(() => releasing.delete(release));
      }
    }
  }

  return {
    kind: 'redlock',
    withLock,
    // The clients belong to whoever created them (buildDeps closes them, after this).
    close: async () => {
      await Promise.all(releasing);
    },
  };
}

/**
 * Each lock's value, as redlock makes it (16 random bytes in hex, from the system's secure
 * generator), but drawn from 4 KiB asked for at once: 16 bytes asked for per lock cost
 * about 6.5 µs of CPU each on a 2-core VM, one system call per webhook.
 */
export function pooledLockValues(): () => string {
  let pool = Buffer.alloc(0);
  let offset = 0;
  return () => {
    if (offset + 16 > pool.length) {
      pool = randomBytes(4096);
      offset = 0;
    }
    const value = pool.toString('hex', offset, offset + 16);
    offset += 16;
    return value;
  };
}

/** Redlock 5 takes a lock's value from its `_random` method; the locker's tests check it is still there. */
function useLockValues(redlock: Redlock, next: () => string): void {
  const internals = redlock as unknown as { _random?: () => string };
  if (typeof internals._random === 'function') internals._random = next;
}

function firstVoteError(stats: { votesAgainst: Map<unknown, Error> }[]): Error | undefined {
  for (const attempt of stats) for (const error of attempt.votesAgainst.values()) return error;
  return undefined;
}

