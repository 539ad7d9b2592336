import { sql } from 'drizzle-orm';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { readAccountsReadiness } from '../../accounts/readiness.js';
import { readBankReadiness } from '../../bank/readiness.js';
import type { Deps } from '../../deps.js';
import { refreshOutboxLag, sinkReadiness } from '../../events/relay.js';
import { refreshDatabaseGauges } from '../../observability/database-gauges.js';
import { pollerReadiness, refreshPollerGauges } from '../../poller/readiness.js';
import { errorResponses, json, newApiRouter } from '../openapi.js';

const PROBE_TIMEOUT_MS = 1500;

/** What the probes and the scrape read: the stores, the lock, and each job's own state. */
type HealthDeps = Pick<Deps, 'db' | 'redis' | 'env' | 'metrics' | 'locker' | 'bank' | 'pollerState' | 'eventSinks' | 'bankSchedulerState'>;

/** The failure's machine code (ECONNREFUSED, 57P01, CONNECTION_CLOSED, ...), from it or its causes. */
export function failureCode(error: unknown): string {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  }
  return error instanceof Error && error.message.startsWith('no answer in') ? 'timeout' : 'unavailable';
}

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
    // A code, never the message: a driver's message can hold the failed statement and its
    // parameters, and /readyz answers anyone.
    return { ok: false, ms: Math.round(performance.now() - started), error: failureCode(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** host:port of a REDIS_URL entry: enough to tell the nodes apart, never a password. */
function redisNodeName(url: string | undefined, index: number): string {
  if (!url || !URL.canParse(url)) return `node ${index + 1}`;
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '6379'}`;
}

/**
 * Each Redis node, and the verdict Redlock itself would give: with several independent
 * nodes a lock needs a majority of them, so one node of three down still locks.
 */
async function probeRedis(deps: Pick<Deps, 'redis' | 'env'>) {
  const nodes = await Promise.all(
    deps.redis.map(async (client, index) => ({ node: redisNodeName(deps.env.REDIS_URL[index], index), ...(await probe(() => client.ping())) })),
  );
  const required = Math.floor(nodes.length / 2) + 1;
  const up = nodes.filter((node) => node.ok).length;
  const ok = up >= required;
  const failed = nodes.filter((node) => !node.ok);
  // A lone node's own error; with several, which ones are down.
  const error = ok ? undefined : nodes.length === 1 ? failed[0]!.error : `no Redlock quorum: ${up} of ${nodes.length} nodes answer, ${required} needed (down: ${failed.map((node) => node.node).join(', ')})`;
  return { ok, ms: Math.max(0, ...nodes.map((node) => node.ms)), ...(error === undefined ? {} : { error }), quorum: { required, up, of: nodes.length }, nodes };
}

const tags = ['Operations'];
const probeResult = z.object({ ok: z.boolean(), ms: z.number(), error: z.string().optional(), mode: z.string().optional() });
const readiness = z.object({
  status: z.enum(['ready', 'degraded', 'unavailable']),
  checks: z.object({ postgres: probeResult, redis: probeResult }),
  lock: z.string(),
  poller: z.unknown().meta({ description: 'Per provider account: polling health (informational)' }),
  sinks: z.unknown().optional().meta({ description: 'Sinks disabled by a 410 (informational)' }),
  bank: z.unknown().optional().meta({ description: 'Bank feed connections: broken, expiring, last and next sync (informational; only when the bank feed is configured)' }),
  accounts: z
    .unknown()
    .optional()
    .meta({ description: 'Stored accounts: counts by provider and status, and the broken ones (count, and names up to 20) (informational: a broken account does not make the gateway unready)' }),
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

export function healthRoutes(deps: HealthDeps) {
  const app = newApiRouter();

  app.openapi(healthzRoute, (c) => c.json({ status: 'ok' as const }, 200));

  /**
   * Ready when Postgres answers. Redis is reported (each node, and whether a Redlock
   * quorum answers) but does not fail readiness: the gateway keeps its guarantees without
   * it (the lock only spares provider calls).
   */
  app.openapi(readyzRoute, async (c) => {
    const postgres = await probe(() => deps.db.execute(sql`select 1`));
    const redis =
      deps.redis.length === 0
        ? { ok: true, ms: 0, mode: 'in-process lock' as const }
        : await probeRedis(deps);
    deps.metrics.ready.set({ dependency: 'postgres' }, postgres.ok ? 1 : 0);
    deps.metrics.ready.set({ dependency: 'redis' }, redis.ok ? 1 : 0);
    const ready = postgres.ok;
    // Informational: a degraded provider account does not make the gateway unready.
    const poller = await pollerReadiness(deps, postgres.ok);
    const sinks = postgres.ok ? await sinkReadiness(deps) : undefined;
    // Informational too: a broken or expiring bank connection is shown, not a reason to be unready.
    const bank = postgres.ok ? await readBankReadiness(deps) : undefined;
    // Informational: one merchant's broken connection must not take the gateway out of rotation for the others.
    const accounts = postgres.ok ? await readAccountsReadiness(deps.db) : undefined;
    return c.json(
      { status: ready ? (redis.ok ? 'ready' : 'degraded') : 'unavailable', checks: { postgres, redis }, lock: deps.locker.kind, poller, sinks, bank, accounts },
      ready ? 200 : 503,
    );
  });

  app.openapi(metricsRoute, (async (c: Context) => {
    // Lags are read from the database at each scrape, so they show even where no loop runs.
    await Promise.all([refreshPollerGauges(deps), refreshOutboxLag(deps), refreshDatabaseGauges(deps)]);
    c.header('Content-Type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  }) as never);

  return app;
}
