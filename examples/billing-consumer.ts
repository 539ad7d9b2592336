/**
 * An example billing consumer built on packages/consumer, against `npm run stack`:
 * pages the gateway's pull API from a cursor stored in its own Postgres database and
 * keeps a small ledger there, each event applied once, never a stale version.
 *
 *   ADMIN_TOKEN=walkthrough-admin-token npm run stack          # terminal 1
 *   ADMIN_TOKEN=walkthrough-admin-token npx tsx examples/billing-consumer.ts   # terminal 2
 *
 * GATEWAY_URL (http://127.0.0.1:8787), BILLING_DATABASE_URL
 * (postgres://postgres@127.0.0.1:5432/billing_example, created if missing),
 * POLL_MS (1000), ONCE=1 (one pass, then exit).
 */
import postgres from 'postgres';
import { createConsumer, isPaymentChange, type GatewayEvent } from '../packages/consumer/src/index.js';
import { createPostgresStore } from '../packages/consumer/src/postgres-store.js';

const gatewayUrl = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8787';
const token = process.env.ADMIN_TOKEN;
const databaseUrl = process.env.BILLING_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/billing_example';
if (!token) throw new Error('set ADMIN_TOKEN (the gateway\'s)');

async function ensureDatabase(url: string) {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  const admin = postgres({ host: target.hostname, port: Number(target.port || 5432), user: decodeURIComponent(target.username), password: decodeURIComponent(target.password) || undefined, database: 'postgres', max: 1, onnotice: () => {} });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
    if (!exists) await admin.unsafe(`create database "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
}

await ensureDatabase(databaseUrl);
const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });
const store = createPostgresStore(sql);
await store.migrate();
// The billing side: one row per payment with what billing acts on, and a ledger of actions.
await sql`create table if not exists billing_payments (
  payment text primary key, invoice text, status text not null, amount_minor bigint not null, refunded_minor bigint not null,
  charged_back_minor bigint not null, currency text not null, version int not null, failure_reason text, subscription text)`;
await sql`create table if not exists billing_actions (id bigserial primary key, at timestamptz not null default now(), payment text not null, action text not null, detail text)`;

/** What billing does with each event: runs inside the consumer's transaction. */
async function handle(event: GatewayEvent, tx: postgres.TransactionSql) {
  if (!isPaymentChange(event)) {
    console.log(`[billing] ${event.type} (noted)`);
    return;
  }
  const d = event.data;
  const invoice = typeof (d.metadata as { invoiceId?: unknown } | null)?.invoiceId === 'string' ? (d.metadata as { invoiceId: string }).invoiceId : null;
  await tx`
    insert into billing_payments (payment, invoice, status, amount_minor, refunded_minor, charged_back_minor, currency, version, failure_reason, subscription)
    values (${`${d.provider}:${d.paymentId}`}, ${invoice}, ${d.status}, ${d.amount.minor}, ${d.amountRefunded.minor}, ${d.amountChargedBack.minor},
            ${d.amount.currency}, ${d.version}, ${d.failureReason ?? null}, ${d.links?.subscription ?? null})
    on conflict (payment) do update set status = excluded.status, refunded_minor = excluded.refunded_minor,
      charged_back_minor = excluded.charged_back_minor, version = excluded.version, failure_reason = excluded.failure_reason`;
  const action = (() => {
    switch (event.type) {
      case 'payment.paid': return ['mark_invoice_paid', invoice];
      case 'payment.failed': return ['start_dunning', d.failureReason ?? 'unknown'];
      case 'payment.refunded': return ['issue_credit_note', d.amountRefunded.value];
      case 'payment.charged_back': return ['suspend_subscription', d.links?.subscription ?? 'none'];
      default: return null;
    }
  })();
  if (action) await tx`insert into billing_actions (payment, action, detail) values (${d.paymentId}, ${action[0]!}, ${action[1] ?? null})`;
  console.log(`[billing] ${event.type} ${d.provider} ${d.paymentId} v${d.version} ${d.previousStatus ?? '-'} → ${d.status}${action ? ` => ${action[0]}` : ''}`);
}

const consumer = createConsumer({ store, handle });
const pollMs = Number(process.env.POLL_MS ?? 1000);
let running = true;
process.on('SIGINT', () => (running = false));
process.on('SIGTERM', () => (running = false));
console.log(`[billing] pulling ${gatewayUrl}/v1/events into ${databaseUrl}`);
do {
  const { outcomes } = await consumer.pull({ baseUrl: gatewayUrl, token, limit: 100 });
  if (outcomes.applied + outcomes.stale + outcomes.duplicate > 0) console.log(`[billing] pass: ${JSON.stringify(outcomes)}`);
  if (process.env.ONCE) break;
  await new Promise((resolve) => setTimeout(resolve, pollMs));
} while (running);
await sql.end();
