/**
 * The local stack as plain processes, for machines without Docker (`npm run stack`):
 * the Mollie and GoCardless sandboxes, a downstream receiver that verifies and prints
 * every event, and the gateway wired to all three, on the local Postgres and Redis.
 *
 * Environment (all optional): STACK_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/gateway_stack),
 * STACK_REDIS_URL (default redis://127.0.0.1:6379), PORT (gateway, 8787), MOLLIE_PORT (8801),
 * GOCARDLESS_PORT (8802), RECEIVER_PORT (8803), GATEWAYS (how many gateway processes, 1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDownstreamReceiver } from '../sandbox/downstream-receiver.js';
import { startGoCardlessSandbox } from '../sandbox/gocardless-api.js';
import { startMollieSandbox } from '../sandbox/mollie-api.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const say = (line: string) => process.stdout.write(`${line}\n`);

export const STACK_WEBHOOK_SECRET = 'stack_gocardless_webhook_secret';
export const STACK_MOLLIE_SECRET = 'stack_mollie_webhook_secret';

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

  const env = {
    ...process.env,
    DATABASE_URL: process.env.STACK_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/gateway_stack',
    REDIS_URL: process.env.STACK_REDIS_URL ?? 'redis://127.0.0.1:6379',
    ADMIN_TOKEN: adminToken,
    MOLLIE_API_KEY: 'test_sandbox',
    MOLLIE_API_URL: mollie.url,
    MOLLIE_WEBHOOK_SECRETS: STACK_MOLLIE_SECRET,
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
  say('');

  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    await Promise.all([receiver.close(), mollie.close(), gocardless.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
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
  process.stderr.write(`stack failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
