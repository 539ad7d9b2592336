/**
 * Wraps every method of a provider that calls it (its first argument is always the
 * account) with what the whole gateway does around a provider call, whichever path made
 * it: the 429 pause (rate-limit-pause.ts) and the account's health (accounts/call-health.ts).
 * A lazily paged list stays an async generator, so the hooks see each page's failure and
 * a wrapper around this one still knows the method for a list.
 */
import type { PaymentProvider, ProviderName, Providers } from './types.js';

export interface ProviderCallHooks<State = unknown> {
  /** Before the call; throwing refuses it. What it returns is handed to `worked` or `failed`. */
  before?(account: string): Promise<State> | State;
  /** The call (every page of a list) answered. */
  worked?(account: string, state: State | undefined): Promise<void>;
  /** The call failed with `error`, which is rethrown after this. */
  failed?(account: string, error: unknown, state: State | undefined): Promise<void>;
}

/** Methods that do not call the provider. */
const LOCAL_METHODS = new Set<string | symbol>(['hasAccount']);

export function aroundProviderCalls<State>(providers: Providers, hooksFor: (provider: ProviderName) => ProviderCallHooks<State>): Providers {
  const wrapped: Providers = {};
  for (const [name, provider] of Object.entries(providers) as [ProviderName, PaymentProvider][]) {
    wrapped[name] = wrapProvider(provider, hooksFor(name)) as never;
  }
  return wrapped;
}

function wrapProvider<T extends PaymentProvider, State>(provider: T, hooks: ProviderCallHooks<State>): T {
  const cache = new Map<string | symbol, unknown>();
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || LOCAL_METHODS.has(property)) return value;
      const cached = cache.get(property);
      if (cached) return cached;
      const method = value as (...args: unknown[]) => unknown;
      const wrapped =
        method.constructor.name === 'AsyncGeneratorFunction'
          ? async function* (...args: unknown[]) {
              const account = String(args[0]);
              const state = await hooks.before?.(account);
              try {
                yield* method.apply(target, args) as AsyncIterable<unknown>;
              } catch (error) {
                await hooks.failed?.(account, error, state);
                throw error;
              }
              await hooks.worked?.(account, state);
            }
          : async (...args: unknown[]) => {
              const account = String(args[0]);
              const state = await hooks.before?.(account);
              let result: unknown;
              try {
                result = await method.apply(target, args);
              } catch (error) {
                await hooks.failed?.(account, error, state);
                throw error;
              }
              await hooks.worked?.(account, state);
              return result;
            };
      cache.set(property, wrapped);
      return wrapped;
    },
  });
}
