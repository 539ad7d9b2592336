/**
 * What the GoCardless client, sandbox and webhook-sender tests share: the sandbox with a
 * client holding two accounts' tokens, and small waits and assertions.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { createGoCardlessProvider, type GoCardlessProvider } from '../../src/providers/gocardless/client.js';
import type { GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import { ProviderError, type FetchResult } from '../../src/providers/types.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';

export const TOKEN_A = 'sandbox_token_account_a';
export const TOKEN_B = 'sandbox_token_account_b';

/**
 * Inside a describe: one sandbox accepting both tokens for the whole block, reset before
 * each test, and a client with accounts a, b and one whose token the sandbox refuses.
 */
export function useSandboxWithClient(use: (sandbox: GoCardlessSandbox, provider: GoCardlessProvider) => void): void {
  let sandbox: GoCardlessSandbox | undefined;
  beforeAll(async () => {
    sandbox = await startGoCardlessSandbox({ port: 0, accessTokens: [TOKEN_A, TOKEN_B] });
    const provider = createGoCardlessProvider({
      accounts: { a: { accessToken: TOKEN_A }, b: { accessToken: TOKEN_B }, revoked: { accessToken: 'revoked_token' } },
      apiUrl: sandbox.url,
      timeoutMs: 2000,
    });
    use(sandbox, provider);
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  beforeEach(() => {
    sandbox!.reset();
  });
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a ProviderError, but the call succeeded');
}

export function found(result: FetchResult) {
  expect(result.kind).toBe('found');
  if (result.kind !== 'found') throw new Error('not found');
  return result.snapshot;
}

/** Every page of /events, following `after` until it is null. */
export async function allPages(provider: GoCardlessProvider, options: Parameters<GoCardlessProvider['listEvents']>[1] = {}) {
  const pages: GoCardlessEvent[][] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 100; guard++) {
    const page = await provider.listEvents('a', { ...options, ...(after !== undefined && { after }) });
    pages.push(page.events);
    if (page.after === null) return pages;
    after = page.after;
  }
  throw new Error('paging never ended');
}
