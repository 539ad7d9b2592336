/**
 * The local stack as plain processes, for machines without Docker (`npm run stack`):
 * the Mollie and GoCardless sandboxes, a downstream receiver that verifies and prints
 * every event, and the gateway wired to all three, on the local Postgres and Redis.
 *
 * Environment (all optional): STACK_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/gateway_stack),
 * STACK_REDIS_URL (default redis://127.0.0.1:6379), PORT (gateway, 8787), MOLLIE_PORT (8801),
 * GOCARDLESS_PORT (8802), RECEIVER_PORT (8803), BANK_PORT (8804, the bank-feed sandbox),
 * GATEWAYS (how many gateway processes, 1).
 *
 * The bank feed is live too: the stack creates a connection at the bank sandbox, gives
 * consent at its link as an end user would, and keeps adding transactions (booking some
 * pending ones) so the gateway's scheduler has something to import every half minute.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../primitives/error-message.js';
import { startDownstreamReceiver } from '../sandbox/downstream-receiver.js';
import { startGoCardlessSandbox } from '../sandbox/gocardless-api.js';
import { SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET, startMollieSandbox } from '../sandbox/mollie-api.js';
import { SANDBOX_BANK_SECRET_ID, SANDBOX_BANK_SECRET_KEY, SANDBOX_INSTITUTION_ID, startBankSandbox, type BankSandbox } from '../sandbox/gocardless-bank/server.js';
import { bookPending, generateTransactions } from '../sandbox/gocardless-bank/transactions.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const say = (line: string) => process.stdout.write(`${line}\n`);

export const STACK_WEBHOOK_SECRET = 'stack_gocardless_webhook_secret';
export const STACK_MOLLIE_SECRET = 'stack_mollie_webhook_secret';
/**
 * The stack's own ACCOUNT_SECRETS_KEY (32 bytes, base64), so accounts created against it can be
 * opened again after a restart of the stack. A local key for sandbox credentials only: never
 * use it anywhere else (generate one with `openssl rand -base64 32`).
 */
export const STACK_ACCOUNT_SECRETS_KEY = Buffer.from('stack-only-key-for-sandbox-creds').toString('base64');

