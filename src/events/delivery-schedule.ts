import { retryDelayMs } from '../primitives/retry-delay.js';

/**
 * When to try an outbound delivery again. The schedule is data: delays after each
 * failed attempt, Standard Webhooks' example spanning about three days. Past the last
 * one the delivery becomes a dead letter for an operator to re-drive.
 */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const DEFAULT_DELIVERY_DELAYS_MS: readonly number[] = [
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  14 * HOUR,
  20 * HOUR,
  24 * HOUR,
];

/** A sink's Retry-After is honoured up to this; a bogus "come back next year" must not park events forever. */
export const MAX_RETRY_AFTER_MS = 24 * HOUR;

/**
 * Attempt `attempts` (1-based) failed: how long to wait before the next, or null when
 * the schedule is spent. A sink's Retry-After wins when it asks for longer, up to a day.
 */
export function nextDeliveryDelayMs(
  attempts: number,
  schedule: readonly number[] = DEFAULT_DELIVERY_DELAYS_MS,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number | null {
  return retryDelayMs(schedule, attempts, { retryAfterMs, maxRetryAfterMs: MAX_RETRY_AFTER_MS, random });
}
