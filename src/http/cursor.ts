import { badRequest } from './errors.js';

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
