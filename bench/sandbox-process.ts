/**
 * The benchmark's provider sandboxes, in a process of their own so that the load
 * generator (autocannon, in the bench's main process) and the sandboxes do not share an
 * event loop: a sandbox answering late would show up as gateway latency.
 *
 * Started by bench/run.ts with an IPC channel; commands arrive as messages
 * `{ id, command, ...args }` and are answered `{ id, result }` or `{ id, error }`.
 */
import {
  DEFAULT_SANDBOX_ACCESS_TOKEN,
  DEFAULT_SANDBOX_WEBHOOK_SECRET,
  startGoCardlessSandbox,
} from '../src/sandbox/gocardless-api.js';
import { startMollieSandbox, type SandboxPayment as MolliePayment, type SandboxPaymentStatus } from '../src/sandbox/mollie-api.js';

type Command =
  | { command: 'mollie.bulk'; prefix: string; from: number; count: number; status: SandboxPaymentStatus; amount?: { currency: string; value: string }; ownerKeys?: string[] }
  | { command: 'mollie.timeline'; ids: string[]; steps: Array<{ atMs: number; status: SandboxPaymentStatus }> }
  | { command: 'mollie.setStatus'; ids: string[]; status: SandboxPaymentStatus }
  | { command: 'gocardless.bulk'; count: number; status: 'paid_out' | 'confirmed' | 'submitted' }
  | { command: 'mollie.keys'; count: number }
  | { command: 'stats' };

const mollie = await startMollieSandbox({ hostname: '127.0.0.1' });
// The benchmark measures the gateway, not GoCardless's documented 1,000 requests a minute.
const gocardless = await startGoCardlessSandbox({ hostname: '127.0.0.1', rateLimitPerMinute: 1_000_000_000 });

/**
 * Inserts payments straight into the sandbox's state. `createPayment` checks every id
 * against every payment's refunds (linear per call), which makes 100,000 payments take
 * minutes; the objects below are exactly what it would have stored.
 */
function mollieBulk(prefix: string, from: number, count: number, status: SandboxPaymentStatus, amount = { currency: 'EUR', value: '10.00' }, ownerKeys: string[] = []): number {
  // With owner keys, payment n belongs to ownerKeys[n mod length]: only that key can fetch it.
  const profiles = ownerKeys.map((token) => {
    const credential = mollie.accounts.get(token);
    if (!credential) throw new Error(`no sandbox key ${token}`);
    return credential.profileId;
  });
  const owner = ownerKeys.length > 0 ? ownerKeys[from % ownerKeys.length] : undefined;
  const template = mollie.createPayment({ id: `${prefix}${from}`, status, amount, method: 'ideal', metadata: { bench: true }, apiKey: owner });
  const payments = mollie.state.payments;
  let seq = template.seq;
  for (let n = from + 1; n < from + count; n++) {
    const id = `${prefix}${n}`;
    const profileId = profiles.length > 0 ? profiles[n % profiles.length]! : template.profileId;
    const payment: MolliePayment = { ...template, id, profileId, description: `Sandbox payment ${id}`, timeline: [], refunds: [], chargebacks: [], seq: ++seq };
    payments.set(id, payment);
  }
  return count;
}

/** API keys of merchants of their own (scenario f), each with its profile. */
function mollieKeys(count: number): Array<{ token: string; profileId: string }> {
  const keys: Array<{ token: string; profileId: string }> = [];
  for (let n = 0; n < count; n++) {
    const credential = mollie.accounts.addApiKey({ token: `test_benchmerchant${n}x${mollie.accounts.list().length}` });
    keys.push({ token: credential.token, profileId: credential.profileId });
  }
  return keys;
}

function gocardlessBulk(count: number, status: 'paid_out' | 'confirmed' | 'submitted'): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  const stop = gocardless.onEvent((event) => events.push(event as unknown as Record<string, unknown>));
  try {
    for (let i = 0; i < count; i++) gocardless.createPayment({ status, amount: 2500, currency: 'EUR' });
  } finally {
    stop();
  }
  return events;
}

async function handle(message: Command): Promise<unknown> {
  switch (message.command) {
    case 'mollie.bulk':
      return mollieBulk(message.prefix, message.from, message.count, message.status, message.amount, message.ownerKeys);
    case 'mollie.timeline':
      for (const id of message.ids) mollie.scheduleStatuses(id, message.steps);
      return message.ids.length;
    case 'mollie.setStatus':
      for (const id of message.ids) mollie.setStatus(id, message.status);
      return message.ids.length;
    case 'mollie.keys':
      return mollieKeys(message.count);
    case 'gocardless.bulk':
      return gocardlessBulk(message.count, message.status);
    case 'stats':
      return { molliePayments: mollie.state.payments.size, gocardlessPayments: gocardless.state.payments.size };
    default: {
      const unreachable: never = message;
      throw new Error(`unknown command ${JSON.stringify(unreachable)}`);
    }
  }
}

process.on('message', (raw: { id: number } & Command) => {
  handle(raw).then(
    (result) => process.send!({ id: raw.id, result }),
    (error: unknown) => process.send!({ id: raw.id, error: error instanceof Error ? error.message : String(error) }),
  );
});

process.on('disconnect', () => {
  void Promise.allSettled([mollie.close(), gocardless.close()]).then(() => process.exit(0));
});

process.send!({
  ready: true,
  mollieUrl: mollie.url,
  mollieApiKey: 'test_sandbox',
  gocardlessUrl: gocardless.url,
  gocardlessAccessToken: DEFAULT_SANDBOX_ACCESS_TOKEN,
  gocardlessWebhookSecret: DEFAULT_SANDBOX_WEBHOOK_SECRET,
});
