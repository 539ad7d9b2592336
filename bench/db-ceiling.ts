import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { guardedUpsertSql, transitionAndEventsSql, unchangedSql } from '../src/payments/apply-snapshot.js';
import { planChange, planWrite } from '../src/payments/write-plan.js';
import type { PaymentSnapshot, ProviderName } from '../src/providers/types.js';
import { recordReceiptsSqlFor } from '../src/webhooks/receipts.js';

/**
 * The database ceiling: pgbench running exactly the statements the gateway issues for
 * one event, rendered from the gateway's own SQL builders. The gateway cannot beat this
 * on the same machine; the benchmark reports how close it gets.
 *
 * Kinds, one per benchmark scenario:
 * - `mollie-webhook`: a Mollie classic webhook about a new payment (receipt insert,
 *   fence, the change transaction, which also settles the receipt).
 * - `gocardless-sync`: one payment of a GoCardless batch (fence, the change
 *   transaction). The batch's receipt insert is one statement per 250 events and is
 *   left out; the settle in the transaction finds no receipt (a little cheaper than the
 *   gateway's, which updates one).
 * - `noop-poll`: a poll that finds nothing new (fence, the no-op transaction) on one of
 *   `NOOP_ROWS` existing payments. Lease and release are one statement per pass and
 *   are left out.
 * - `noop-webhook`: a webhook for a payment that is already up to date (receipt, fence,
 *   the no-op transaction, which settles the receipt): most triggers of the contention
 *   scenario.
 *
 * The statement sequence around the builders (which statements, which transaction)
 * mirrors src/payments/apply-snapshot.ts and src/webhooks/*; change both together.
 * pgbench runs them with prepared statements (-M prepared), as the gateway runs the
 * transaction's statements.
 */

export type CeilingKind = 'mollie-webhook' | 'gocardless-sync' | 'noop-poll' | 'noop-webhook';

const PLACEHOLDER = { mollie: 'tr_CEILINGPLACEHOLDER', gocardless: 'PMCEILINGPLACEHOLDER' } as const;
const PREFIX = { mollie: 'tr_c', gocardless: 'PMC' } as const;
/** Existing payments the no-op kinds pick from. */
export const NOOP_ROWS = 10_000;
const dialect = new PgDialect();

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  // pgbench -M prepared turns every `:name` into a parameter, even inside a literal
  // (`"key":null`, `mollie:tr_x:v1:payment.paid`): split the literal after such colons.
  const pieces = String(value).replaceAll("'", "''").split(/(?<=:)(?=[A-Za-z_])/);
  return pieces.length === 1 ? `'${pieces[0]}'` : `(${pieces.map((piece) => `'${piece}'`).join(' || ')})`;
}

/** Renders a drizzle SQL object as literal SQL text, with the placeholder id made per-transaction. */
function render(query: SQL, provider: ProviderName): string {
  const placeholder = PLACEHOLDER[provider];
  // Cast: under -M prepared an untyped parameter in a concatenation has no type.
  const idExpr = `'${PREFIX[provider]}' || (:id)::text`;
  const { sql, params } = dialect.sqlToQuery(query);
  let text = sql;
  for (let i = params.length; i >= 1; i--) {
    const value = params[i - 1];
    const replacement =
      value === placeholder
        ? `(${idExpr})`
        : typeof value === 'string' && value.includes(placeholder)
          ? `replace(${literal(value)}, '${placeholder}', ${idExpr})`
          : literal(value);
    text = text.replaceAll(`$${i}`, replacement);
  }
  return `${text.replace(/\s+/g, ' ').trim()};`;
}

