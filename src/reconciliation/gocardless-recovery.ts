/**
 * Recovers GoCardless events whose webhooks never came (endpoint down for longer than
 * GoCardless retries, a misrouted or refused batch). Pages `GET /events` from a stored
 * watermark and feeds every event through the same receipts path as a webhook, where
 * the event id de-duplicates what was already received.
 *
 * Paging (docs/providers.md#gocardless-api-polling-and-recovery): GoCardless's default
 * order is not documented and the sandbox lists newest first, so a pass never relies on order. It filters
 * `created_at[gt] = watermark - overlap`, follows `after` until it is null, and only
 * then moves the watermark to the newest `created_at` it saw. Events created while a
 * pass runs are newer than that, so the next pass finds them; events that become
 * visible late with an older `created_at` are caught by the overlap.
 *
 * The cursor row (provider_cursors: gocardless / account / 'events') holds the
 * watermark in `cursor`, and in `state` the pass in progress (its filter and `after`
 * page cursor), so a pass stopped by a rate limit resumes where it stopped rather
 * than starting again.
 */
import { sql } from 'drizzle-orm';
import { dueStoredAccounts } from '../db/queries/sweeps.js';
import type { Deps } from '../deps.js';
import { LockBusyError, LockUnavailableError } from '../lock/locker.js';
import { errorMessage } from '../primitives/error-message.js';
import type { GoCardlessProvider } from '../providers/gocardless/client.js';
import { ProviderError } from '../providers/types.js';
import { processGoCardlessReceipts, storeGoCardlessEvents } from '../webhooks/gocardless-receipts.js';
import { sleep } from '../abortable-sleep.js';

const CURSOR_NAME = 'events';

/** What recovery uses: its cursor, lock and provider, and the receipts path every recovered event goes through. */
export type RecoveryDeps = Pick<Deps, 'db' | 'env' | 'clock' | 'locker' | 'providers' | 'logger' | 'metrics' | 'accounts'> &
  Parameters<typeof storeGoCardlessEvents>[0] &
  Parameters<typeof processGoCardlessReceipts>[0];

export interface RecoverGoCardlessEventsOptions {
  account: string;
  /** Events per page, 1..500 (GoCardless's maximum by default). */
  pageLimit?: number;
  /** Pages in one call; a longer backlog continues on the next call (outcome 'incomplete'). */
  maxPages?: number;
  /** How far behind the watermark each pass starts again. Default 5 minutes. */
  overlapMs?: number;
  /** Where the very first pass starts, before any watermark exists. Default 1 hour ago. */
  initialLookbackMs?: number;
  /** Stop the pass when the rate limit has this few requests left, leaving them to payment fetches. */
  reserveRequests?: number;
  /** Skip the pass when one completed less than this long ago (several processes share one cursor). */
  minIntervalMs?: number;
  signal?: AbortSignal;
}

export type RecoveryOutcome =
  | 'completed'
  | 'incomplete'
  | 'rate_limited'
  | 'deferred'
  | 'busy'
  | 'failed'
  | 'not_configured';

export interface RecoveryResult {
  outcome: RecoveryOutcome;
  pages: number;
  events: number;
  newEvents: number;
  duplicates: number;
  /** `created_at` of the newest event every earlier one is known to be received up to. */
  watermark: string | null;
  /** When the next pass should start (a rate limit's reset, or the interval). */
  nextAt: Date;
  error?: string;
}

interface PassState {
  /** The `created_at[gt]` bound this pass pages under. */
  gt: string;
  /** The page cursor to continue from; null before the first page. */
  after: string | null;
  /** Newest `created_at` seen so far in this pass. */
  maxSeen: string | null;
}

interface CursorState {
  pass: PassState | null;
  /** No request before this (a rate limit's reset). */
  resumeAt: string | null;
  /** When the last pass completed. */
  completedAt: string | null;
  /** The lower bound used while no watermark exists, so an idle account keeps its starting point. */
  floor: string | null;
}

interface StoredCursor {
  watermark: string | null;
  state: CursorState;
}

