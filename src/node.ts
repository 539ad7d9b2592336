import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackgroundJobs } from './background.js';
import { ConfigError, parseEnv, type Env } from './config/env.js';
import { ensureDatabase, runMigrations } from './db/client.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded.js';
import { buildDeps, waitForRedis } from './deps.js';
import { createApp } from './http/app.js';
import { createGracefulShutdown } from './http/graceful-shutdown.js';
import { tracesExporterKind } from './observability/tracing.js';
import { errorMessage } from './primitives/error-message.js';
import { createProvidersFromEnv } from './providers/from-env.js';
import { nodePlainGet } from './providers/plain-get-node.js';

const MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../drizzle');

function loadEnv(): Env {
  try {
    return parseEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

/** Without DATABASE_URL the gateway brings its own Postgres; say so loudly. */
async function resolveDatabase(env: Env): Promise<{ env: Env; embedded?: EmbeddedPostgres }> {
  if (env.DATABASE_URL) {
    if (await ensureDatabase(env.DATABASE_URL)) process.stderr.write(`created database ${new URL(env.DATABASE_URL).pathname.slice(1)}\n`);
    return { env };
  }
  const dataDir = path.resolve(env.EMBEDDED_DATA_DIR);
  const embedded = await startEmbeddedPostgres(dataDir);
  return { env: { ...env, DATABASE_URL: embedded.url, DATABASE_POOL_SIZE: 1 }, embedded };
}

function banner(env: Env, embedded: EmbeddedPostgres | undefined): string {
  const lines = [
    embedded
      ? `database: EMBEDDED PGlite in ${embedded.dataDir} (set DATABASE_URL to use a Postgres server); ${embedded.lock}`
      : `database: ${redact(env.DATABASE_URL!)}`,
    env.REDIS_URL.length > 0
      ? `lock:     Redlock over ${env.REDIS_URL.length} Redis node(s)`
      : 'lock:     IN-PROCESS (single gateway process only; set REDIS_URL to run several)',
  ];
  return `${lines.map((line) => `  ${line}`).join('\n')}\n`;
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function main() {
  const { env, embedded } = await resolveDatabase(loadEnv());
  // Off unless the standard OTEL_* variables configure an exporter; the SDK is loaded only then.
  const tracing = tracesExporterKind(env) ? (await import('./observability/tracing-setup.js')).startTracing(env) : null;
  process.stderr.write(banner(env, embedded));
  await runMigrations(env.DATABASE_URL!, MIGRATIONS);
  const deps = buildDeps(env, {
    // Node's own http for the hot-path payment read: a third of fetch's CPU (plain-get.ts).
    providers: (accounts) => createProvidersFromEnv(env, accounts, { plainGet: nodePlainGet() }),
    defaultMetrics: true,
    // The embedded Postgres is one process's own: no other process to hear changes from.
    listenForAccounts: !embedded,
  });
  await waitForRedis(deps);
  const app = createApp(deps, { surface: env.ADMIN_PORT ? 'public' : 'all' });
  const jobs = startBackgroundJobs(deps);
  // ADMIN_PORT: /metrics, /readyz detail and the console on their own listener (src/http/app.ts),
  // drained the same way as the public one.
  const adminShutdown = env.ADMIN_PORT ? createGracefulShutdown(createApp(deps, { surface: 'admin' }).fetch, { graceMs: env.SHUTDOWN_GRACE_MS }) : undefined;
  const adminServer = adminShutdown ? (serve({ fetch: adminShutdown.fetch, port: env.ADMIN_PORT, hostname: process.env.HOST ?? '0.0.0.0' }) as Server) : undefined;
  if (adminServer) {
    adminServer.keepAliveTimeout = env.HTTP_KEEP_ALIVE_TIMEOUT_MS;
    adminShutdown!.attach(adminServer);
  }
  const shutdown = createGracefulShutdown(app.fetch, { graceMs: env.SHUTDOWN_GRACE_MS });
  const server = serve({ fetch: shutdown.fetch, port: env.PORT, hostname: process.env.HOST ?? '0.0.0.0' }, (info) => {
    deps.logger.info(
      {
        port: info.port,
        database: embedded ? 'embedded' : 'postgres',
        lock: deps.locker.kind,
        providers: Object.keys(deps.providers),
        adminApi: env.ADMIN_TOKEN ? 'enabled' : 'disabled (set ADMIN_TOKEN)',
      },
      'gateway listening',
    );
  }) as Server; // plain HTTP/1.1: serve() makes an http.Server unless given another createServer
  server.keepAliveTimeout = env.HTTP_KEEP_ALIVE_TIMEOUT_MS;
  shutdown.attach(server);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal, graceMs: env.SHUTDOWN_GRACE_MS }, 'shutting down');
    // Answer or refuse every request that reached us, finish every handler (even one whose
    // client left), cut what is still idle or mid-body after the grace; then stop the jobs
    // and close the pools.
    const [drained] = await Promise.all([shutdown.drain(server), adminServer && adminShutdown ? adminShutdown.drain(adminServer) : undefined]);
    deps.logger.info({ job: 'shutdown', ...drained }, 'connections drained');
    await jobs.stop();
    await deps.close();
    await tracing?.shutdown();
    await embedded?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error) => {
  process.stderr.write(`gateway failed to start: ${errorMessage(error)}\n`);
  process.exit(1);
});