function snapshotFor(provider: ProviderName, status: 'paid' | 'open'): PaymentSnapshot {
  const id = PLACEHOLDER[provider];
  if (provider === 'mollie') {
    return {
      provider,
      account: 'default',
      providerPaymentId: id,
      providerStatus: status,
      status,
      amount: { minor: 4995, currency: 'EUR' },
      refundedMinor: 0,
      chargedBackMinor: 0,
      mode: 'test',
      method: 'ideal',
      metadata: { invoiceId: 'INV-1' },
      providerCreatedAt: new Date('2026-01-01T00:00:00Z'),
      raw: { id, status, amount: { value: '49.95', currency: 'EUR' } },
    };
  }
  return {
    provider,
    account: 'default',
    providerPaymentId: id,
    providerStatus: 'paid_out',
    status: 'paid',
    amount: { minor: 2500, currency: 'EUR' },
    refundedMinor: 0,
    chargedBackMinor: 0,
    mode: null,
    method: 'sepa_core',
    metadata: {},
    providerCreatedAt: new Date('2026-01-01T00:00:00Z'),
    raw: { id, status: 'paid_out', amount: 2500, currency: 'EUR', links: { mandate: 'MD000', creditor: 'CR000' } },
  };
}

/** The upsert, with the fence from `\gset`; a change's row goes into `payment_row_*` (a no-op returns none). */
function upsertLine(s: PaymentSnapshot, expectRow = true): string {
  const snapshotJson = JSON.stringify(s.raw);
  const text = render(guardedUpsertSql(s, 1, null, snapshotJson, JSON.stringify(s.metadata ?? null)), s.provider).replace(/;$/, '');
  if (!text.includes(', 1, null, ')) throw new Error('the upsert no longer renders its fence as expected; update bench/db-ceiling.ts');
  const withFence = text.replace(/, 1, null, /, ', :fence, null, ');
  return expectRow ? `${withFence} \\gset payment_row_` : `${withFence};`;
}

