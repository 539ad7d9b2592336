import { parseEnv } from './config/env.js';
import { buildDeps, type Deps } from './deps.js';
import { createApp } from './http/app.js';
import { createAccountCache } from './accounts/registry.js';
import { createProvidersFromEnv } from './providers/from-env.js';
import { runScheduledStep } from './scheduled.js';

/**
 * The Cloudflare Workers entry: the same Hono app and the same syncPayment as Node.
 *
 * Workers forbid using one request's sockets from another request, so a Postgres and a
 * Redis connection cannot live for the isolate: each invocation builds its deps and
 * closes them once everything it deferred (background processing) has settled.
 */

interface WorkerBindings {
  HYPERDRIVE?: { connectionString: string };
  [name: string]: unknown;
}

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Stored accounts read by this isolate's invocations, kept between them (plain maps: no
 * timer, no randomness). Without LISTEN each entry is read again after a few seconds.
 */
const accountCache = createAccountCache();

function depsFor(bindings: WorkerBindings): Deps {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(bindings)) if (typeof value === 'string') vars[name] = value;
  if (bindings.HYPERDRIVE) vars.DATABASE_URL = bindings.HYPERDRIVE.connectionString;
  // A Worker invocation needs only a few connections; Hyperdrive pools behind them.
  vars.DATABASE_POOL_SIZE ??= '3';
  const env = parseEnv(vars);
  // No LISTEN: the invocation's connections do not outlive it; stored accounts are read again after a few seconds.
  return buildDeps(env, { providers: (accounts) => createProvidersFromEnv(env, accounts), listenForAccounts: false, accountCache });
}

export default {
  async fetch(request: Request, bindings: WorkerBindings, ctx: ExecutionContext): Promise<Response> {
    const deps = depsFor(bindings);
    try {
      return await createApp(deps).fetch(request);
    } finally {
      // close() drains deferred work first, so a batch acknowledged early still gets processed.
      ctx.waitUntil(deps.close());
    }
  },

  async scheduled(_controller: unknown, bindings: WorkerBindings, ctx: ExecutionContext): Promise<void> {
    const deps = depsFor(bindings);
    ctx.waitUntil(runScheduledStep(deps).finally(() => deps.close()));
  },
};
