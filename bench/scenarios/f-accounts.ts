/**
 * Scenario (f): many merchants on one gateway. 10,000 stored Mollie accounts in the database
 * (credentials sealed with the gateway's own key, as POST /v1/accounts stores them), 1,000 of
 * them with an API key the sandbox knows; webhooks for distinct paid payments spread over
 * those 1,000 (/webhooks/mollie/<name>, each payment owned by its account's key, so it is
 * fetched with that key), beside the same webhooks for the single env-configured account
 * (/webhooks/mollie, as (a) sends them). One gateway process, in-process lock as (a)'s floor,
 * the two interleaved A B A B.
 */
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { credentialsContext } from '../../src/accounts/accounts.js';
import { createAccountSecrets } from '../../src/accounts/secrets.js';
import { round, say } from '../common.js';
import { CONNECTIONS, SECONDS, WARMUP_SECONDS, env } from '../config.js';
import { type Context, type GatewayRun, type LoadStats, type Usage, loadStats, measured, mollieWebhook, printLoad, withGateway } from '../measure.js';

const ACCOUNTS = Number(env.BENCH_ACCOUNTS ?? 10_000);
const ACTIVE_ACCOUNTS = Number(env.BENCH_ACTIVE_ACCOUNTS ?? 1_000);
const ROUNDS = Number(env.BENCH_AB_ROUNDS ?? 2);

type Pass = { load: LoadStats; usage: Usage };

export interface ScenarioFResult {
  accounts: number;
  activeAccounts: number;
  rounds: Array<{ single: Pass; spread: Pass }>;
  singleRates: number[];
  spreadRates: number[];
  /** Mean spread rate / mean single-account rate. */
  ratio: number;
  gateway: GatewayRun;
}

const accountName = (index: number) => `bench-${index}`;

/** Sealed as createAccount seals them, inserted in bulk (the provider check is not what this measures). */
async function insertAccounts(ctx: Context, secretsKey: string, keys: Array<{ token: string; profileId: string }>): Promise<void> {
  const secrets = createAccountSecrets(secretsKey);
  const batch: Array<Record<string, unknown>> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await ctx.benchSql`
      insert into accounts ${ctx.benchSql(batch, 'provider', 'name', 'external_id', 'status', 'credentials_kind', 'credentials_last4', 'credentials_key_id', 'credentials_ciphertext', 'next_check_at')}`;
    batch.length = 0;
  };
  for (let index = 0; index < ACCOUNTS; index++) {
    const name = accountName(index);
    // The first ACTIVE_ACCOUNTS hold the sandbox's keys; the rest are idle merchants.
    const key = keys[index] ?? { token: `test_idle${index}x${randomBytes(6).toString('hex')}`, profileId: `pfl_idle${index}` };
    const sealed = await secrets.seal(JSON.stringify({ kind: 'apiKey', apiKey: key.token }), credentialsContext('mollie', name));
    batch.push({
      provider: 'mollie',
      name,
      external_id: key.profileId,
      status: 'active',
      credentials_kind: 'apiKey',
      credentials_last4: key.token.slice(-4),
      credentials_key_id: sealed.keyId,
      credentials_ciphertext: sealed.ciphertext,
      // Not checked during the passes: the periodic check is not what this measures.
      next_check_at: new Date(Date.now() + 24 * 3600_000),
    });
    if (batch.length >= 1000) await flush();
  }
  await flush();
}

export async function scenarioF(ctx: Context): Promise<ScenarioFResult> {
  say(`(f) ${ACCOUNTS} stored accounts, webhooks spread over ${ACTIVE_ACCOUNTS} of them, beside the single env account`);
  const perPass = 2000 * (3 * WARMUP_SECONDS + SECONDS);
  const keys = await ctx.sandbox.call<Array<{ token: string; profileId: string }>>({ command: 'mollie.keys', count: ACTIVE_ACCOUNTS });
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix: 'tr_fs', from: 0, count: perPass * ROUNDS, status: 'paid' });
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix: 'tr_fm', from: 0, count: perPass * ROUNDS, status: 'paid', ownerKeys: keys.map((key) => key.token) });
  const secretsKey = randomBytes(32).toString('base64');
  let single = 0;
  let spread = 0;
  const singleRequest = mollieWebhook(() => `tr_fs${single++}`);
  const spreadRequest = {
    ...mollieWebhook(() => ''),
    setupRequest: (request: { path?: string; body?: string }) => {
      const n = spread++;
      // Payment n belongs to key n mod ACTIVE_ACCOUNTS (mollie.bulk's ownerKeys), i.e. to that account.
      request.path = `/webhooks/mollie/${accountName(n % ACTIVE_ACCOUNTS)}`;
      request.body = `id=tr_fm${n}`;
      return request;
    },
  };
  const rounds: ScenarioFResult['rounds'] = [];
  const { gateway } = await withGateway(
    ctx,
    'f-accounts',
    { lock: 'in-process', env: { ACCOUNT_SECRETS_KEY: secretsKey, ACCOUNT_CHECK_INTERVAL_MS: String(24 * 3600_000) } },
    async (gw) => {
      // After the gateway's start-up migrated the database: the accounts are there before any webhook names one.
      const started = performance.now();
      await insertAccounts(ctx, secretsKey, keys);
      say(`  ${ACCOUNTS} accounts sealed and inserted in ${round((performance.now() - started) / 1000)} s`);
      const warmedUp = new Set<string>();
      const pass = async (label: string, request: typeof singleRequest): Promise<Pass> => {
        const warmup = warmedUp.has(label) ? WARMUP_SECONDS : 3 * WARMUP_SECONDS;
        warmedUp.add(label);
        await autocannon({ url: gw.url, connections: CONNECTIONS, duration: warmup, requests: [request] });
        const result = await measured(ctx, gw, async () => loadStats(await autocannon({ url: gw.url, connections: CONNECTIONS, duration: SECONDS, requests: [request] })));
        printLoad(label, result.value, result.usage);
        return { load: result.value, usage: result.usage };
      };
      for (let index = 0; index < ROUNDS; index++) {
        const singlePass = await pass(`round ${index + 1}: one account (env)`, singleRequest);
        const spreadPass = await pass(`round ${index + 1}: ${ACTIVE_ACCOUNTS} of ${ACCOUNTS} stored accounts`, spreadRequest as typeof singleRequest);
        rounds.push({ single: singlePass, spread: spreadPass });
      }
    },
  );
  const check = await ctx.benchSql<{ account: string; payments: number }[]>`
    select account, count(*)::int as payments from payments where provider_payment_id like 'tr_fm%' group by account order by payments desc limit 1`;
  const filedUnder = await ctx.benchSql<{ accounts: number }[]>`
    select count(distinct account)::int as accounts from payments where provider_payment_id like 'tr_fm%'`;
  say(`  spread payments filed under ${filedUnder[0]?.accounts ?? 0} accounts (busiest: ${check[0]?.account} with ${check[0]?.payments})`);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const singleRates = rounds.map((r) => r.single.load.rate);
  const spreadRates = rounds.map((r) => r.spread.load.rate);
  const ratio = round(mean(spreadRates) / mean(singleRates), 2);
  say(`  spread / single-account throughput (means of ${ROUNDS} interleaved passes each): ${ratio}`);
  for (const r of rounds) if (r.single.load.non2xx + r.spread.load.non2xx > 0) say(`  WARNING: non-2xx answers: single ${r.single.load.non2xx}, spread ${r.spread.load.non2xx}`);
  return { accounts: ACCOUNTS, activeAccounts: ACTIVE_ACCOUNTS, rounds, singleRates, spreadRates, ratio, gateway };
}
