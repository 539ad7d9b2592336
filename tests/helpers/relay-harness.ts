import postgres from 'postgres';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { runRelay, type RunRelayOptions } from '../../src/events/relay.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { buildTestDeps } from './deps.js';
import { SINK_SECRET } from './outbound-events.js';
import { startReceiver, type WebhookReceiver } from './webhook-receiver.js';

/**
 * What the sink test files share: one database for the file (clones are the slow part),
 * a plain SQL client on it, and a list of things each test started that are stopped in
 * reverse after it, pass or fail. Each test has sinks of its own and stops its relay
 * before the next starts, so tests never hand each other events.
 */
export function sinkTestHarness() {
  let database: TestDatabase | undefined;
  let client: postgres.Sql | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    client = postgres(database.url, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
  });

  return {
    cleanups,
    get database(): TestDatabase {
      return database!;
    },
    get sql(): postgres.Sql {
      return client!;
    },
    /** Gateway deps on the file's database with the test sink secret; closed after the test. */
    deps(env: Record<string, string>): Deps {
      const built = buildTestDeps({ DATABASE_URL: database!.url, EVENT_SINK_SECRET: SINK_SECRET, ...env });
      cleanups.push(() => built.close());
      return built;
    },
    /** A scripted HTTP receiver, closed after the test. */
    async receiver(...args: Parameters<typeof startReceiver>): Promise<WebhookReceiver> {
      const started = await startReceiver(...args);
      cleanups.push(() => started.close());
      return started;
    },
    /** Runs the relay's loop until the returned stop is called (or the test ends). */
    startRelay(deps: Deps, options: Omit<RunRelayOptions, 'signal'> = {}): () => Promise<void> {
      const controller = new AbortController();
      const done = runRelay(deps, { idleMs: 10, ...options, signal: controller.signal });
      const stop = async () => {
        controller.abort();
        await done;
      };
      cleanups.push(stop);
      return stop;
    },
  };
}