const EMPTY_STATE: CursorState = { pass: null, resumeAt: null, completedAt: null, floor: null };

async function loadCursor(deps: RecoveryDeps, account: string): Promise<StoredCursor> {
  const rows = await deps.db.execute<{ cursor: string | null; state: Partial<CursorState> | null }>(sql`
    select cursor, state from provider_cursors
    where provider = 'gocardless' and account = ${account} and name = ${CURSOR_NAME}`);
  const row = rows[0];
  return { watermark: row?.cursor ?? null, state: { ...EMPTY_STATE, ...(row?.state ?? {}) } };
}

/** Written only after the receipts of every page it covers are durable. */
async function saveCursor(deps: RecoveryDeps, account: string, cursor: StoredCursor): Promise<void> {
  await deps.db.execute(sql`
    insert into provider_cursors (provider, account, name, cursor, state, updated_at)
    values ('gocardless', ${account}, ${CURSOR_NAME}, ${cursor.watermark}, ${JSON.stringify(cursor.state)}::jsonb, now())
    on conflict (provider, account, name) do update
      set cursor = excluded.cursor, state = excluded.state, updated_at = now()`);
}

function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

function gocardlessClient(deps: RecoveryDeps): GoCardlessProvider | null {
  const provider = deps.providers.gocardless;
  if (!provider || !('listEvents' in provider)) return null;
  return provider as GoCardlessProvider;
}

/** The client, when the account is the env's or an active stored one. */
async function gocardlessProvider(deps: RecoveryDeps, account: string): Promise<GoCardlessProvider | null> {
  const provider = gocardlessClient(deps);
  if (!provider) return null;
  if (provider.hasAccount(account)) return provider;
  const stored = await deps.accounts.resolve('gocardless', account);
  return stored?.status === 'active' ? provider : null;
}

/**
 * One recovery pass for one account (or the rest of one, after a rate limit). Safe to
 * run from several processes: the lock keeps them from paging side by side, and
 * without it the receipts still de-duplicate every event.
 */
export async function recoverGoCardlessEvents(deps: RecoveryDeps, options: RecoverGoCardlessEventsOptions): Promise<RecoveryResult> {
  const started = performance.now();
  const interval = deps.env.GOCARDLESS_EVENTS_INTERVAL_MS || 300_000;
  const empty = { pages: 0, events: 0, newEvents: 0, duplicates: 0 };
  let result: RecoveryResult;
  const provider = await gocardlessProvider(deps, options.account);
  if (!provider) {
    result = { outcome: 'not_configured', ...empty, watermark: null, nextAt: new Date(deps.clock.now().getTime() + interval) };
  } else {
    const key = `gocardless:events:${options.account}`;
    try {
      result = await deps.locker.withLock(key, () => runPass(deps, provider, options, interval), { waitMs: 0 });
    } catch (error) {
      if (error instanceof LockBusyError) {
        result = { outcome: 'busy', ...empty, watermark: null, nextAt: new Date(deps.clock.now().getTime() + interval) };
      } else if (error instanceof LockUnavailableError) {
        deps.logger.warn({ job: 'gocardless-recovery', key }, 'lock service unreachable; recovering without it');
        result = await runPass(deps, provider, options, interval);
      } else {
        throw error;
      }
    }
  }
  deps.metrics.eventRecoveryPasses.inc({ provider: 'gocardless', outcome: result.outcome });
  const level = result.outcome === 'failed' ? 'warn' : 'info';
  deps.logger[level](
    { job: 'gocardless-recovery', account: options.account, ...result, nextAt: result.nextAt.toISOString(), ms: Math.round(performance.now() - started) },
    'gocardless events recovery pass',
  );
  return result;
}

