import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { buildPaymentEvents } from '../src/events/payment-events.js';
import { guardedUpsertSql, transitionAndEventsSql } from '../src/payments/apply-snapshot.js';
import type { PaymentSnapshot } from '../src/providers/types.js';
import { recordReceiptsSqlFor, settleReceiptsSql } from '../src/webhooks/receipts.js';

/**
 * The database ceiling: pgbench running exactly the statements the gateway issues for
 * one Mollie classic webhook about a new payment, rendered from the gateway's own SQL
 * builders. The gateway cannot beat this on the same machine; the benchmark reports
 * how close it gets.
 */

const PLACEHOLDER_ID = 'tr_CEILINGPLACEHOLDER';
const dialect = new PgDialect();

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return `'${String(value).replaceAll("'", "''")}'`;
}

/** Renders a drizzle SQL object as literal SQL text, with the placeholder id made per-transaction. */
function render(query: SQL): string {
  const { sql, params } = dialect.sqlToQuery(query);
  let text = sql;
  for (let i = params.length; i >= 1; i--) {
    const value = params[i - 1];
    const replacement =
      value === PLACEHOLDER_ID ? `('tr_c' || :id)` : typeof value === 'string' && value.includes(PLACEHOLDER_ID)
        ? `replace(${literal(value)}, '${PLACEHOLDER_ID}', 'tr_c' || :id)`
        : literal(value);
    text = text.replaceAll(`$${i}`, replacement);
  }
  return `${text.replace(/\s+/g, ' ').trim()};`;
}

/** The pgbench script: one webhook's worth of statements, in the gateway's order. */
export function ceilingScript(): string {
  const snapshot: PaymentSnapshot = {
    provider: 'mollie',
    account: 'default',
    providerPaymentId: PLACEHOLDER_ID,
    providerStatus: 'paid',
    status: 'paid',
    amount: { minor: 4995, currency: 'EUR' },
    refundedMinor: 0,
    chargedBackMinor: 0,
    mode: 'test',
    method: 'ideal',
    metadata: { invoiceId: 'INV-1' },
    providerCreatedAt: new Date('2026-01-01T00:00:00Z'),
    raw: { id: PLACEHOLDER_ID, status: 'paid', amount: { value: '49.95', currency: 'EUR' } },
  };
  const body = new TextEncoder().encode(`id=${PLACEHOLDER_ID}`);
  const receipt = recordReceiptsSqlFor([{ provider: 'mollie', account: 'default', body, headers: { 'content-type': 'application/x-www-form-urlencoded' }, signature: 'absent', resourceType: 'payment', resourceId: PLACEHOLDER_ID }]);
  const snapshotJson = JSON.stringify(snapshot.raw);
  const events = buildPaymentEvents({
    provider: 'mollie', account: 'default', providerPaymentId: PLACEHOLDER_ID, version: 1, source: 'webhook',
    previous: null, next: { status: 'paid', providerStatus: 'paid', amountMinor: 4995, currency: 'EUR', refundedMinor: 0, chargedBackMinor: 0 },
    mode: 'test', metadata: snapshot.metadata, changedAt: new Date(),
  });
  // Event ids must be unique per transaction too.
  const eventsSql = render(
    transitionAndEventsSql({ paymentRowId: 0, version: 1, source: 'webhook', previous: null, snapshot, fence: 0, receiptId: 0, snapshotJson, events }),
  )
    .replaceAll(events[0]!.event_id, `evt_c' || :id || '`)
    .replace(/\(\s*0,\s*1,\s*'webhook'/, "(:payment_row_id, 1, 'webhook'");
  return [
    '\\set id random(1, 2000000000)',
    `${render(receipt).replace(/;$/, '')} \\gset receipt_`,
    "select nextval('payment_fetch_fence') as fence \\gset",
    'begin;',
    `${render(guardedUpsertSql(snapshot, 1, null, snapshotJson, JSON.stringify(snapshot.metadata))).replace(/;$/, '').replace(/, 1, null, /, ', :fence, null, ')} \\gset payment_row_`,
    eventsSql.replace(':payment_row_id', ':payment_row_id'),
    'commit;',
    render(settleReceiptsSql([0], 'processed')).replace("'{0}'", "('{' || :receipt_id || '}')"),
    '',
  ].join('\n');
}

export interface CeilingResult {
  tps: number;
  latencyMsAvg: number;
  clients: number;
  seconds: number;
}

/** Runs the ceiling script with pgbench against `databaseUrl`. */
export async function measureCeiling(databaseUrl: string, options: { clients: number; seconds: number }): Promise<CeilingResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gw-ceiling-'));
  const file = path.join(dir, 'webhook.sql');
  await writeFile(file, ceilingScript());
  const { stdout } = await promisify(execFile)(
    'pgbench',
    ['-n', '-f', file, '-c', String(options.clients), '-j', '2', '-T', String(options.seconds), databaseUrl],
    { maxBuffer: 10 * 1024 * 1024 },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench output:\n${stdout}`);
  return { tps, latencyMsAvg: latency, clients: options.clients, seconds: options.seconds };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(ceilingScript());
}
