/**
 * The baseline the gateway is measured against: the Mollie webhook handler a careful
 * engineer would write by hand on the same stack, in a few dozen lines. node:http,
 * postgres.js, ioredis `SET NX PX`, one fetch, one transaction, a receipt row before and
 * an update after (three commits per webhook); it answers 200 only once all three are
 * durable, 503 when the payment is locked or Mollie fails (Mollie retries).
 *
 * It has none of what the gateway adds (guarded writes against older snapshots, fences,
 * an outbox, metrics, logs, the SDK's validation, body limits); it is here so that
 * `npm run bench` can say how the gateway compares with what a user would write instead.
 *
 * Run as its own process: BASELINE_PORT, DATABASE_URL, REDIS_URL, MOLLIE_API_URL,
 * MOLLIE_API_KEY, DATABASE_POOL_SIZE (10). Prints `listening <port>` when ready.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import postgres from 'postgres';

const env = process.env;
const sql = postgres(env.DATABASE_URL!, { max: Number(env.DATABASE_POOL_SIZE ?? 10), onnotice: () => {} });
const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

await sql`create table if not exists baseline_receipts (
  id bigserial primary key, payment_id text not null, state text not null default 'received',
  received_at timestamptz not null default now(), processed_at timestamptz)`;
await sql`create table if not exists baseline_payments (
  id text primary key, status text not null, amount numeric(20, 2) not null, currency text not null,
  updated_at timestamptz not null default now())`;

async function handle(paymentId: string): Promise<number> {
  const [receipt] = await sql<{ id: string }[]>`insert into baseline_receipts (payment_id) values (${paymentId}) returning id`;
  const lockKey = `baseline:lock:${paymentId}`;
  const token = randomUUID();
  if ((await redis.set(lockKey, token, 'PX', 10_000, 'NX')) !== 'OK') return 503;
  try {
    const response = await fetch(`${env.MOLLIE_API_URL}/v2/payments/${encodeURIComponent(paymentId)}`, {
      headers: { authorization: `Bearer ${env.MOLLIE_API_KEY}` },
    });
    if (!response.ok) await response.arrayBuffer(); // frees the connection for the next fetch
    if (!response.ok && response.status !== 404) return 503;
    if (response.ok) {
      const payment = (await response.json()) as { status: string; amount: { value: string; currency: string } };
      await sql.begin(async (tx) => {
        await tx`insert into baseline_payments (id, status, amount, currency)
          values (${paymentId}, ${payment.status}, ${payment.amount.value}, ${payment.amount.currency})
          on conflict (id) do update set status = excluded.status, amount = excluded.amount, updated_at = now()
          where baseline_payments.status <> excluded.status or baseline_payments.amount <> excluded.amount`;
      });
    }
    const state = response.ok ? 'processed' : 'not_found';
    await sql`update baseline_receipts set state = ${state}, processed_at = now() where id = ${receipt!.id}`;
    return 200;
  } finally {
    await redis.eval(RELEASE, 1, lockKey, token);
  }
}

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const id = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('id');
    if (request.method !== 'POST' || !id || !/^tr_[A-Za-z0-9]+$/.test(id)) {
      response.writeHead(400).end('expected id=tr_...');
      return;
    }
    handle(id).then(
      (status) => response.writeHead(status).end(),
      () => response.writeHead(500).end(),
    );
  });
});
server.listen(Number(env.BASELINE_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close();
    void Promise.allSettled([sql.end({ timeout: 2 }), redis.quit()]).then(() => process.exit(0));
  });
}
