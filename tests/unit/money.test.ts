import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMinorUnits, MoneyError, parseDecimalAmount, parseMinorUnits } from '../../src/money.js';

describe('exact money', () => {
  it.each([
    ['10.00', 'EUR', 1000],
    ['0.01', 'EUR', 1],
    ['49.95', 'EUR', 4995],
    ['1000', 'JPY', 1000],
    ['1.500', 'KWD', 1500],
    ['-5.00', 'EUR', -500],
    ['90071992547409.91', 'EUR', 9007199254740991],
  ])('%s %s → %i minor units', (value, currency, minor) => {
    expect(parseDecimalAmount(value, currency)).toBe(minor);
  });

  it.each([
    ['0.5', 'EUR', /invalid EUR amount "0.5": expected exactly 2 decimals/],
    ['abc', 'EUR', /invalid EUR amount "abc"/],
    ['10', 'EUR', /exactly 2 decimals/],
    ['10.00', 'JPY', /whole units with no decimals/],
    ['1e3', 'EUR', /invalid/],
    ['', 'EUR', /invalid/],
    [' 10.00', 'EUR', /invalid/],
    ['10.00', 'eur', /invalid currency code "eur"/],
    ['99999999999999999.00', 'EUR', /out of range/],
  ])('%j %s is refused with a clear error', (value, currency, message) => {
    expect(() => parseDecimalAmount(value, currency)).toThrow(MoneyError);
    expect(() => parseDecimalAmount(value, currency)).toThrow(message);
  });

  it('integer minor units are taken as they are, and nothing else is', () => {
    expect(parseMinorUnits(1500, 'GBP')).toBe(1500);
    expect(() => parseMinorUnits(15.5, 'GBP')).toThrow(/expected an integer/);
    expect(() => parseMinorUnits('1500', 'GBP')).toThrow(/expected an integer/);
  });

  it('format and parse are inverse for every currency exponent', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e12, max: 1e12 }), fc.constantFrom('EUR', 'JPY', 'KWD', 'GBP', 'CLF'), (minor, currency) => {
        expect(parseDecimalAmount(formatMinorUnits(minor, currency), currency)).toBe(minor);
      }),
    );
  });
});
