import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../src/primitives/error-message.js';
import { parseRetryAfter } from '../../src/primitives/retry-after.js';

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
