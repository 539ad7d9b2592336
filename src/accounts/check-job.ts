/**
 * Connections that cannot die silently: every active and broken stored account is checked
 * with its provider every ACCOUNT_CHECK_INTERVAL_MS, even when it has no traffic, with the
 * one cheap authenticated call that created it (identifyCredentials).
 *
 * Fleet-wide once: `next_check_at` is the lease. A process claims due accounts with
 * `FOR UPDATE SKIP LOCKED` and moves each one interval on in the same statement, so the
 * other processes see it as not due and N processes make one call per account per
 * interval, not N. A process that dies mid-check loses nothing: the account comes due
 * again one interval later. Checks are spread over the interval: a new account (or one
 * the fleet fell behind on, after a downtime) gets a random phase within it, and keeps its
 * phase from then on.
 *
 * What a check's answer means:
 * - the credentials work and still belong to the account's identity: `last_checked_at`,
 *   and a broken account is mended (`gateway.account.recovered`);
 * - the provider refuses them (401/403): broken at once (`gateway.account.broken`, reason
 *   `unauthorized`, the provider's message as detail);
 * - they now belong to another identity: broken, reason `identity_changed`;
 * - the provider could not answer (timeout, 5xx, 429, an unexpected body): an outage, not
 *   a broken account; `last_error` notes it and the status stays.
 */
import { sql } from 'drizzle-orm';
import { sleep } from '../abortable-sleep.js';
import type { Deps } from '../deps.js';
import type { DbOrTx } from '../db/client.js';
import { accounts, type SelectAccount } from '../db/schema/accounts.js';
import { forEachLimited } from '../primitives/for-each-limited.js';
import { errorMessage } from '../primitives/error-message.js';
import { ProviderError, type ProviderName } from '../providers/types.js';
import { AccountError, accountSecretsFromEnv, ENV_ACCOUNT_NAME, openCredentials } from './accounts.js';
import { credentialsFingerprint, getAccount } from './store.js';
import { identifyCredentials, type AccountCredentials } from './credentials.js';
import { reportAccountRefused, reportAccountWorking } from './health.js';
import { usableMollieAccessToken } from './oauth.js';
import type { AccountSecrets } from './secrets.js';

/** What a check uses: the store, the provider URLs, the keyring's key, the lock (OAuth refresh), the log and the counters. */
export type AccountCheckDeps = Pick<Deps, 'db' | 'env' | 'locker' | 'logger' | 'metrics'>;

export type AccountCheckOutcome = 'working' | 'refused' | 'identity_changed' | 'outage' | 'unreadable';

/** Accounts checked at once by one process: spares the provider and the pool when many are due together. */
export const ACCOUNT_CHECK_CONCURRENCY = 5;
/** Accounts claimed by one step; a full claim means more are due, and the loop goes on at once. */
export const ACCOUNT_CHECK_BATCH = 50;
/** The longest provider message kept. */
const DETAIL_MAX = 500;

/** Every string secret in the credentials (the token, a refresh token), for scrubbing messages. */
function secretsIn(credentials: AccountCredentials): string[] {
  return Object.entries(credentials)
    .filter(([key, value]) => key !== 'kind' && key !== 'expiresAt' && key !== 'profileId' && typeof value === 'string' && value.length >= 8)
    .map(([, value]) => value as string);
}

/** The provider's message, without any secret it might echo back, and bounded. */
export function scrubDetail(message: string, credentials: AccountCredentials | null): string {
  let detail = message;
  for (const secret of credentials ? secretsIn(credentials) : []) detail = detail.split(secret).join('[redacted]');
  return detail.slice(0, DETAIL_MAX);
}

/**
 * Gives every account that was never scheduled (a new one: it was checked when it was
 * created) a random moment within the next interval, so a thousand accounts created or
 * migrated together are not all checked in the same second.
 */
async function scheduleNewAccounts(db: DbOrTx, intervalMs: number): Promise<void> {
  await db.execute(sql`
    update accounts set next_check_at = now() + random() * make_interval(secs => ${intervalMs / 1000})
    where next_check_at is null and status in ('active', 'broken')`);
}