async function main() {
  const gatewayPort = num('PORT', 8787);
  const gateways = num('GATEWAYS', 1);
  const adminToken = process.env.ADMIN_TOKEN ?? `stack-${randomBytes(12).toString('hex')}`;
  const sinkSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;

  const receiver = await startDownstreamReceiver({ port: num('RECEIVER_PORT', 8803), secret: sinkSecret, print: (line) => say(`[receiver] ${line}`) });
  const mollie = await startMollieSandbox({ port: num('MOLLIE_PORT', 8801), autoWebhooks: true });
  const gocardless = await startGoCardlessSandbox({
    port: num('GOCARDLESS_PORT', 8802),
    webhookSecret: STACK_WEBHOOK_SECRET,
    webhookEndpoint: { url: `${gatewayUrl}/webhooks/gocardless` },
  });

  // A bank day of the real length, but room for the stack's frequent syncs.
  const bank = await startBankSandbox({ port: num('BANK_PORT', 8804), dailyLimit: 10_000 });

  const env = {
    ...process.env,
    GOCARDLESS_BANK_SECRET_ID: SANDBOX_BANK_SECRET_ID,
    GOCARDLESS_BANK_SECRET_KEY: SANDBOX_BANK_SECRET_KEY,
    GOCARDLESS_BANK_API_URL: bank.url,
    BANK_SYNC_INTERVAL_MS: process.env.BANK_SYNC_INTERVAL_MS ?? '30000',
    BANK_DAILY_CALLS: process.env.BANK_DAILY_CALLS ?? '1000',
    DATABASE_URL: process.env.STACK_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/gateway_stack',
    REDIS_URL: process.env.STACK_REDIS_URL ?? 'redis://127.0.0.1:6379',
    ADMIN_TOKEN: adminToken,
    ACCOUNT_SECRETS_KEY: process.env.ACCOUNT_SECRETS_KEY ?? STACK_ACCOUNT_SECRETS_KEY,
    MOLLIE_API_KEY: 'test_sandbox',
    MOLLIE_API_URL: mollie.url,
    MOLLIE_WEBHOOK_SECRETS: STACK_MOLLIE_SECRET,
    // Mollie OAuth against the sandbox's app (GET /v1/accounts/mollie/connect; accounts need ACCOUNT_SECRETS_KEY).
    MOLLIE_OAUTH_CLIENT_ID: SANDBOX_OAUTH_CLIENT_ID,
    MOLLIE_OAUTH_CLIENT_SECRET: SANDBOX_OAUTH_CLIENT_SECRET,
    MOLLIE_OAUTH_URL: mollie.url,
    GOCARDLESS_ACCESS_TOKEN: gocardless.accessToken,
    GOCARDLESS_API_URL: gocardless.url,
    GOCARDLESS_WEBHOOK_SECRETS: STACK_WEBHOOK_SECRET,
    EVENT_SINK_URLS: receiver.url,
    EVENT_SINK_SECRET: sinkSecret,
    EVENT_STREAM: process.env.EVENT_STREAM ?? 'gateway-events',
  };
  const children: ChildProcess[] = [];
  for (let i = 0; i < gateways; i++) {
    const port = gatewayPort + i * 10;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/node.ts')], { cwd: ROOT, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const tag = gateways > 1 ? `[gateway ${i + 1}]` : '[gateway]';
    child.stdout!.on('data', (chunk: Buffer) => process.stdout.write(prefixLines(tag, chunk)));
    child.stderr!.on('data', (chunk: Buffer) => process.stdout.write(prefixLines(tag, chunk)));
    children.push(child);
  }

  say('');
  say(`stack up:`);
  say(`  gateway            ${gatewayUrl}${gateways > 1 ? ` (+${gateways - 1} more, ports +10 each)` : ''}`);
  say(`  ADMIN_TOKEN        ${adminToken}`);
  say(`  mollie sandbox     ${mollie.url}   (create payments: POST /__sandbox/payments {"status":"open","webhookUrl":"${gatewayUrl}/webhooks/mollie"})`);
  say(`  gocardless sandbox ${gocardless.url}   (webhooks go to ${gatewayUrl}/webhooks/gocardless)`);
  say(`  receiver           ${receiver.url}   (prints each verified event)`);
  say(`  bank sandbox       ${bank.url}   (GoCardless Bank Account Data; control API under /__sandbox)`);
  say('');
  const feeding = startBankDemo(gatewayUrl, adminToken, bank).catch((error: unknown) => {
    say(`[bank] demo connection failed: ${errorMessage(error)}`);
    return null;
  });

  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    const timer = await feeding;
    if (timer) clearInterval(timer);
    await Promise.all([receiver.close(), mollie.close(), gocardless.close(), bank.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

/**
 * Links one sandbox bank connection through the gateway's API and keeps its accounts
 * busy: every half minute a few booked and pending transactions arrive and the oldest
 * pending one is booked, which the scheduler imports (watch the receiver's bank.* lines).
 */
async function startBankDemo(gatewayUrl: string, adminToken: string, bank: BankSandbox): Promise<NodeJS.Timeout> {
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${gatewayUrl}/readyz`).then((r) => r.ok).catch(() => false);
    if (ready) break;
    if (Date.now() > deadline) throw new Error('the gateway did not become ready in 60 s');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const created = await fetch(`${gatewayUrl}/v1/bank-connections`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ institutionId: SANDBOX_INSTITUTION_ID, reference: 'stack-demo', redirectUrl: `${gatewayUrl}/healthz` }),
  });
  const connection = (await created.json()) as { id: string; link: string; status: string };
  if (!created.ok) throw new Error(`POST /v1/bank-connections answered ${created.status}: ${JSON.stringify(connection)}`);
  if (connection.status === 'awaiting_consent') await fetch(connection.link, { redirect: 'manual' });
  const requisition = [...bank.state.requisitions.values()].find((r) => r.reference === connection.id);
  const accounts = (requisition?.accounts ?? []).map((id) => bank.state.accounts.get(id)!).filter(Boolean);
  for (const account of accounts) if (account.booked.length === 0) generateTransactions(account, { booked: 20, pending: 3 });
  const synced = await fetch(`${gatewayUrl}/v1/bank-connections/${connection.id}/sync`, { method: 'POST', headers });
  const body = (await synced.json()) as { status?: string; accounts?: { id: string; lastSyncedAt: string | null }[] };
  say(`[bank] connection ${connection.id} (reference stack-demo) ${body.status ?? synced.status}, ${body.accounts?.length ?? 0} accounts; transactions: ${gatewayUrl}/v1/bank-transactions?connection=${connection.id}`);
  return setInterval(() => {
    for (const account of accounts) {
      if (account.pending.length > 0) bookPending(account, 0);
      generateTransactions(account, { booked: 2, pending: 1 });
    }
  }, 30_000);
}

function prefixLines(tag: string, chunk: Buffer): string {
  return chunk
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((line) => `${tag} ${line}\n`)
    .join('');
}

main().catch((error) => {
  process.stderr.write(`stack failed: ${errorMessage(error)}\n`);
  process.exit(1);
});
