/**
 * How large is a GoCardless webhook body? Prints the sizes behind WEBHOOK_BODY_LIMIT
 * (src/http/app.ts): GoCardless's published example, a full batch from the sandbox (250
 * payment events, the most GoCardless sends at once, its events shaped like the real
 * ones), and the same batch with every event carrying the most metadata GoCardless
 * allows on `metadata` and `resource_metadata` (3 keys of up to 50 characters, values of
 * up to 500). Run: `npx tsx scripts/measure-gocardless-batches.ts`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startGoCardlessSandbox } from '../src/sandbox/gocardless-api.js';
import { GOCARDLESS_MAX_BATCH_SIZE } from '../src/sandbox/gocardless-webhook-sender.js';

const root = path.resolve(import.meta.dirname, '..');
const bytes = (events: unknown[]) => Buffer.byteLength(JSON.stringify({ events, meta: { webhook_id: 'WB0000000000AB' } }));

const sandbox = await startGoCardlessSandbox({ hostname: '127.0.0.1' });
try {
  for (let i = 0; i < GOCARDLESS_MAX_BATCH_SIZE; i++) {
    const payment = sandbox.createPayment({ metadata: { order: `order-${i}` }, reference: `INV-${i}`, emitEvent: false });
    sandbox.setPaymentStatus(payment.id, 'failed', { reasonCode: 'ADDACS-B', willAttemptRetry: false, notRetriedReason: 'other' });
  }
  const events = sandbox.state.events.slice(-GOCARDLESS_MAX_BATCH_SIZE) as unknown as Record<string, unknown>[];
  const fullMetadata = Object.fromEntries([0, 1, 2].map((k) => [`${'k'.repeat(49)}${k}`, 'v'.repeat(500)]));
  const heaviest = events.map((event) => ({ ...event, metadata: fullMetadata, resource_metadata: fullMetadata }));

  const fixture = readFileSync(path.join(root, 'tests/fixtures/gocardless/webhook_body.min.json'));
  const rows = [
    ['GoCardless example webhook (2 events)', fixture.byteLength],
    [`sandbox batch, ${events.length} payment events`, bytes(events)],
    [`sandbox batch, ${events.length} events with the largest metadata`, bytes(heaviest)],
  ] as const;
  for (const [what, size] of rows) process.stdout.write(`${what.padEnd(58)} ${String(size).padStart(9)} bytes\n`);
} finally {
  await sandbox.close();
}