/** The transition, outbox insert and receipt settle of a first change (version 1). */
function transitionLine(s: PaymentSnapshot): string {
  // Planned as the gateway plans a first write (version 1) that settles one receipt.
  const plan = planWrite({ snapshot: s, fence: 0, source: 'webhook', receiptId: 0, settleReceiptIds: [0] });
  const change = planChange(plan, { id: 0, version: 1, inserted: true, previous: null, updated_at: new Date() });
  let text = render(transitionAndEventsSql(change), s.provider);
  text = settleIdsToVariable(text);
  // Event ids must be unique per transaction too.
  for (const event of change.events) text = text.replaceAll(event.event_id, `evt_c' || (:id)::text || '`);
  return text.replace(/\(\s*0,\s*1,\s*'webhook'/, "(:payment_row_id, 1, 'webhook'");
}

function receiptLine(s: PaymentSnapshot): string {
  const body = new TextEncoder().encode(`id=${s.providerPaymentId}`);
  const receipt = recordReceiptsSqlFor([
    {
      provider: s.provider,
      account: 'default',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      signature: 'absent',
      resourceType: 'payment',
      resourceId: s.providerPaymentId,
    },
  ]);
  return `${render(receipt, s.provider).replace(/;$/, '')} \\gset receipt_`;
}

/** The settled receipt ids (rendered `'{0}'`) become the receipt `\\gset` earlier (0 when there is none). */
function settleIdsToVariable(text: string): string {
  if (!text.includes("'{0}'")) throw new Error('the receipt settle no longer renders as expected; update bench/db-ceiling.ts');
  return text.replace("'{0}'", "('{' || (:receipt_id)::text || '}')");
}

/** The statement that ends a transaction whose upsert changed nothing, as the pool path sends it. */
function unchangedLine(s: PaymentSnapshot, settle: boolean): string {
  const text = render(unchangedSql(s, settle ? [0] : [], true), s.provider);
  return settle ? settleIdsToVariable(text) : text;
}

const FENCE = "select nextval('payment_fetch_fence') as fence \\gset";

/** The pgbench script for one event of `kind`, in the gateway's statement order. */
export function ceilingScript(kind: CeilingKind = 'mollie-webhook'): string {
  const lines: string[] = [];
  switch (kind) {
    case 'mollie-webhook': {
      const s = snapshotFor('mollie', 'paid');
      lines.push('\\set id random(1, 9000000000000000000)', receiptLine(s), FENCE, 'begin;', upsertLine(s), transitionLine(s), 'commit;');
      break;
    }
    case 'gocardless-sync': {
      const s = snapshotFor('gocardless', 'paid');
      lines.push('\\set id random(1, 9000000000000000000)', '\\set receipt_id 0', FENCE, 'begin;', upsertLine(s), transitionLine(s), 'commit;');
      break;
    }
    case 'noop-poll': {
      const s = snapshotFor('mollie', 'open');
      lines.push(`\\set id random(1, ${NOOP_ROWS})`, FENCE, 'begin;', upsertLine(s, false), unchangedLine(s, false), 'commit;');
      break;
    }
    case 'noop-webhook': {
      const s = snapshotFor('mollie', 'open');
      lines.push(`\\set id random(1, ${NOOP_ROWS})`, receiptLine(s), FENCE, 'begin;', upsertLine(s, false), unchangedLine(s, true), 'commit;');
      break;
    }
    default: {
      const unreachable: never = kind;
      throw new Error(`unknown ceiling kind ${String(unreachable)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The rows the no-op kinds find: exactly what their snapshot says, so every write is refused as unchanged. */
/**
 * Every measurement starts from empty tables: the ceiling database is shared by all of a
 * run's measurements, and on a server without autovacuum (this one) the rows and dead
 * tuples an earlier measurement left behind would slow a later one.
 */
async function emptyTables(databaseUrl: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe('truncate table event_deliveries, outbox, payment_transitions, webhook_receipts, payments restart identity cascade');
  } finally {
    await sql.end();
  }
}

async function seedNoopRows(databaseUrl: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`
      insert into payments (provider, provider_payment_id, account, status, provider_status, amount_minor, currency,
        refunded_minor, charged_back_minor, mode, method, metadata, snapshot, version, fence)
      select 'mollie', '${PREFIX.mollie}' || g, 'default', 'open', 'open', 4995, 'EUR', 0, 0, 'test', 'ideal',
        '{"invoiceId":"INV-1"}', '{}', 1, 0
      from generate_series(1, ${NOOP_ROWS}) g
      on conflict do nothing`);
  } finally {
    await sql.end();
  }
}

export interface CeilingResult {
  kind: CeilingKind;
  tps: number;
  latencyMsAvg: number;
  clients: number;
  seconds: number;
}

/** Runs the ceiling script with pgbench against `databaseUrl` (a migrated, disposable database). */
export async function measureCeiling(
  databaseUrl: string,
  options: { clients: number; seconds: number; kind?: CeilingKind },
): Promise<CeilingResult> {
  const kind = options.kind ?? 'mollie-webhook';
  await emptyTables(databaseUrl);
  if (kind === 'noop-poll' || kind === 'noop-webhook') await seedNoopRows(databaseUrl);
  const dir = await mkdtemp(path.join(tmpdir(), 'gw-ceiling-'));
  const file = path.join(dir, `${kind}.sql`);
  try {
    await writeFile(file, ceilingScript(kind));
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(
        'pgbench',
        ['-n', '-M', 'prepared', '-f', file, '-c', String(options.clients), '-j', '2', '-T', String(options.seconds), databaseUrl],
        { maxBuffer: 10 * 1024 * 1024 },
      ));
    } catch (error) {
      // pgbench exits non-zero when a client aborts; its summary still counts what ran.
      const partial = (error as { stdout?: string; stderr?: string }).stdout ?? '';
      if (!/tps = /.test(partial)) throw error;
      stdout = partial;
      process.stderr.write(`pgbench (${kind}) had aborted clients: ${((error as { stderr?: string }).stderr ?? '').split('\n').find((line) => /ERROR/.test(line)) ?? ''}\n`);
    }
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
    if (!Number.isFinite(tps)) throw new Error(`could not read pgbench output:\n${stdout}`);
    return { kind, tps, latencyMsAvg: latency, clients: options.clients, seconds: options.seconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(ceilingScript((process.argv[2] as CeilingKind | undefined) ?? 'mollie-webhook'));
}
