import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox } from '../../src/sandbox/mollie-api.js';
import { eventually, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
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

  it('refuses a second process on the same data folder, keeps what the first acknowledged, and is not blocked by a killed holder', async () => {
    const sharedDir = path.join(parentDir, 'shared', 'pglite');
    const env = {
      DATABASE_URL: undefined,
      REDIS_URL: undefined,
      EMBEDDED_DATA_DIR: sharedDir,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      MOLLIE_API_KEY: 'test_sandbox',
      MOLLIE_API_URL: mollie.url,
    };
    const auth = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
    const acknowledge = async (url: string) => {
      const payment = mollie.createPayment({ status: 'paid' });
      const res = await fetch(`${url}/webhooks/mollie`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `id=${payment.id}`,
      });
      expect(res.status).toBe(200);
      return payment.id;
    };
    let lastFeed = '';
    const paidEvents = async (url: string) => {
      const res = await fetch(`${url}/v1/events?limit=1000`, { headers: auth });
      const text = await res.text();
      lastFeed = `${res.status} ${text.slice(0, 1500)}`;
      const feed = JSON.parse(text);
      // Only this test's payments: the Mollie sweep also imports the payments earlier tests left
      // in the shared sandbox, each with its own payment.paid.
      return (feed.data as { type: string; data: { paymentId: string } }[])
        .filter((e) => e.type === 'payment.paid' && acknowledged.includes(e.data.paymentId))
        .map((e) => e.data.paymentId);
    };

    const first = await startGatewayProcess(env, { timeoutMs: 120_000 });
    const acknowledged: string[] = [];
    try {
      acknowledged.push(await acknowledge(first.url));
      // The second process must exit before it opens the database, naming the folder and the holder.
      const refused = await startGatewayProcess(env, { timeoutMs: 120_000 }).then(
        async (second) => {
          await second.kill();
          return 'started';
        },
        (error: Error) => error.message,
      );
      expect(refused).toMatch(/gateway exited [1-9]\d* before it was ready/);
      expect(refused).toContain(`EMBEDDED_DATA_DIR ${sharedDir} is in use by another gateway process (pid ${first.child.pid} `);
      // The first goes on acknowledging, untouched by the attempt.
      for (let i = 0; i < 4; i++) acknowledged.push(await acknowledge(first.url));
      // Slow on a loaded machine: PGlite serves one connection, shared by the requests and every loop.
      await eventually(async () => (await paidEvents(first.url)).length === acknowledged.length, { what: 'every acknowledged payment paid', timeoutMs: 180_000 }).catch(
        (error: Error) => {
          throw new Error(`${error.message}\nlast feed: ${lastFeed}\n${first.output().slice(-3000)}`);
        },
      );
    } finally {
      expect(await first.stop()).toBe(0);
    }

    // Across a restart: every acknowledged payment, each with its payment.paid event.
    const restarted = await startGatewayProcess(env, { timeoutMs: 120_000 });
    try {
      for (const id of acknowledged) {
        const res = await fetch(`${restarted.url}/v1/payments/mollie/${id}`, { headers: auth });
        expect(res.status, id).toBe(200);
        expect(await res.json()).toMatchObject({ id, status: 'paid' });
      }
      expect((await paidEvents(restarted.url)).sort()).toEqual([...acknowledged].sort());
    } finally {
      // A crash leaves no lock behind: the kernel drops it with the process.
      await restarted.kill();
    }
    const afterKill = await startGatewayProcess(env, { timeoutMs: 120_000 });
    try {
      expect(afterKill.output()).toContain(`locked (flock on ${path.join(sharedDir, 'gateway.lock')}, pid ${afterKill.child.pid})`);
      const res = await fetch(`${afterKill.url}/v1/payments/mollie/${acknowledged[0]}`, { headers: auth });
      expect(res.status).toBe(200);
    } finally {
      expect(await afterKill.stop()).toBe(0);
    }
  }, 600_000);
});
