import { describe, expect, it } from 'vitest';
import { classify429, readRateLimitHeaders } from '../../src/providers/gocardless-bank/client.js';
import { accountIsBroken, connectionStatusOf, normaliseDecimal, settles, toImportRows } from '../../src/providers/gocardless-bank/mapping.js';
import { renewAt } from '../../src/bank/tokens.js';

describe('bank transaction mapping', () => {
  const base = { bookingDate: '2026-12-01', valueDate: '2026-12-01', transactionAmount: { amount: '45.00', currency: 'EUR' }, debtorName: 'ACME', remittanceInformationUnstructured: 'Invoice 1' };

  it('keys booked rows by internalTransactionId, then transactionId, then a fingerprint', () => {
    const [a, b, c] = toImportRows([{ ...base, internalTransactionId: 'I1', transactionId: 'T1' }, { ...base, transactionId: 'T2' }, { ...base }], 'booked');
    expect(a!.dedupeKey).toBe('i:I1');
    expect(b!.dedupeKey).toBe('t:T2');
    expect(c!.dedupeKey).toMatch(/^f:[A-Za-z0-9_-]{32}$/);
  });

  it('keys pending rows by content, so a re-issued id is the same row, and keeps identical ones apart', () => {
    const first = toImportRows([{ ...base, transactionId: 'P1' }, { ...base, transactionId: 'P2' }], 'pending');
    const reissued = toImportRows([{ ...base, transactionId: 'P9' }, { ...base, transactionId: 'P8' }], 'pending');
    expect(first.map((r) => r.dedupeKey)).toEqual(reissued.map((r) => r.dedupeKey));
    expect(first[0]!.dedupeKey).not.toBe(first[1]!.dedupeKey);
    expect(first[0]!.internalTransactionId).toBeNull();
  });

  it('reads amounts exactly, signed, whatever decimals the bank sends', () => {
    const rows = toImportRows(
      [
        { ...base, transactionAmount: { amount: '-10.5', currency: 'EUR' } },
        { ...base, transactionAmount: { amount: '45', currency: 'EUR' } },
        { ...base, transactionAmount: { amount: '1000', currency: 'JPY' } },
        { ...base, transactionAmount: { amount: '0.10000', currency: 'EUR' } },
      ],
      'booked',
    );
    expect(rows.map((r) => r.amountMinor)).toEqual([-1050, 4500, 1000, 10]);
    expect(normaliseDecimal('1.005', 'EUR')).toBe('1.005');
    expect(() => toImportRows([{ ...base, transactionAmount: { amount: '1.005', currency: 'EUR' } }], 'booked')).toThrow(/EUR/);
  });

  it('takes the counterparty by direction and the remittance from whichever field is there', () => {
    const [out] = toImportRows([{ ...base, transactionAmount: { amount: '-5.00', currency: 'EUR' }, creditorName: 'Shop', debtorName: 'Me', remittanceInformationUnstructured: undefined, remittanceInformationUnstructuredArray: ['Card', ' 1234'] }], 'booked');
    expect(out).toMatchObject({ counterparty: 'Shop', remittance: 'Card 1234' });
  });

  it('settles a pending row with a booked one: same amount, close dates, agreeing counterparty or remittance', () => {
    const [booked] = toImportRows([{ ...base, remittanceInformationUnstructured: 'rewritten on booking', bookingDate: '2026-12-03' }], 'booked');
    const pending = { amountMinor: 4500, currency: 'EUR', date: '2026-12-01', counterparty: 'acme', remittance: 'Invoice 1' };
    expect(settles(booked!, pending)).toBe(true);
    expect(settles(booked!, { ...pending, amountMinor: 4501 })).toBe(false);
    expect(settles(booked!, { ...pending, currency: 'GBP' })).toBe(false);
    expect(settles(booked!, { ...pending, date: '2026-11-20' })).toBe(false);
    expect(settles(booked!, { ...pending, counterparty: 'Someone else' })).toBe(false);
    expect(settles(booked!, { ...pending, counterparty: null, remittance: null })).toBe(true);
  });

  it('maps every requisition and account status', () => {
    expect(connectionStatusOf('LN')).toBe('linked');
    expect(connectionStatusOf('RJ')).toBe('rejected');
    expect(connectionStatusOf('EX')).toBe('expired');
    expect(connectionStatusOf('SU')).toBe('suspended');
    expect(connectionStatusOf('GA')).toBeNull();
    expect(['DISCOVERED', 'PROCESSING', 'READY', 'ERROR', 'SUSPENDED', 'EXPIRED'].map((s) => accountIsBroken(s as never))).toEqual([false, false, false, true, true, true]);
  });
});

describe('bank rate limits', () => {
  it('reads both spellings of the rate-limit headers', () => {
    const x = readRateLimitHeaders(new Headers({ 'X-RateLimit-Account-Success-Remaining': '0', 'X-RateLimit-Account-Success-Reset': '85092', 'X-RateLimit-Remaining': '99' }));
    expect(x).toMatchObject({ accountSuccessRemaining: 0, accountSuccessResetSeconds: 85092, remaining: 99 });
    const http = readRateLimitHeaders(new Headers({ HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING: '3', HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET: '60', HTTP_X_RATELIMIT_LIMIT: '100' }));
    expect(http).toMatchObject({ accountSuccessRemaining: 3, accountSuccessResetSeconds: 60, limit: 100 });
  });

  it("tells the bank's daily limit from GoCardless's own, and reads the reset", () => {
    const daily = classify429({ summary: 'Rate limit exceeded', detail: 'The rate limit for this resource is 4/day. Please try again in 85092 seconds', status_code: 429 }, {});
    expect(daily).toMatchObject({ kind: 'daily_limit', retryAfterMs: 85_092_000 });
    const institution = classify429({ summary: "Couldn't update account transactions", detail: 'Daily request limit set by the Institution has been exceeded.', type: 'RateLimitError' }, { accountSuccessResetSeconds: 3600 });
    expect(institution).toMatchObject({ kind: 'daily_limit', retryAfterMs: 3_600_000 });
    const noReset = classify429({ detail: 'Daily request limit set by the Institution has been exceeded.' }, {}, Date.parse('2026-12-07T23:00:00Z'));
    expect(noReset.retryAfterMs).toBe(3_600_000);
    const minute = classify429({ summary: 'Rate limit exceeded', detail: 'The rate limit for this resource is 100/min. Please try again in 12 seconds', status_code: 429 }, {});
    expect(minute).toMatchObject({ kind: 'rate_limited', retryAfterMs: 12_000 });
  });

  it('renews a token when a quarter of its life (at most five minutes) is left', () => {
    expect(renewAt(0, 2000)).toBe(1500);
    expect(renewAt(0, 86_400_000)).toBe(86_400_000 - 300_000);
  });
});
