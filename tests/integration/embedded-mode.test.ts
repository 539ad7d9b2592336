import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox } from '../../src/sandbox/mollie-api.js';
import { TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';

/**
 * `npm start` with no DATABASE_URL and no REDIS_URL: an embedded PGlite in a data folder
 * and the in-process lock. Data must survive a restart.
 */
let parentDir: string;
let dataDir: string;
let mollie: Awaited<ReturnType<typeof startMollieSandbox>>;

beforeAll(async () => {
  parentDir = await mkdtemp(path.join(tmpdir(), 'gateway-embedded-'));
  // Not created in advance: a fresh checkout has no .data folder either.
  dataDir = path.join(parentDir, '.data', 'pglite');
  mollie = await startMollieSandbox({ port: 0 });
});

afterAll(async () => {
  await mollie?.close();
  await rm(parentDir, { recursive: true, force: true });
});

describe('embedded mode', () => {
  it('starts, says so, syncs a payment, and keeps it across a restart', async () => {
    const env = {
      DATABASE_URL: undefined,
      REDIS_URL: undefined,
      EMBEDDED_DATA_DIR: dataDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      MOLLIE_API_KEY: 'test_sandbox',
      MOLLIE_API_URL: mollie.url,
    };
    const payment = mollie.createPayment({ status: 'paid' });
    const auth = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

    const first = await startGatewayProcess(env, { timeoutMs: 60_000 });
    try {
      expect(first.output()).toContain(`EMBEDDED PGlite in ${dataDir}`);
      expect(first.output()).toContain('lock:     IN-PROCESS');
      const ready = await (await fetch(`${first.url}/readyz`)).json();
      expect(ready).toMatchObject({ status: 'ready', lock: 'in-process' });
      const synced = await fetch(`${first.url}/v1/payments/mollie/${payment.id}/sync`, { method: 'POST', headers: auth });
      expect(synced.status).toBe(200);
      expect(await synced.json()).toMatchObject({ id: payment.id, status: 'paid', version: 1 });
    } finally {
      expect(await first.stop()).toBe(0);
    }

    const second = await startGatewayProcess(env, { timeoutMs: 60_000 });
    try {
      const res = await fetch(`${second.url}/v1/payments/mollie/${payment.id}`, { headers: auth });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: payment.id, status: 'paid', version: 1 });
      const list = await (await fetch(`${second.url}/v1/payments`, { headers: auth })).json();
      expect(list.data).toHaveLength(1);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
