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
 */
import { errorMessage } from '../primitives/error-message.js';
import { ProviderError, type PaymentProvider, type ProviderName, type Providers } from '../providers/types.js';
import { ENV_ACCOUNT_NAME } from './accounts.js';
import { reportAccountRefused, reportAccountWorking, type AccountHealthDeps } from './health.js';
import type { AccountRegistry } from './registry.js';

/** Methods that do not call the provider. */
const LOCAL_METHODS = new Set<string | symbol>(['hasAccount']);

export interface CallHealthDeps extends AccountHealthDeps {
  accounts: Pick<AccountRegistry, 'cachedStatus'>;
}

export function withAccountHealth(providers: Providers, deps: CallHealthDeps): Providers {
  const wrapped: Providers = {};
  for (const [name, provider] of Object.entries(providers) as [ProviderName, PaymentProvider][]) {
    wrapped[name] = watchProvider(name, provider, deps) as never;
  }
  return wrapped;
}

function watchProvider<T extends PaymentProvider>(name: ProviderName, provider: T, deps: CallHealthDeps): T {
  const cache = new Map<string | symbol, unknown>();
  // A report must never turn the call's own answer into another failure.
  const safely = (work: Promise<void>) =>
    work.catch((error: unknown) => deps.logger.warn({ provider: name, err: errorMessage(error) }, 'account health could not be recorded'));
  const failed = async (account: string, error: unknown) => {
    if (account === ENV_ACCOUNT_NAME || !(error instanceof ProviderError) || error.code !== 'unauthorized') return;
    await safely(reportAccountRefused(deps, name, account, 'unauthorized', error.message));
  };
  const worked = async (account: string) => {
    if (account === ENV_ACCOUNT_NAME || deps.accounts.cachedStatus(name, account) !== 'broken') return;
    await safely(reportAccountWorking(deps, name, account));
  };
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || LOCAL_METHODS.has(property)) return value;
      const cached = cache.get(property);
      if (cached) return cached;
      const method = value as (...args: unknown[]) => unknown;
      let watched: (...args: unknown[]) => unknown;
      if (method.constructor.name === 'AsyncGeneratorFunction') {
        // Itself an async generator function, so a wrapper around this one (the 429 pauses)
        // still knows the method for a lazily paged list.
        watched = async function* (...args: unknown[]) {
          const account = String(args[0]);
          try {
            yield* method.apply(target, args) as AsyncIterable<unknown>;
          } catch (error) {
            await failed(account, error);
            throw error;
          }
          await worked(account);
        };
      } else {
        watched = async (...args) => {
          const account = String(args[0]);
          try {
            const result = await method.apply(target, args);
            await worked(account);
            return result;
          } catch (error) {
            await failed(account, error);
            throw error;
          }
        };
      }
      cache.set(property, watched);
      return watched;
    },
  });
}
