import { describe, expect, it } from 'vitest';
import { outcomeLabel } from '../../src/observability/metrics.js';

describe('outcomeLabel', () => {
  it('spells every outcome in snake_case, error classes without their suffix', () => {
    expect(outcomeLabel('LockBusyError')).toBe('lock_busy');
    expect(outcomeLabel('LockUnavailableError')).toBe('lock_unavailable');
    expect(outcomeLabel('ProviderError')).toBe('provider');
    expect(outcomeLabel('rate_limited')).toBe('rate_limited');
    expect(outcomeLabel('TypeError')).toBe('type');
    expect(outcomeLabel('Error')).toBe('error');
    expect(outcomeLabel('error')).toBe('error');
    expect(outcomeLabel('')).toBe('error');
    expect(outcomeLabel('bad-response')).toBe('bad_response');
  });
});
