/**
 * Creating accounts through two gateway processes at once: 200 merchants, 20 of them
 * created a second time under another name, the requests spread over both processes.
 * Exactly 200 accounts; every duplicate answered 200 with the first name.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, TEST_ADMIN_TOKEN } from '../helpers/deps.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

let database: TestDatabase;
let sql: postgres.Sql;
let mollie: MollieSandbox;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  mollie = await startMollieSandbox();
  const env = { DATABASE_URL: database.url, ADMIN_TOKEN: TEST_ADMIN_TOKEN, ACCOUNT_SECRETS_KEY: randomBytes(32).toString('base64'), MOLLIE_API_URL: mollie.url, REDIS_URL: '' };
  gateways.push(...(await Promise.all([startGatewayProcess(env, { timeoutMs: 90_000 }), startGatewayProcess(env, { timeoutMs: 90_000 })])));
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.stop()));
  await mollie?.close();
  await sql?.end();
  await database?.drop();
});

describe('accounts created through two processes', () => {
  it('200 merchants, 20 twice under other names: exactly 200 accounts, the duplicates answered with the first name', async () => {
    const keys = Array.from({ length: 200 }, () => mollie.accounts.addApiKey());
    const requests = [
      ...keys.map((key, i) => ({ name: `shop-${i}`, apiKey: key.token })),
      ...keys.slice(0, 20).map((key, i) => ({ name: `shop-${i}-again`, apiKey: key.token })),
    ];
    // Interleaved so each pair's two requests go to different processes at about the same time.
    const order = requests.map((request, i) => ({ request, i })).sort((a, b) => (a.i % 200) - (b.i % 200) || a.i - b.i);
    const answers = new Array<{ status: number; name: string }>(requests.length);
    await Promise.all(
      order.map(async ({ request, i }, position) => {
        const gateway = gateways[position % 2]!;
        const res = await fetch(`${gateway.url}/v1/accounts`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': 'application/json' },
          body: JSON.stringify({ provider: 'mollie', name: request.name, credentials: { apiKey: request.apiKey } }),
        });
        const body = (await res.json()) as { name: string };
        answers[i] = { status: res.status, name: body.name };
      }),
    );
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(200);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(20);
    for (let i = 0; i < 20; i++) expect(answers[200 + i]!.name).toBe(answers[i]!.name);
    const rows = await sql<{ n: string; identities: string }[]>`select count(*) as n, count(distinct external_id) as identities from accounts`;
    expect(Number(rows[0]!.n)).toBe(200);
    expect(Number(rows[0]!.identities)).toBe(200);
  });
});
