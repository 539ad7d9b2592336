/**
 * A separate OS process that, for a while, keeps asking usableMollieAccessToken for the
 * OAuth account's token and calls the Mollie sandbox with it, as a provider client does
 * for every Mollie call. It holds the credentials it read at start for the whole run (the
 * worst case: a cache that never hears of a refresh), so every expiry sends it to the
 * refresh path. Prints a JSON summary.
 */
import { accountSecretsFromEnv, openCredentials } from '../../src/accounts/accounts.js';
import { usableMollieAccessToken, type MollieOAuthCredentials } from '../../src/accounts/oauth.js';
import { getAccount } from '../../src/accounts/store.js';
import { parseEnv } from '../../src/config/env.js';
import { buildDeps, waitForRedis } from '../../src/deps.js';
import { createLogger } from '../../src/observability/logger.js';
import { readLine } from './processes.js';

export interface OAuthWorkerConfig {
  env: Record<string, string>;
  lockPrefix: string;
  accountName: string;
  sandboxUrl: string;
  paymentId: string;
  durationMs: number;
  /** Calls in flight at once in this process. */
  concurrency: number;
  /** Pause between one loop's calls. */
  pauseMs: number;
}

const config = JSON.parse(process.env.OAUTH_WORKER_CONFIG!) as OAuthWorkerConfig;
const env = parseEnv({ ...config.env, LOG_LEVEL: 'silent' });
const deps = buildDeps(env, { logger: createLogger('silent'), lockKeyPrefix: config.lockPrefix });
await waitForRedis(deps, 5000);
const secrets = accountSecretsFromEnv(env)!;
const account = (await getAccount(deps.db, 'mollie', config.accountName))!;
const credentials = (await openCredentials(secrets, account)) as MollieOAuthCredentials;
const oauthDeps = { db: deps.db, env, locker: deps.locker, secrets, logger: deps.logger };

process.stdout.write('READY\n');
const start = Number(await readLine());
await new Promise((resolve) => setTimeout(resolve, Math.max(0, start - Date.now())));

const outcomes: Record<string, number> = {};
const tokens = new Set<string>();
const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
const deadline = start + config.durationMs;

await Promise.all(
  Array.from({ length: config.concurrency }, async () => {
    while (Date.now() < deadline) {
      try {
        const token = await usableMollieAccessToken(oauthDeps, account, credentials);
        tokens.add(token);
        const res = await fetch(`${config.sandboxUrl}/v2/payments/${config.paymentId}`, { headers: { Authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        count(`http:${res.status}`);
      } catch (error) {
        count(`error:${(error as Error).name}:${(error as Error).message.slice(0, 120)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, config.pauseMs));
    }
  }),
);

process.stdout.write(`${JSON.stringify({ outcomes, distinctTokens: tokens.size })}\n`);
await deps.close();
process.exit(0);
