/**
 * A provider's 429 pauses that provider account for every path (webhooks, poller, sweep,
 * return-page sync, GoCardless recovery) until its Retry-After, across every gateway
 * process. Each call to a provider first asks whether its account is paused; a paused
 * account answers `rate_limited` with the time left, and nobody calls the provider.
 *
 * The shared state is `poller_health.paused_until`, which the poller's due-selection
 * already respects: one row per account. Before a call, the accounts paused right now are
 * read in one query for the whole fleet (at most every 250 ms, shared by every account and
 * every concurrent caller). This process's own pauses are also kept in memory, so it needs
 * no read to know it is paused.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { pauseAccount } from '../poller/health.js';
import { aroundProviderCalls } from './provider-calls.js';
import { ProviderError, type ProviderName, type Providers } from './types.js';

/** Used when a 429 names no Retry-After. */
export const DEFAULT_RATE_LIMIT_PAUSE_MS = 30_000;
/** A Retry-After beyond this is taken as a mistake, not an hour-long outage we impose on ourselves. */
export const MAX_RATE_LIMIT_PAUSE_MS = 60 * 60_000;

export interface RateLimitPauses {
  /** Milliseconds left of the account's pause; 0 when it is not paused. */
  remainingMs(provider: ProviderName, account: string): Promise<number>;
  /** Pauses the account for `ms` (never shortens a longer pause). */
  pause(provider: ProviderName, account: string, ms: number): Promise<void>;
  /** Ends a pause early, everywhere (an operator who knows the limit has reset). */
  resume(provider: ProviderName, account: string): Promise<void>;
}

/**
 * How long a read of the fleet's pauses is trusted. One read answers every account of every
 * provider: the poller's thousands of calls a minute, and webhooks spread over thousands of
 * merchants, cost at most four reads a second in all, not one per account; another
 * process's fresh 429 reaches this one within that time (its own 429s at once).
 */
const PAUSES_TRUSTED_MS = 250;

export function createRateLimitPauses(db: Db, onError: (error: unknown) => void = () => {}): RateLimitPauses {
  const local = new Map<string, number>();
  /** Every paused account at `readAt` (this process's clock), as the database's clock had it: key → paused-until here. */
  let shared: { readAt: number; until: Map<string, number> } | null = null;
  let reading: Promise<Map<string, number>> | null = null;

  const readShared = (): Promise<Map<string, number>> =>
    (reading ??= (async () => {
      try {
        // Computed by the database, against its own clock, like the poller's due-selection.
        const rows = await db.execute<{ provider: string; account: string; ms: number | string }>(sql`
          select provider, account, (extract(epoch from (paused_until - now())) * 1000)::float8 as ms
          from poller_health where paused_until > now()`);
        const now = Date.now();
        const until = new Map<string, number>();
        for (const row of rows) until.set(`${row.provider}\u0000${row.account}`, now + Math.ceil(Number(row.ms)));
        shared = { readAt: now, until };
        return until;
      } catch (error) {
        // The database is the shared memory of pauses; without it the call goes ahead
        // (and the sync that needs the database fails on its own).
        onError(error);
        return new Map<string, number>();
      } finally {
        reading = null;
      }
    })());

  return {
    async remainingMs(provider, account) {
      const key = `${provider}\u0000${account}`;
      const own = local.get(key);
      if (own !== undefined) {
        if (own > Date.now()) return own - Date.now();
        local.delete(key);
      }
      const paused = shared && Date.now() - shared.readAt < PAUSES_TRUSTED_MS ? shared.until : await readShared();
      const until = paused.get(key);
      return until !== undefined && until > Date.now() ? until - Date.now() : 0;
    },
    async pause(provider, account, ms) {
      const until = Date.now() + ms;
      const key = `${provider}\u0000${account}`;
      local.set(key, Math.max(local.get(key) ?? 0, until));
      try {
        await pauseAccount(db, provider, account, new Date(until));
      } catch (error) {
        onError(error);
      }
    },
    async resume(provider, account) {
      local.delete(`${provider}\u0000${account}`);
      shared = null;
      await db.execute(sql`update poller_health set paused_until = null where provider = ${provider} and account = ${account}`);
    },
  };
}

export function pauseMsFor(error: ProviderError): number {
  return Math.min(MAX_RATE_LIMIT_PAUSE_MS, Math.max(1000, error.retryAfterMs ?? DEFAULT_RATE_LIMIT_PAUSE_MS));
}

/**
 * Wraps every provider so each of its calls (the first argument of every method is the
 * account) checks the pause first and records a 429. Works for any adapter shape: the
 * extra methods (Mollie's lookups and list, GoCardless's events) are covered too; a list
 * paged lazily is checked before its first page, and a 429 on any page is recorded.
 */
export function withRateLimitPauses(providers: Providers, pauses: RateLimitPauses): Providers {
  return aroundProviderCalls(providers, (name) => ({
    async before(account) {
      const ms = await pauses.remainingMs(name, account);
      if (ms > 0) throw pausedError(name, account, ms);
    },
    async failed(account, error) {
      if (error instanceof ProviderError && error.code === 'rate_limited' && !refusedHere.has(error)) {
        await pauses.pause(name, account, pauseMsFor(error));
      }
    },
  }));
}

/** Refusals made here, not 429s from the provider: they must not extend the pause. */
const refusedHere = new WeakSet<ProviderError>();

function pausedError(provider: ProviderName, account: string, ms: number): ProviderError {
  const error = new ProviderError(provider, 'rate_limited', `${provider} account ${account} is paused for ${Math.ceil(ms / 1000)} s after a 429; not called`, true, ms);
  refusedHere.add(error);
  return error;
}
