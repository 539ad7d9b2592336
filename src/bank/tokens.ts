/**
 * Bank Account Data tokens, kept in Postgres and shared by every gateway process.
 *
 * `token/new` allows 100 calls an hour per company, so N processes must not each mint
 * one. A process uses its cached access token until shortly before it expires, then
 * re-reads the row; only when the row's token is also stale does it take the row lock
 * (SELECT ... FOR UPDATE), check again under the lock (another process may have just
 * refreshed: the loser re-reads and uses that), and refresh or mint. The update is
 * made under that lock, in the same transaction, so exactly one process renews each
 * expiring token.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { BankApiError, type BankClient, type TokenSource } from '../providers/gocardless-bank/client.js';

interface TokenRow {
  access: string | null;
  access_issued_at: Date | string | null;
  access_expires_at: Date | string | null;
  refresh: string | null;
  refresh_expires_at: Date | string | null;
  [key: string]: unknown;
}

const MAX_RENEW_MARGIN_MS = 5 * 60_000;

/** Renew when a quarter of the token's life (at most five minutes) is left. */
export function renewAt(issuedAt: number, expiresAt: number): number {
  return expiresAt - Math.min(MAX_RENEW_MARGIN_MS, (expiresAt - issuedAt) / 4);
}

const time = (value: Date | string | null) => (value === null ? null : new Date(value).getTime());

export interface TokenStoreOptions {
  db: Db;
  client: Pick<BankClient, 'mintToken' | 'refreshToken'>;
  secretId: string;
  secretKey: string;
  now?: () => number;
  /** Told about each token/new and token/refresh this process makes (metrics, logs). */
  onRenew?: (how: 'new' | 'refresh') => void;
}

export function createDbTokenSource(options: TokenStoreOptions): TokenSource {
  const now = options.now ?? Date.now;
  let cached: { access: string; renewAt: number } | null = null;

  const usable = (row: TokenRow | undefined, at: number): string | null => {
    if (!row?.access) return null;
    const issued = time(row.access_issued_at);
    const expires = time(row.access_expires_at);
    if (issued === null || expires === null || at >= renewAt(issued, expires)) return null;
    cached = { access: row.access, renewAt: renewAt(issued, expires) };
    return row.access;
  };

  async function renew(): Promise<string> {
    return options.db.transaction(async (tx) => {
      // The row must exist to be locked; a concurrent first insert is a no-op here.
      await tx.execute(sql`insert into bank_tokens (secret_id) values (${options.secretId}) on conflict (secret_id) do nothing`);
      const [row] = await tx.execute<TokenRow>(sql`
        select access, access_issued_at, access_expires_at, refresh, refresh_expires_at
        from bank_tokens where secret_id = ${options.secretId} for update`);
      // The loser of the race finds the winner's fresh token here and uses it.
      const fresh = usable(row, now());
      if (fresh) return fresh;
      const at = now();
      const refreshExpires = time(row?.refresh_expires_at ?? null);
      // A refresh token about to lapse mid-call is not worth trying.
      if (row?.refresh && refreshExpires !== null && refreshExpires - at > 10_000) {
        try {
          const refreshed = await options.client.refreshToken(row.refresh);
          options.onRenew?.('refresh');
          await tx.execute(sql`
            update bank_tokens set access = ${refreshed.access},
              access_issued_at = ${new Date(at).toISOString()}::timestamptz,
              access_expires_at = ${new Date(at + refreshed.access_expires * 1000).toISOString()}::timestamptz,
              updated_at = now()
            where secret_id = ${options.secretId}`);
          cached = { access: refreshed.access, renewAt: renewAt(at, at + refreshed.access_expires * 1000) };
          return refreshed.access;
        } catch (error) {
          // A refused refresh token falls through to a new one; anything else is retried later.
          if (!(error instanceof BankApiError) || error.kind !== 'access_refused') throw error;
        }
      }
      const minted = await options.client.mintToken(options.secretId, options.secretKey);
      options.onRenew?.('new');
      await tx.execute(sql`
        update bank_tokens set access = ${minted.access},
          access_issued_at = ${new Date(at).toISOString()}::timestamptz,
          access_expires_at = ${new Date(at + minted.access_expires * 1000).toISOString()}::timestamptz,
          refresh = ${minted.refresh},
          refresh_expires_at = ${new Date(at + minted.refresh_expires * 1000).toISOString()}::timestamptz,
          updated_at = now()
        where secret_id = ${options.secretId}`);
      cached = { access: minted.access, renewAt: renewAt(at, at + minted.access_expires * 1000) };
      return minted.access;
    });
  }

  return {
    async access() {
      if (cached && now() < cached.renewAt) return cached.access;
      const [row] = await options.db.execute<TokenRow>(sql`
        select access, access_issued_at, access_expires_at, refresh, refresh_expires_at
        from bank_tokens where secret_id = ${options.secretId}`);
      return usable(row, now()) ?? renew();
    },
    async invalidate(token) {
      cached = null;
      // Guarded by the token itself: a process that already replaced it keeps its new one.
      await options.db.execute(sql`
        update bank_tokens set access_expires_at = access_issued_at
        where secret_id = ${options.secretId} and access = ${token}`);
    },
  };
}
