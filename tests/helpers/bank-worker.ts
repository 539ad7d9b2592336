/**
 * A separate OS process for the bank feed's concurrency tests: it builds the real
 * deps and app against a shared database and the bank sandbox, prints READY, waits
 * for a line on stdin (the go signal), does its part, and prints a JSON summary.
 *
 * Actions: `create` fires `count` concurrent POST /v1/bank-connections with one body;
 * `sync` fires POST /v1/bank-connections/:id/sync `count` times, `spacingMs` apart;
 * `tokens` calls the API through the token store until `durationMs` has passed;
 * `scheduler` runs the bank scheduler loop for `durationMs`.
 */
import { parseEnv } from '../../src/config/env.js';
import { buildDeps } from '../../src/deps.js';
import { runBankScheduler } from '../../src/bank/scheduler.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { readLine } from './processes.js';

export interface BankWorkerConfig {
  action: 'create' | 'sync' | 'tokens' | 'scheduler';
  env: Record<string, string>;
  count?: number;
  spacingMs?: number;
  durationMs?: number;
  body?: unknown;
  connectionId?: string;
}

const config = JSON.parse(process.env.BANK_WORKER_CONFIG!) as BankWorkerConfig;
const env = parseEnv({ LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...config.env });
const deps = buildDeps(env, { logger: createLogger(env.LOG_LEVEL) });
const app = createApp(deps);
const auth = { Authorization: `Bearer ${env.ADMIN_TOKEN}` };

process.stdout.write('READY\n');
await readLine();

const results: unknown[] = [];
switch (config.action) {
  case 'create': {
    const responses = await Promise.all(
      Array.from({ length: config.count ?? 1 }, () =>
        app.request('/v1/bank-connections', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(config.body) }),
      ),
    );
    for (const response of responses) results.push({ status: response.status, body: await response.json() });
    break;
  }
  case 'sync': {
    await Promise.all(
      Array.from({ length: config.count ?? 1 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * (config.spacingMs ?? 0)));
        const response = await app.request(`/v1/bank-connections/${config.connectionId}/sync`, { method: 'POST', headers: auth });
        results.push({ status: response.status, body: await response.json() });
      }),
    );
    break;
  }
  case 'tokens': {
    const end = Date.now() + (config.durationMs ?? 1000);
    let calls = 0;
    while (Date.now() < end) {
      await deps.bank!.client.listInstitutions();
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    results.push({ calls });
    break;
  }
  case 'scheduler': {
    const controller = new AbortController();
    const loop = runBankScheduler(deps, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, config.durationMs ?? 1000));
    controller.abort();
    await loop;
    break;
  }
  default: {
    const unknown: never = config.action;
    throw new Error(`unknown action ${String(unknown)}`);
  }
}
process.stdout.write(`${JSON.stringify({ results })}\n`);
await deps.close();
process.exit(0);
