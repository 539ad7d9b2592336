/**
 * The server half of bench/http-layer-cpu.ts: the gateway's app (src/http/app.ts) built
 * from the source tree named by argv[2], behind the graceful-shutdown wrapper and
 * @hono/node-server exactly as src/node.ts serves it, logging at LOG_LEVEL to stdout.
 * Tells its parent the port, then answers `cpu` messages with its own CPU time.
 */
import path from 'node:path';

const tree = path.resolve(process.argv[2] ?? '.');
const load = (file: string) => import(path.join(tree, 'src', file));

const { serve } = await import('@hono/node-server');
const { parseEnv } = await load('config/env.ts');
const { buildDeps } = await load('deps.ts');
const { runMigrations, ensureDatabase } = await load('db/client.ts');
const { createApp } = await load('http/app.ts');
const { createGracefulShutdown } = await load('http/graceful-shutdown.ts');

const env = parseEnv(process.env);
await ensureDatabase(env.DATABASE_URL);
await runMigrations(env.DATABASE_URL, path.join(tree, 'drizzle'));
// BENCH_LOG_BUFFER=N: the log written through a buffered asynchronous destination of N bytes, to compare.
const buffer = Number(process.env.BENCH_LOG_BUFFER ?? 0);
const { createLogger } = await load('observability/logger.ts');
const { default: pino } = await import('pino');
const logger = buffer > 0 ? createLogger(env.LOG_LEVEL, pino.destination({ dest: 1, minLength: buffer, sync: false })) : undefined;
const deps = buildDeps(env, { providers: () => ({}), ...(logger ? { logger } : {}) });
const app = createApp(deps);
const shutdown = createGracefulShutdown(app.fetch, { graceMs: env.SHUTDOWN_GRACE_MS });
const server = serve({ fetch: shutdown.fetch, port: 0, hostname: '127.0.0.1' }, (info) => process.send!({ port: info.port }));
shutdown.attach(server as never);
process.on('message', (message: string) => {
  if (message === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ cpuMicros: user + system, heapUsed: process.memoryUsage().heapUsed });
  }
});
process.on('SIGTERM', async () => {
  await shutdown.drain(server as never);
  await deps.close();
  process.exit(0);
});
