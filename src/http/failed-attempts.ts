import type { Context } from 'hono';

/**
 * A throttle on failed credential attempts (wrong bearer tokens on /v1, wrong tokens on
 * the console's sign-in), per source address and overall, in fixed one-minute windows.
 *
 * It only ever judges FAILED attempts: the token is checked first, and a right token
 * always passes, however many wrong ones came before from anywhere, so an attacker can
 * never lock the operator out. Past the limit a wrong attempt is answered 429 with a
 * Retry-After instead of 401, and is no longer logged one line each. What stops a
 * brute force is the token itself (ADMIN_TOKEN has at least 16 characters; a random
 * 32-character one is out of reach at any rate): the throttle bounds what a guesser
 * costs (log lines, responses) and makes one visible.
 *
 * State lives in this process (per isolate on Workers), bounded in size: several
 * processes each allow their own share, which is fine for a bound of this kind.
 */
export interface FailedAttempts {
  /** Records a failed attempt from `source`; returns the seconds to wait when it is past a limit, else 0. */
  fail(source: string): number;
}

export interface FailedAttemptLimits {
  perSource: number;
  overall: number;
  windowMs: number;
  now?: () => number;
}

export const DEFAULT_FAILED_ATTEMPT_LIMITS: FailedAttemptLimits = { perSource: 10, overall: 100, windowMs: 60_000 };

/** Sources remembered at once; past it the oldest are forgotten (an attacker with many addresses still meets the overall limit). */
const MAX_SOURCES = 10_000;

export function createFailedAttempts(limits: FailedAttemptLimits = DEFAULT_FAILED_ATTEMPT_LIMITS): FailedAttempts {
  const now = limits.now ?? Date.now;
  const sources = new Map<string, { windowStart: number; count: number }>();
  let overall = { windowStart: 0, count: 0 };

  return {
    fail(source) {
      const at = now();
      const windowStart = at - (at % limits.windowMs);
      if (overall.windowStart !== windowStart) overall = { windowStart, count: 0 };
      overall.count++;
      let entry = sources.get(source);
      if (!entry || entry.windowStart !== windowStart) {
        sources.delete(source);
        entry = { windowStart, count: 0 };
        sources.set(source, entry);
        if (sources.size > MAX_SOURCES) sources.delete(sources.keys().next().value!);
      }
      entry.count++;
      if (entry.count > limits.perSource || overall.count > limits.overall) {
        return Math.max(1, Math.ceil((windowStart + limits.windowMs - at) / 1000));
      }
      return 0;
    },
  };
}

/**
 * The caller's address: the socket's peer on Node, Cloudflare's header on Workers.
 * X-Forwarded-For is not trusted (anyone can write it); behind a proxy every caller
 * shares the proxy's address and the per-source limit acts like the overall one.
 */
export function sourceOf(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? c.req.header('cf-connecting-ip') ?? 'unknown';
}