async function runPass(deps: RecoveryDeps, provider: GoCardlessProvider, options: RecoverGoCardlessEventsOptions, interval: number): Promise<RecoveryResult> {
  const account = options.account;
  const pageLimit = options.pageLimit ?? 500;
  const maxPages = options.maxPages ?? 100;
  const overlapMs = options.overlapMs ?? 5 * 60_000;
  const reserve = options.reserveRequests ?? 25;
  const now = deps.clock.now();
  const cursor = await loadCursor(deps, account);
  const counts = { pages: 0, events: 0, newEvents: 0, duplicates: 0 };
  const finish = (outcome: RecoveryOutcome, nextAt: Date, error?: string): RecoveryResult => ({
    outcome,
    ...counts,
    watermark: cursor.watermark,
    nextAt,
    ...(error !== undefined && { error }),
  });

  const resumeAt = cursor.state.resumeAt ? new Date(cursor.state.resumeAt) : null;
  if (resumeAt && resumeAt > now) return finish('deferred', resumeAt);
  const completedAt = cursor.state.completedAt ? Date.parse(cursor.state.completedAt) : null;
  if (!cursor.state.pass && options.minIntervalMs && completedAt !== null && now.getTime() - completedAt < options.minIntervalMs) {
    return finish('deferred', new Date(completedAt + options.minIntervalMs));
  }

  let floor = cursor.state.floor;
  if (cursor.state.pass === null && cursor.watermark === null && floor === null) {
    floor = new Date(now.getTime() - (options.initialLookbackMs ?? 60 * 60_000)).toISOString();
  }
  const pass: PassState = cursor.state.pass ?? {
    gt: cursor.watermark !== null ? new Date(Date.parse(cursor.watermark) - overlapMs).toISOString() : floor!,
    after: null,
    maxSeen: null,
  };
  cursor.state = { ...cursor.state, pass, resumeAt: null, floor };

  for (let page = 0; page < maxPages; page++) {
    if (options.signal?.aborted) {
      await saveCursor(deps, account, cursor);
      return finish('incomplete', new Date());
    }
    let listed;
    try {
      listed = await provider.listEvents(account, {
        limit: pageLimit,
        createdAt: { gt: pass.gt },
        ...(pass.after !== null && { after: pass.after }),
        ...(options.signal && { signal: options.signal }),
      });
    } catch (error) {
      if (error instanceof ProviderError && error.code === 'rate_limited') {
        // Stop here; the pass resumes from the same page once the window resets.
        const until = new Date(deps.clock.now().getTime() + (error.retryAfterMs ?? 60_000));
        cursor.state.resumeAt = until.toISOString();
        await saveCursor(deps, account, cursor);
        return finish('rate_limited', until, error.message);
      }
      const message = errorMessage(error);
      if (error instanceof ProviderError && !error.retryable) {
        // A refused request (a page cursor GoCardless no longer knows, say) would be
        // refused again: start the next pass afresh from the watermark.
        cursor.state.pass = null;
      }
      await saveCursor(deps, account, cursor);
      return finish('failed', new Date(deps.clock.now().getTime() + Math.min(interval, 60_000)), message);
    }

    counts.pages += 1;
    counts.events += listed.events.length;
    if (listed.events.length > 0) {
      const stored = await storeGoCardlessEvents(deps, { account, events: listed.events.map((event) => ({ event, raw: event })), origin: 'fetched' });
      counts.newEvents += stored.newReceiptIds.length;
      counts.duplicates += stored.duplicates;
      for (const event of listed.events) pass.maxSeen = later(pass.maxSeen, event.created_at);
      pass.after = listed.after;
      // The receipts are durable: the cursor may move past them.
      if (listed.after === null) {
        cursor.watermark = later(cursor.watermark, pass.maxSeen);
        cursor.state = { ...cursor.state, pass: null, completedAt: deps.clock.now().toISOString() };
      }
      await saveCursor(deps, account, cursor);
      await processGoCardlessReceipts(deps, stored.newReceiptIds);
    } else {
      pass.after = listed.after;
      if (listed.after === null) cursor.state = { ...cursor.state, pass: null, completedAt: deps.clock.now().toISOString() };
      await saveCursor(deps, account, cursor);
    }

    if (listed.after === null) return finish('completed', new Date(deps.clock.now().getTime() + interval));

    const { remaining, resetAt } = listed.rateLimit;
    if (remaining !== undefined && remaining <= reserve) {
      // Leave what is left of the window to payment fetches; resume after the reset.
      const until = resetAt ?? new Date(deps.clock.now().getTime() + 60_000);
      cursor.state.resumeAt = until.toISOString();
      await saveCursor(deps, account, cursor);
      return finish('rate_limited', until, `rate limit nearly spent (${remaining} left)`);
    }
  }
  return finish('incomplete', new Date());
}

