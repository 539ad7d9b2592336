/**
 * Runs one sandbox service as its own process (for docker-compose and `npm run stack`):
 *   tsx src/cli/sandbox.ts mollie|gocardless|receiver
 * Environment: PORT, HOST (default 127.0.0.1), and for the receiver EVENT_SINK_SECRET;
 * for GoCardless GOCARDLESS_WEBHOOK_URL and GOCARDLESS_WEBHOOK_SECRET to send webhooks.
 */
import { errorMessage } from '../primitives/error-message.js';
import { startGoCardlessSandbox } from '../sandbox/gocardless-api.js';
import { startMollieSandbox } from '../sandbox/mollie-api.js';
import { startDownstreamReceiver } from '../sandbox/downstream-receiver.js';

const kind = process.argv[2];
const port = Number(process.env.PORT ?? 0);
const hostname = process.env.HOST ?? '127.0.0.1';
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main() {
  switch (kind) {
    case 'mollie': {
      const sandbox = await startMollieSandbox({ port, hostname, autoWebhooks: true });
      say(`mollie sandbox on ${sandbox.url} (API key test_sandbox; control API under /__sandbox)`);
      return () => sandbox.close();
    }
    case 'gocardless': {
      const webhookUrl = process.env.GOCARDLESS_WEBHOOK_URL;
      const sandbox = await startGoCardlessSandbox({
        port,
        hostname,
        webhookSecret: process.env.GOCARDLESS_WEBHOOK_SECRET,
        webhookEndpoint: webhookUrl ? { url: webhookUrl } : undefined,
      });
      say(`gocardless sandbox on ${sandbox.url} (token ${sandbox.accessToken}; control API under /__sandbox)`);
      return () => sandbox.close();
    }
    case 'receiver': {
      const secret = process.env.EVENT_SINK_SECRET;
      if (!secret) throw new Error('EVENT_SINK_SECRET is required for the receiver');
      const receiver = await startDownstreamReceiver({ port, hostname, secret, print: say });
      say(`downstream receiver on ${receiver.url} (verifies Standard Webhooks signatures)`);
      return () => receiver.close();
    }
    default:
      throw new Error(`usage: sandbox.ts mollie|gocardless|receiver (got ${JSON.stringify(kind)})`);
  }
}

main().then(
  (close) => {
    const stop = () => void close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
  (error) => {
    process.stderr.write(`${errorMessage(error)}\n`);
    process.exit(1);
  },
);