/**
 * Claims up to `limit` due accounts and moves each one interval on, in one statement.
 * SKIP LOCKED: two processes claiming at once never take the same account, and neither
 * waits for the other; once this statement commits, the accounts are not due for anyone
 * until their next time. The phase is kept (`next_check_at + interval`) unless the fleet
 * fell an interval behind (after a downtime), where a random phase spreads them again.
 */
export async function claimDueAccounts(db: DbOrTx, params: { limit: number; intervalMs: number }): Promise<SelectAccount[]> {
  const interval = sql`make_interval(secs => ${params.intervalMs / 1000})`;
  return db
    .update(accounts)
    .set({
      nextCheckAt: sql`case when ${accounts.nextCheckAt} + ${interval} > now() then ${accounts.nextCheckAt} + ${interval} else now() + random() * ${interval} end`,
    })
    .where(
      sql`${accounts.id} = any(array(
        select id from accounts
        where status in ('active', 'broken') and next_check_at <= now()
        order by next_check_at
        limit ${params.limit}
        for update skip locked))`,
    )
    .returning();
}

async function noteCheck(db: DbOrTx, id: number, change: { answered: boolean; lastError?: string | null }): Promise<void> {
  // An outage's note never replaces the reason a broken account is broken.
  await db.execute(sql`
    update accounts set
      last_checked_at = case when ${change.answered} then now() else last_checked_at end,
      last_error = case when status = 'broken' or ${change.lastError === undefined} then last_error else ${change.lastError ?? null} end,
      updated_at = now()
    where id = ${id}`);
}

/** The provider-side identity the account's stored credentials answer to now (an OAuth token refreshed first when due). */
async function identifyStored(deps: AccountCheckDeps, secrets: AccountSecrets, account: SelectAccount, credentials: AccountCredentials): Promise<string> {
  if (credentials.kind === 'oauth') {
    const accessToken = await usableMollieAccessToken({ ...deps, secrets }, account, credentials);
    return identifyCredentials(deps.env, { ...credentials, accessToken });
  }
  return identifyCredentials(deps.env, credentials);
}

/**
 * Checks one stored account with its provider now and records what the answer means (see
 * the top of this file). Never throws for a provider's answer; a database failure does.
 */
export async function checkAccount(deps: AccountCheckDeps, secrets: AccountSecrets, account: SelectAccount): Promise<AccountCheckOutcome> {
  const provider = account.provider as ProviderName;
  const started = performance.now();
  let credentials: AccountCredentials | null = null;
  let outcome: AccountCheckOutcome;
  let detail: string | undefined;
  // What the check sends: its answer is about these credentials, not any stored meanwhile.
  const checked = credentialsFingerprint(account);
  try {
    credentials = await openCredentials(secrets, account);
    const externalId = await identifyStored(deps, secrets, account, credentials);
    if (externalId === account.externalId) {
      outcome = 'working';
      await noteCheck(deps.db, account.id, { answered: true, lastError: null });
      await reportAccountWorking(deps, provider, account.name);
    } else {
      outcome = 'identity_changed';
      detail = `the credentials now belong to ${externalId}, not to ${account.externalId}`;
      await noteCheck(deps.db, account.id, { answered: true });
      await reportAccountRefused(deps, provider, account.name, 'identity_changed', detail, checked);
    }
  } catch (error) {
    if (error instanceof ProviderError && error.code === 'unauthorized') {
      outcome = 'refused';
      detail = scrubDetail(error.message, credentials);
      await noteCheck(deps.db, account.id, { answered: true });
      await reportAccountRefused(deps, provider, account.name, 'unauthorized', detail, checked);
    } else if (error instanceof ProviderError) {
      // timeout, unavailable, rate_limited, bad_response, unknown_account: the provider could not say.
      outcome = 'outage';
      detail = scrubDetail(`${error.code}: ${error.message}`, credentials);
      await noteCheck(deps.db, account.id, { answered: false, lastError: detail });
    } else if (credentials === null) {
      // The row cannot be opened with the configured keys (a key dropped before the rotation finished).
      outcome = 'unreadable';
      detail = `credentials cannot be opened: ${errorMessage(error)}`;
      await noteCheck(deps.db, account.id, { answered: false, lastError: detail });
    } else {
      throw error;
    }
  }
  deps.metrics.accountChecks.inc({ provider, outcome });
  const fields = { job: 'account-check', provider, account: account.name, outcome, durationMs: Math.round(performance.now() - started) };
  if (outcome === 'working') deps.logger.debug(fields, 'account checked');
  else deps.logger.warn({ ...fields, detail }, 'account check did not confirm the credentials');
  return outcome;
}

