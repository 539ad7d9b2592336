import { randomBytes } from 'node:crypto';

/** Public ids that sort by creation time (listing pages by id). */
export function newBankId(prefix: 'bcn' | 'bac'): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
}
