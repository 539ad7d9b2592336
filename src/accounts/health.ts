/**
 * A stored account's connection health. A refusal (401/403) on any call made with its
 * credentials (the check, a fetch, a poll, the sweep, the recovery) breaks it at once; a
 * working call after that mends it. A provider outage (5xx, timeout) is neither.
 *
 * Each flip is one guarded UPDATE (`where status = 'active'` to break, `status = 'broken'`
 * to mend) with its event written in the same transaction, so however many processes
 * report the same refusal at the same moment, one of them flips the row and only that one
 * enqueues `gateway.account.broken`; the dedupe key names the episode (its `broken_since`),
 * so an episode is announced once and recovered once, like the poller's degraded/recovered.
 *
 * A refusal counts only against the credentials that were refused: a report that names them
 * (their fingerprint, store.ts) breaks the account only while the row still holds them. A
 * check or a call that set out with the old key and is refused after a PATCH stored a new one
 * would otherwise break the account the PATCH just mended.
 *
 * The env-configured `default` accounts are not rows: reports about them change nothing here.
 */
import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { enqueueEvents } from '../events/outbox.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderName } from '../providers/types.js';
import { holdsCredentials } from './store.js';

export interface AccountHealthDeps {
  db: DbOrTx;
  logger: Logger;
}

/** Why an account broke: the provider refused its credentials, or they now belong to someone else. */
export type AccountBrokenReason = 'unauthorized' | 'identity_changed' | (string & {});

/** The longest provider message kept in `last_error` and the event: enough to read, never a whole page. */
const DETAIL_MAX = 500;

export interface AccountBroken {
  provider: ProviderName;
  account: string;
  reason: string;
  detail: string;
  since: Date;
  /** False when the event's dedupe key was already taken (it never is for a fresh episode). */
  announced: boolean;
}

export interface AccountRecovered {
  provider: ProviderName;
  account: string;
  brokenSince: Date;
  recoveredAt: Date;
  announced: boolean;
}

const lastErrorOf = (reason: string, detail: string) => `${reason}: ${detail}`;

interface FlipRow {
  broken_since: Date | string;
  db_now: Date | string;
  [key: string]: unknown;
}

/**
 * Breaks an active account and enqueues `gateway.account.broken`, in one transaction
 * (joins the caller's when `db` is one). Returns null when the account is not active
 * (already broken: the same episode; disabled; unknown; or `default`), or when
 * `refusedFingerprint` is given and the row holds other credentials by now.
 */
export async function markAccountBroken(
  db: DbOrTx,
  provider: ProviderName,
  name: string,
  reason: string,
  detail: string,
  refusedFingerprint?: string,
): Promise<AccountBroken | null> {
  const trimmed = detail.slice(0, DETAIL_MAX);
  const sameCredentials = refusedFingerprint === undefined ? sql`` : sql` and ${holdsCredentials(refusedFingerprint)}`;
  return db.transaction(async (tx) => {
    // Guarded: of several processes reporting the same refusal at once, the first flips the
    // row; the others wait on its lock, re-read it as broken and match nothing.
    const rows = await tx.execute<FlipRow>(sql`
      update accounts set status = 'broken', broken_since = now(), last_error = ${lastErrorOf(reason, trimmed)}, updated_at = now()
      where provider = ${provider} and name = ${name} and status = 'active'${sameCredentials}
      returning broken_since, now() as db_now`);
    const row = rows[0];
    if (!row) return null;
    const since = new Date(row.broken_since);
    const added = await enqueueEvents(tx, [
      {
        type: 'gateway.account.broken',
        // The episode is named by when it began: one broken event per episode.
        dedupeKey: `account:broken:${provider}:${name}:${since.getTime()}`,
        provider,
        timestamp: since,
        data: { provider, account: name, reason, detail: trimmed, since: since.toISOString() },
      },
    ]);
    return { provider, account: name, reason, detail: trimmed, since, announced: added.length > 0 };
  });
}

/**
 * Mends a broken account (status back to active) and enqueues `gateway.account.recovered`,
 * in one transaction (joins the caller's). A disabled account whose episode was still open
 * (disabled while broken) has the episode closed too, and stays disabled. Returns null when
 * there was no open episode.
 */
export async function markAccountWorking(db: DbOrTx, provider: ProviderName, name: string): Promise<AccountRecovered | null> {
  return db.transaction(async (tx) => {
    // The row is locked first so the episode read (broken_since) and the flip are one
    // decision: a second process mending at the same moment waits, then finds no episode.
    const rows = await tx.execute<FlipRow>(sql`
      with episode as (
        select id, broken_since from accounts
        where provider = ${provider} and name = ${name} and broken_since is not null
          and (status = 'broken' or status = 'disabled')
        for update
      )
      update accounts a set
        status = case when a.status = 'broken' then 'active' else a.status end,
        broken_since = null, last_error = null, updated_at = now()
      from episode
      where a.id = episode.id
      returning episode.broken_since, now() as db_now`);
    const row = rows[0];
    if (!row) return null;
    const brokenSince = new Date(row.broken_since);
    const recoveredAt = new Date(row.db_now);
    const added = await enqueueEvents(tx, [
      {
        type: 'gateway.account.recovered',
        // One recovery per broken episode, named by when the episode began.
        dedupeKey: `account:recovered:${provider}:${name}:${brokenSince.getTime()}`,
        provider,
        timestamp: recoveredAt,
        data: { provider, account: name, brokenSince: brokenSince.toISOString(), recoveredAt: recoveredAt.toISOString() },
      },
    ]);
    return { provider, account: name, brokenSince, recoveredAt, announced: added.length > 0 };
  });
}

/** The loud part: an operator reading logs sees a broken account at error level (never a secret: the detail is the provider's message). */
export function logAccountBroken(logger: Logger, broken: AccountBroken): void {
  logger.error(
    { provider: broken.provider, account: broken.account, reason: broken.reason, detail: broken.detail, since: broken.since.toISOString() },
    `account BROKEN: ${broken.provider}/${broken.account} (${broken.reason}); its payments are not being synced until its credentials work again`,
  );
}

export function logAccountRecovered(logger: Logger, recovered: AccountRecovered): void {
  logger.warn(
    { provider: recovered.provider, account: recovered.account, brokenSince: recovered.brokenSince.toISOString() },
    `account recovered: ${recovered.provider}/${recovered.account} works again`,
  );
}

/**
 * The provider refused the account's credentials (401/403, or an OAuth refresh refused).
 * `refusedFingerprint` names the credentials refused, where the caller knows them.
 */
export async function reportAccountRefused(
  deps: AccountHealthDeps,
  provider: ProviderName,
  name: string,
  reason: string,
  detail: string,
  refusedFingerprint?: string,
): Promise<void> {
  const broken = await markAccountBroken(deps.db, provider, name, reason, detail, refusedFingerprint);
  if (broken) logAccountBroken(deps.logger, broken);
}

/**
 * A call made with the account's credentials worked. Called after every working call, so
 * the common case (no open episode) costs one indexed read and no transaction.
 */
export async function reportAccountWorking(deps: AccountHealthDeps, provider: ProviderName, name: string): Promise<void> {
  const open = await deps.db.execute(sql`select 1 from accounts where provider = ${provider} and name = ${name} and broken_since is not null limit 1`);
  if (open.length === 0) return;
  const recovered = await markAccountWorking(deps.db, provider, name);
  if (recovered) logAccountRecovered(deps.logger, recovered);
}