/**
 * Checks one stored account now (POST /v1/accounts/:provider/:name/check, the console's
 * "Check now"), whatever its status and schedule, and answers the row as the check left
 * it. An outage is not an error here: the answer's `lastError` says what happened.
 */
export async function checkAccountNow(deps: AccountCheckDeps, provider: ProviderName, name: string): Promise<{ outcome: AccountCheckOutcome; account: SelectAccount }> {
  if (name === ENV_ACCOUNT_NAME) {
    throw new AccountError('read_only', `the ${provider} account "${ENV_ACCOUNT_NAME}" is configured by the environment and is not stored; its connection shows in the poller's health`);
  }
  const account = await getAccount(deps.db, provider, name);
  if (!account) throw new AccountError('not_found', `no ${provider} account named "${name}"`);
  const secrets = accountSecretsFromEnv(deps.env);
  if (!secrets) {
    throw new AccountError('secrets_not_configured', 'ACCOUNT_SECRETS_KEY is not set: the stored credentials cannot be opened to check them');
  }
  const outcome = await checkAccount(deps, secrets, account);
  const checked = await getAccount(deps.db, provider, name);
  if (!checked) throw new AccountError('not_found', `no ${provider} account named "${name}"`);
  return { outcome, account: checked };
}

export type AccountCheckSummary = Record<AccountCheckOutcome, number> & { claimed: number };

/**
 * One bounded step: schedule new accounts, claim the due ones (at most `limit`) and check
 * them, a few at a time. Null when no key is configured (nothing stored can be opened).
 */
export async function checkDueAccounts(deps: AccountCheckDeps, options: { limit?: number } = {}): Promise<AccountCheckSummary | null> {
  const secrets = accountSecretsFromEnv(deps.env);
  if (!secrets) return null;
  const intervalMs = deps.env.ACCOUNT_CHECK_INTERVAL_MS;
  await scheduleNewAccounts(deps.db, intervalMs);
  const due = await claimDueAccounts(deps.db, { limit: options.limit ?? ACCOUNT_CHECK_BATCH, intervalMs });
  const summary: AccountCheckSummary = { claimed: due.length, working: 0, refused: 0, identity_changed: 0, outage: 0, unreadable: 0 };
  // Claimed accounts are checked even if shutdown begins: each is one short call, and an
  // unchecked one would wait a whole interval (its time has already moved on).
  await forEachLimited(due, ACCOUNT_CHECK_CONCURRENCY, async (account) => {
    try {
      summary[await checkAccount(deps, secrets, account)] += 1;
    } catch (error) {
      deps.logger.error({ job: 'account-check', provider: account.provider, account: account.name, err: errorMessage(error) }, 'account check failed');
    }
  });
  return summary;
}

/** How often a process looks for due accounts: a tenth of the interval, between 100 ms and 5 s. */
export function accountCheckTickMs(intervalMs: number): number {
  return Math.max(100, Math.min(5000, Math.floor(intervalMs / 10)));
}

/** The Node loop: a step per tick, at once again while a step claims a full batch (a backlog). */
export async function runAccountChecks(deps: AccountCheckDeps, options: { signal: AbortSignal }): Promise<void> {
  const tickMs = accountCheckTickMs(deps.env.ACCOUNT_CHECK_INTERVAL_MS);
  while (!options.signal.aborted) {
    let backlog = false;
    try {
      const summary = await checkDueAccounts(deps);
      if (!summary) return;
      backlog = summary.claimed >= ACCOUNT_CHECK_BATCH;
    } catch (error) {
      // The database is away: /readyz says so; the next tick tries again.
      deps.logger.warn({ job: 'account-check', err: errorMessage(error) }, 'account check pass failed');
    }
    if (!backlog) await sleep(tickMs, options.signal);
  }
}
