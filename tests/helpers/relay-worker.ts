/**
 * A gateway process that only runs the outbox relay against a shared database, then
 * prints what it did as JSON. The relay concurrency test races it against relays in
 * the test process, so leases are exercised across OS processes, not just promises.
 */
import postgres from 'postgres';
import { parseEnv } from '../../src/config/env.js';
import { buildDeps } from '../../src/deps.js';
import { relayOnce, type RelayStep } from '../../src/events/relay.js';
import { configuredSinks } from '../../src/events/sinks.js';
import { createLogger } from '../../src/observability/logger.js';

export interface RelayWorkerConfig {
  databaseUrl: string;
  sinkUrls: string[];
  secret: string;
  retryDelaysMs: number[];
  deliveryBatch: number;
  /** Deliveries (events × sinks) that must be delivered before the worker stops. */
  expectedDelivered: number;
  deadlineMs: number;
}

const config = JSON.parse(process.env.RELAY_WORKER_CONFIG!) as RelayWorkerConfig;
const env = parseEnv({ DATABASE_URL: config.databaseUrl, EVENT_SINK_URLS: config.sinkUrls.join(','), EVENT_SINK_SECRET: config.secret, LOG_LEVEL: 'silent' });
const deps = buildDeps(env, { logger: createLogger('silent') });
const sql = postgres(config.databaseUrl, { max: 1, onnotice: () => {} });
const sinkIds = configuredSinks(deps).map((sink) => sink.id);
const totals: RelayStep = { relayed: 0, attempted: 0, delivered: 0, retried: 0, dead: 0, gone: 0, superseded: 0, probed: 0, probeFailed: 0, pulledForward: 0 };
const deadline = Date.now() + config.deadlineMs;

process.stdout.write('ready\n');
for (;;) {
  const step = await relayOnce(deps, { retryDelaysMs: config.retryDelaysMs, deliveryBatch: config.deliveryBatch, concurrency: 4 });
  for (const key of Object.keys(totals) as (keyof RelayStep)[]) totals[key] += step[key];
  if (step.attempted === 0 && step.relayed === 0) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from event_deliveries where state = 'delivered' and sink_id = any(${sinkIds})`;
    if (row!.n >= config.expectedDelivered || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
process.stdout.write(`${JSON.stringify(totals)}\n`);
await sql.end();
await deps.close();
process.exit(0);
