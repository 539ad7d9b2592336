import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import { readBankReadiness } from '../../bank/readiness.js';
import type { Deps } from '../../deps.js';
import { refreshOutboxLag } from '../../events/relay.js';
import { pollerReadiness, refreshPollerGauges } from '../../poller/readiness.js';
import type { AppEnv } from '../middleware.js';

const PROBE_TIMEOUT_MS = 1500;

async function probe(check: () => Promise<unknown>): Promise<{ ok: boolean; ms: number; error?: string }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS))),
    ]);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, ms: Math.round(performance.now() - started), error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: Deps) {
  const app = new Hono<AppEnv>();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  /**
   * Ready when Postgres answers. Redis is reported but does not fail readiness: the
   * gateway keeps its guarantees without it (the lock only spares provider calls).
   */
  app.get('/readyz', async (c) => {
    const postgres = await probe(() => deps.db.execute(sql`select 1`));
    const redis =
      deps.redis.length === 0
        ? { ok: true, ms: 0, mode: 'in-process lock' as const }
        : await probe(() => Promise.all(deps.redis.map((client) => client.ping())));
    deps.metrics.ready.set({ dependency: 'postgres' }, postgres.ok ? 1 : 0);
    deps.metrics.ready.set({ dependency: 'redis' }, redis.ok ? 1 : 0);
    const ready = postgres.ok;
    // Informational: a degraded provider account does not make the gateway unready.
    const poller = await pollerReadiness(deps, postgres.ok);
    // Informational too: a broken or expiring bank connection is shown, not a reason to be unready.
    const bank = postgres.ok ? await readBankReadiness(deps) : undefined;
    return c.json(
      { status: ready ? (redis.ok ? 'ready' : 'degraded') : 'unavailable', checks: { postgres, redis }, lock: deps.locker.kind, poller, bank },
      ready ? 200 : 503,
    );
  });

  app.get('/metrics', async (c) => {
    // Lags are read from the database at each scrape, so they show even where no loop runs.
    await Promise.all([refreshPollerGauges(deps), refreshOutboxLag(deps)]);
    c.header('Content-Type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });

  return app;
}
