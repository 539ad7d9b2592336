#!/usr/bin/env node
/**
 * The container health check (Dockerfile HEALTHCHECK, docker-compose.yml): the slim image has
 * no curl, and node is there anyway.
 *
 *   node scripts/healthcheck.mjs /healthz   # healthy when GET http://127.0.0.1:$PORT/healthz answers 2xx
 *   node scripts/healthcheck.mjs            # healthy when anything answers HTTP on $PORT (the sandboxes)
 */
const port = process.env.PORT ?? '8787';
const path = process.argv[2];
try {
  const response = await fetch(`http://127.0.0.1:${port}${path ?? '/'}`, { signal: AbortSignal.timeout(3000) });
  process.exit(path === undefined || response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
