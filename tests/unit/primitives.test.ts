import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../src/primitives/error-message.js';
import { forEachLimited } from '../../src/primitives/for-each-limited.js';
import { parseRetryAfter } from '../../src/primitives/retry-after.js';
import { retryDelayMs } from '../../src/primitives/retry-delay.js';
import { createSlots } from '../../src/primitives/slots.js';

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

describe('forEachLimited', () => {
  it('never runs more than the limit at once, and runs everything', async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimited(Array.from({ length: 20 }, (_, i) => i), 3, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(i);
      running--;
    });
    expect(peak).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('finishes the others before rethrowing the first failure', async () => {
    const seen: number[] = [];
    await expect(
      forEachLimited([1, 2, 3, 4], 2, async (i) => {
        if (i === 2) throw new Error('boom');
        seen.push(i);
      }),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([1, 3, 4]);
  });

  it('starts nothing once the signal aborts, and hands back the items never started', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const skipped = await forEachLimited(
      [1, 2, 3, 4, 5],
      2,
      async (i) => {
        seen.push(i);
        if (i === 2) controller.abort();
        await new Promise((resolve) => setImmediate(resolve));
      },
      controller.signal,
    );
    expect(seen).toEqual([1, 2]);
    expect(skipped).toEqual([3, 4, 5]);
  });

  it('returns nothing skipped without a signal, and copes with an empty list', async () => {
    expect(await forEachLimited([1, 2], 8, async () => {})).toEqual([]);
    expect(await forEachLimited([], 4, async () => {})).toEqual([]);
  });
});

describe('createSlots', () => {
  it('shares one limit between callers that arrive separately, and hands a freed slot to the next in line', async () => {
    const slots = createSlots(2);
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const job = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      order.push(name);
      running--;
      return name;
    };
    // Two "batches", each running its items side by side through the same slots.
    const first = Promise.all(['a1', 'a2', 'a3'].map((name) => slots.run(job(name))));
    const second = Promise.all(['b1', 'b2'].map((name) => slots.run(job(name))));
    expect(await first).toEqual(['a1', 'a2', 'a3']);
    expect(await second).toEqual(['b1', 'b2']);
    expect(peak).toBe(2);
    // Waiters are served first come, first served.
    expect(order).toEqual(['a1', 'a2', 'a3', 'b1', 'b2']);
  });

  it('frees the slot when the work throws', async () => {
    const slots = createSlots(1);
    await expect(slots.run(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await slots.run(async () => 'next')).toBe('next');
  });
});
