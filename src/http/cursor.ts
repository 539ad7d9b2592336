import { z } from 'zod';
import { badRequest } from './errors.js';

/**
 * One bound for every list route's `limit` (payments, events, dead letters): a client
 * that pages one of them with 1000 can page all of them the same way. Each route keeps
 * its own default.
 */
export const MAX_PAGE_LIMIT = 1000;

export const pageLimit = (defaultLimit: number) =>
  z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT, `must be at most ${MAX_PAGE_LIMIT}`).default(defaultLimit);

/** Opaque page cursors: base64url JSON, so their shape can change without breaking clients. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, check: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badRequest('cursor is not one this API issued');
  }
  if (!check(value)) throw badRequest('cursor is not one this API issued');
  return value;
}
