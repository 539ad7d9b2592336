/**
 * Exact money parsing. Amounts travel as decimal strings (Mollie) or integer
 * minor units (GoCardless) and are stored as integer minor units; a float never
 * touches them.
 */

// ISO 4217 minor-unit exponents that differ from the default of 2.
const EXPONENTS: Record<string, number> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0,
  UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};

export class MoneyError extends Error {
  override readonly name = 'MoneyError';
}

const CURRENCY = /^[A-Z]{3}$/;

export function currencyExponent(currency: string): number {
  if (!CURRENCY.test(currency)) throw new MoneyError(`invalid currency code ${JSON.stringify(currency)}: expected three upper-case letters (ISO 4217)`);
  return EXPONENTS[currency] ?? 2;
}

/**
 * "10.00" EUR → 1000, "1000" JPY → 1000, "1.500" KWD → 1500.
 * The number of decimals must match the currency exactly, as Mollie sends them:
 * "0.5" EUR is rejected rather than guessed at.
 */
export function parseDecimalAmount(value: string, currency: string): number {
  const exponent = currencyExponent(currency);
  const pattern = exponent === 0 ? /^(-?)(\d+)$/ : new RegExp(`^(-?)(\\d+)\\.(\\d{${exponent}})$`);
  const match = pattern.exec(value);
  if (!match) {
    const shape = exponent === 0 ? 'whole units with no decimals' : `exactly ${exponent} decimals`;
    throw new MoneyError(`invalid ${currency} amount ${JSON.stringify(value)}: expected ${shape}`);
  }
  const [, sign, whole, fraction = ''] = match;
  const minor = BigInt(whole! + fraction) * (sign === '-' ? -1n : 1n);
  if (minor > BigInt(Number.MAX_SAFE_INTEGER) || minor < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MoneyError(`${currency} amount ${JSON.stringify(value)} is out of range`);
  }
  return Number(minor);
}

/** Integer minor units from a provider that sends them as numbers (GoCardless). */
export function parseMinorUnits(value: unknown, currency: string): number {
  currencyExponent(currency);
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new MoneyError(`invalid ${currency} minor-unit amount ${JSON.stringify(value)}: expected an integer`);
  }
  return value;
}

/** 1000 EUR minor units → "10.00"; the inverse of parseDecimalAmount. */
export function formatMinorUnits(minor: number, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = minor < 0;
  const digits = Math.abs(minor).toString().padStart(exponent + 1, '0');
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const fraction = exponent === 0 ? '' : `.${digits.slice(-exponent)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}
