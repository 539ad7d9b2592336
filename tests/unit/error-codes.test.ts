import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/http/error-codes.js';
import { AppError } from '../../src/http/errors.js';

/** code → status as the README's "Error codes" table lists them. */
function readmeErrorCodes(): Record<string, number> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.split('\n### Error codes\n')[1]!.split('\n### ')[0]!;
  const listed: Record<string, number> = {};
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells.length < 4 || !/^\d{3}$/.test(cells[2]!)) continue;
    for (const [, code] of cells[1]!.matchAll(/`([a-z_]+)`/g)) listed[code!] = Number(cells[2]);
  }
  return listed;
}

describe('error code catalogue', () => {
  it('the README lists every code with the status the catalogue gives it, and no other', () => {
    const catalogue = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, entry]) => [code, entry.status]));
    expect(readmeErrorCodes()).toEqual(catalogue);
  });

  it('an AppError answers with its code\'s status', () => {
    expect(new AppError('signature_invalid', 'x').status).toBe(498);
    expect(new AppError('invalid_signature', 'x').status).toBe(401);
    expect(new AppError('provider_rate_limited', 'x', true).status).toBe(503);
    expect(new AppError('provider_timeout', 'x', true).status).toBe(502);
  });
});
