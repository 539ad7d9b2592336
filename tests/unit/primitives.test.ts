import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../src/primitives/error-message.js';
import { parseRetryAfter } from '../../src/primitives/retry-after.js';
import { retryDelayMs } from '../../src/primitives/retry-delay.js';

describe('errorMessage', () => {
  it("takes an Error's message, a subclass's too, and writes anything else as text", () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage(new TypeError('bad type'))).toBe('bad type');
    expect(errorMessage('plain string')).toBe('plain string');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage({ message: 'not an Error' })).toBe('[object Object]');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-03-20T09:00:00Z');

  it('reads delay-seconds and HTTP dates, a past date as now', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Fri, 20 Mar 2026 09:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Fri, 20 Mar 2026 08:00:00 GMT', now)).toBe(0);
  });

  it('ignores what is neither: absent, negative, fractional, garbage', () => {
    for (const value of [null, undefined, '', '   ', '-5', '-0', '1.5', '+5', 'soon', 'in 5 seconds']) {
      expect(parseRetryAfter(value, now), String(value)).toBeUndefined();
    }
  });

  it('does not cap: a far date comes back as it is, for the caller to cap', () => {
    expect(parseRetryAfter('Sat, 20 Mar 2027 09:00:00 GMT', now)).toBe(365 * 86_400_000);
  });
});

describe('retryDelayMs', () => {
  const schedule = [1000, 60_000];

  it('follows the schedule with ±20% jitter, then gives up', () => {
    expect(retryDelayMs(schedule, 1, { random: () => 0 })).toBe(800);
    expect(retryDelayMs(schedule, 1, { random: () => 0.5 })).toBe(1000);
    expect(retryDelayMs(schedule, 1, { random: () => 1 })).toBe(1200);
    expect(retryDelayMs(schedule, 2, { random: () => 0.5 })).toBe(60_000);
    expect(retryDelayMs(schedule, 3)).toBeNull();
    expect(retryDelayMs([], 1)).toBeNull();
  });

  it('honours a longer hint, never a shorter one, and caps it only when asked', () => {
    expect(retryDelayMs(schedule, 1, { retryAfterMs: 30_000, random: () => 0.5 })).toBe(30_000);
    expect(retryDelayMs(schedule, 1, { retryAfterMs: 10, random: () => 0.5 })).toBe(1000);
    expect(retryDelayMs(schedule, 1, { retryAfterMs: 30_000, maxRetryAfterMs: 5000, random: () => 0.5 })).toBe(5000);
    // The cap limits the hint, never the schedule's own delay.
    expect(retryDelayMs(schedule, 2, { retryAfterMs: 30_000, maxRetryAfterMs: 5000, random: () => 0.5 })).toBe(60_000);
    // A hint does not buy attempts past the schedule.
    expect(retryDelayMs(schedule, 3, { retryAfterMs: 30_000 })).toBeNull();
  });
});
