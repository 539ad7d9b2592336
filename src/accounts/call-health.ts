/**
 * Every provider call made with a stored account's credentials tells that account's
 * health (health.ts) what it learned: a refusal (401/403, `unauthorized`) breaks the
 * account at once, whichever path made the call (webhook fetch, poll, return-page sync,
 * sweep, events recovery); a call that worked mends an account this process knows to be
 * broken. Done once here, around every provider method, rather than in each path.
 *
 * The working path costs nothing in the common case: only an account whose cached status
 * is `broken` is reported (one query there, then the status change is heard back through
 * the registry). The env-configured `default` accounts are not rows and are skipped.
 *
 * A refusal names the credentials the call set out with (the fingerprint of the account
 * as the registry gives it when the call begins: from memory, or loaded then, as the client
 * is about to load it anyway), so a call refused with a key that a PATCH has replaced
 * meanwhile does not break the account again.
 */
import { errorMessage } from '../primitives/error-message.js';
import { aroundProviderCalls } from '../providers/provider-calls.js';
import { ProviderError, type ProviderName, type Providers } from '../providers/types.js';
import { ENV_ACCOUNT_NAME } from './accounts.js';
import { reportAccountRefused, reportAccountWorking, type AccountHealthDeps } from './health.js';
import type { AccountRegistry } from './registry.js';

export interface CallHealthDeps extends AccountHealthDeps {
  accounts: Pick<AccountRegistry, 'cachedStatus' | 'resolve'>;
}

export function withAccountHealth(providers: Providers, deps: CallHealthDeps): Providers {
  // A report must never turn the call's own answer into another failure.
  const safely = (provider: ProviderName, work: Promise<void>) =>
    work.catch((error: unknown) => deps.logger.warn({ provider, err: errorMessage(error) }, 'account health could not be recorded'));
  return aroundProviderCalls<string | undefined>(providers, (name) => ({
    async before(account) {
      if (account === ENV_ACCOUNT_NAME) return undefined;
      // Never fails the call: without its fingerprint, a refusal is reported unguarded.
      return (await deps.accounts.resolve(name, account).catch(() => null))?.fingerprint;
    },
    async failed(account, error, fingerprint) {
      if (account === ENV_ACCOUNT_NAME || !(error instanceof ProviderError) || error.code !== 'unauthorized') return;
      await safely(name, reportAccountRefused(deps, name, account, 'unauthorized', error.message, fingerprint));
    },
    async worked(account) {
      if (account === ENV_ACCOUNT_NAME || deps.accounts.cachedStatus(name, account) !== 'broken') return;
      await safely(name, reportAccountWorking(deps, name, account));
    },
  }));
}
