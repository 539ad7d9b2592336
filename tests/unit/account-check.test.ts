import { describe, expect, it } from 'vitest';
import { accountCheckTickMs, scrubDetail } from '../../src/accounts/check-job.js';

describe('the account check', () => {
  it('never keeps a secret the provider echoes back, and bounds the message', () => {
    const credentials = { kind: 'oauth' as const, accessToken: 'access_Secret123456', refreshToken: 'refresh_Secret654321', expiresAt: '2026-12-07T17:00:00Z' };
    expect(scrubDetail('token access_Secret123456 refused (refresh_Secret654321)', credentials)).toBe('token [redacted] refused ([redacted])');
    expect(scrubDetail('x'.repeat(2000), { kind: 'apiKey', apiKey: 'test_abcdefgh' })).toHaveLength(500);
    expect(scrubDetail('Missing authentication', null)).toBe('Missing authentication');
  });

  it('looks for due accounts a tenth of the interval apart, between 100 ms and 5 s', () => {
    expect(accountCheckTickMs(300_000)).toBe(5000);
    expect(accountCheckTickMs(20_000)).toBe(2000);
    expect(accountCheckTickMs(500)).toBe(100);
  });
});
