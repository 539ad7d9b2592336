import { sql } from 'drizzle-orm';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { refreshOutboxLag } from '../../events/relay.js';
import { pollerReadiness, refreshPollerGauges } from '../../poller/readiness.js';
import { errorResponses, json, newApiRouter } from '../openapi.js';

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

const tags = ['Operations'];
const probeResult = z.object({ ok: z.boolean(), ms: z.number(), error: z.string().optional(), mode: z.string().optional() });
const readiness = z.object({
  status: z.enum(['ready', 'degraded', 'unavailable']),
  checks: z.object({ postgres: probeResult, redis: probeResult }),
  lock: z.string(),
  poller: z.unknown().meta({ description: 'Per provider account: polling health (informational)' }),
});

const healthzRoute = createRoute({
  method: 'get',
  path: '/healthz',
  tags,
  summary: 'Liveness: the process is up',
  responses: { 200: json('Up', z.object({ status: z.literal('ok') })) },
});
const readyzRoute = createRoute({
  method: 'get',
  path: '/readyz',
  tags,
  summary: 'Readiness: Postgres reachable (Redis reported, not required)',
  responses: { 200: json('Ready, or degraded (Redis unreachable)', readiness), 503: json('Postgres unreachable', readiness) },
});
const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  tags,
  summary: 'Prometheus metrics',
  responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' as const } } } }, ...errorResponses(503) },
});

export function healthRoutes(deps: Deps) {
  const app = newApiRouter();

  app.openapi(healthzRoute, (c) => c.json({ status: 'ok' as const }, 200));

  /**
   * Ready when Postgres answers. Redis is reported but does not fail readiness: the
   * gateway keeps its guarantees without it (the lock only spares provider calls).
   */
  app.openapi(readyzRoute, async (c) => {
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
    return c.json(
      { status: ready ? (redis.ok ? 'ready' : 'degraded') : 'unavailable', checks: { postgres, redis }, lock: deps.locker.kind, poller },
      ready ? 200 : 503,
    );
  });

  app.openapi(metricsRoute, (async (c: Context) => {
    // Lags are read from the database at each scrape, so they show even where no loop runs.
    await Promise.all([refreshPollerGauges(deps), refreshOutboxLag(deps)]);
    c.header('Content-Type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  }) as never);

  return app;
}
