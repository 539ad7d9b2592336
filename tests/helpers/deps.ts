import { parseEnv, type Env } from '../../src/config/env.js';
import { buildDeps, type BuildOverrides, type Deps } from '../../src/deps.js';
import { createLogger } from '../../src/observability/logger.js';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';

export function testEnv(overrides: Record<string, string | undefined>): Env {
  // No re-fetch window by default: tests about other things send webhooks for one payment
  // in quick succession and expect each to fetch. The quota tests set their own.
  return parseEnv({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    WEBHOOK_REFETCH_WINDOW_MS: '0',
    WEBHOOK_NOT_FOUND_WINDOW_MS: '0',
    ...overrides,
  });
}

export function buildTestDeps(env: Record<string, string | undefined>, overrides: BuildOverrides = {}): Deps {
  const parsed = testEnv(env);
  return buildDeps(parsed, { logger: createLogger(parsed.LOG_LEVEL), ...overrides });
}

export const auth = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined | false | null>, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