/** Between two accounts' passes, at least this long (many accounts spread over a short interval). */
const MIN_ACCOUNT_GAP_MS = 250;

/** Accounts recovered in the background: the env's `default` (when configured) and every active stored account. */
async function recoveredAccounts(deps: RecoveryDeps): Promise<string[]> {
  const provider = gocardlessClient(deps);
  if (!provider) return [];
  return [...(provider.hasAccount('default') ? ['default'] : []), ...(await deps.accounts.activeNames('gocardless'))];
}

/** A pass is due when one is under way, the last completed an interval ago, and no rate limit's reset is ahead. */
function recoveryDue(intervalMs: number) {
  return sql`(c.state->>'pass' is not null
      or coalesce((c.state->>'completedAt')::timestamptz, '-infinity'::timestamptz) <= now() - make_interval(secs => ${intervalMs / 1000}))
    and coalesce((c.state->>'resumeAt')::timestamptz, '-infinity'::timestamptz) <= now()`;
}

/** One bounded pass for the default account and a few due stored accounts (least recently visited first), for a Workers Cron Trigger. */
export async function recoverGoCardlessEventsStep(deps: RecoveryDeps, options: { limit?: number } = {}): Promise<RecoveryResult[]> {
  const interval = deps.env.GOCARDLESS_EVENTS_INTERVAL_MS;
  const provider = gocardlessClient(deps);
  if (interval === 0 || !provider) return [];
  const stored = await dueStoredAccounts(deps.db, { provider: 'gocardless', cursorName: CURSOR_NAME, due: recoveryDue(interval), limit: options.limit ?? 3 });
  const results: RecoveryResult[] = [];
  for (const account of [...(provider.hasAccount('default') ? ['default'] : []), ...stored]) {
    results.push(await recoverGoCardlessEvents(deps, { account, maxPages: 5, minIntervalMs: interval }));
  }
  return results;
}

/**
 * The Node loop: a pass per account every GOCARDLESS_EVENTS_INTERVAL_MS (0 disables),
 * sooner when a pass stopped early, later when a rate limit says so. The accounts (the
 * default one and every active stored one, each with its own cursor) are visited
 * `interval / accounts` apart, so their passes are spread over the interval rather than
 * made all at once. Returns when the signal aborts.
 */
export async function runGoCardlessEventRecovery(deps: RecoveryDeps, options: { signal: AbortSignal }): Promise<void> {
  const interval = deps.env.GOCARDLESS_EVENTS_INTERVAL_MS;
  if (interval === 0 || !gocardlessClient(deps)) return;
  while (!options.signal.aborted) {
    let accounts: string[] = [];
    try {
      accounts = await recoveredAccounts(deps);
    } catch (error) {
      deps.logger.error({ job: 'gocardless-recovery', err: errorMessage(error) }, 'gocardless events recovery could not list the accounts');
    }
    let next = Date.now() + Math.min(interval, 60_000);
    if (accounts.length > 0) next = Date.now() + interval;
    const gapMs = accounts.length > 1 ? Math.max(MIN_ACCOUNT_GAP_MS, Math.min(60_000, interval / accounts.length)) : 0;
    for (const account of accounts) {
      if (options.signal.aborted) break;
      try {
        const result = await recoverGoCardlessEvents(deps, { account, minIntervalMs: interval, signal: options.signal });
        next = Math.min(next, result.nextAt.getTime());
      } catch (error) {
        deps.logger.error({ job: 'gocardless-recovery', account, err: errorMessage(error) }, 'gocardless events recovery failed');
      }
      if (gapMs > 0) await sleep(gapMs, options.signal);
    }
    await sleep(Math.max(0, next - Date.now()), options.signal);
  }
}
