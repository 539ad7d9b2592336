/**
 * Webhook receipts from a gateway's database as replay lines (records.ts): what was
 * received, raw, plus the payment's state as the gateway stored it, so a replay against
 * a sandbox can seed the provider with it and expect the same end.
 */
import type postgres from 'postgres';
import { formatMinorUnits } from '../../money.js';
import { GOCARDLESS_PAYMENT_STATUSES } from '../../providers/gocardless/mapping.js';
import type { ProviderName } from '../../providers/types.js';

/** Headers a replay needs; the request id and signatures are not (replays are re-signed). */
const KEPT_HEADERS = ['content-type', 'user-agent', 'origin', 'gocardless-webhook-id'] as const;
const MOLLIE_STATUSES: ReadonlySet<string> = new Set(['open', 'pending', 'authorized', 'paid', 'canceled', 'expired', 'failed']);
const GOCARDLESS_STATUSES: ReadonlySet<string> = new Set(GOCARDLESS_PAYMENT_STATUSES);

export interface ExportFilter {
  provider?: ProviderName;
  since?: Date;
  until?: Date;
  limit?: number;
  /** Attach the stored payment's state (status, amount) for seeding a sandbox. */
  withState: boolean;
}

interface ReceiptRow {
  id: number;
  provider: string;
  account: string;
  event_id: string | null;
  resource_id: string | null;
  body: string;
  headers: Record<string, string> | null;
  signature: string;
  received_at: Date;
  provider_status: string | null;
  amount_minor: string | null;
  currency: string | null;
  method: string | null;
  refunded_minor: string | null;
  charged_back_minor: string | null;
}

function sandboxState(row: ReceiptRow): Record<string, unknown>[] | undefined {
  if (!row.provider_status || !row.resource_id || !row.currency || row.amount_minor === null) return undefined;
  const minor = Number(row.amount_minor);
  if (row.provider === 'gocardless') {
    return GOCARDLESS_STATUSES.has(row.provider_status) ? [{ id: row.resource_id, status: row.provider_status, amount: minor, currency: row.currency }] : undefined;
  }
  if (row.provider !== 'mollie' || !MOLLIE_STATUSES.has(row.provider_status)) return undefined;
  const money = (value: number) => ({ currency: row.currency!, value: formatMinorUnits(value, row.currency!) });
  const suffix = row.resource_id.replace(/^tr_/, '');
  const refunded = Number(row.refunded_minor ?? 0);
  const chargedBack = Number(row.charged_back_minor ?? 0);
  // The gateway keeps totals, not the refunds themselves: one refund (and chargeback) of the total stands in.
  return [
    {
      id: row.resource_id,
      status: row.provider_status,
      amount: money(minor),
      method: row.method,
      ...(refunded > 0 ? { refunds: [{ id: `re_${suffix}`, amount: money(refunded), status: 'refunded' }] } : {}),
      ...(chargedBack > 0 ? { chargebacks: [{ id: `chb_${suffix}`, amount: money(chargedBack) }] } : {}),
    },
  ];
}

export function receiptLine(row: ReceiptRow, withState: boolean): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = row.headers?.[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const kind = row.provider === 'gocardless' ? 'event' : row.signature === 'absent' ? 'classic' : 'event';
  const state = withState ? sandboxState(row) : undefined;
  return {
    provider: row.provider,
    account: row.account,
    kind,
    eventId: row.event_id,
    headers,
    bodyBase64: row.body,
    receivedAt: new Date(row.received_at).toISOString(),
    signature: row.signature,
    ...(state ? { sandbox: state } : {}),
  };
}

/** Streams matching receipts, oldest first, as JSONL lines; returns how many. */
export async function exportReceipts(sql: postgres.Sql, filter: ExportFilter, write: (line: string) => Promise<void>): Promise<number> {
  let written = 0;
  const query = sql<ReceiptRow[]>`
    select r.id, r.provider, r.account, r.event_id, r.resource_id, encode(r.body, 'base64') as body, r.headers,
           r.signature, r.received_at,
           p.provider_status, p.amount_minor::text as amount_minor, p.currency, p.method,
           p.refunded_minor::text as refunded_minor, p.charged_back_minor::text as charged_back_minor
    from webhook_receipts r
    left join payments p
      on p.provider = r.provider and p.provider_payment_id = r.resource_id and r.resource_type in ('payment', 'payments')
    where true
      ${filter.provider ? sql`and r.provider = ${filter.provider}` : sql``}
      ${filter.since ? sql`and r.received_at >= ${filter.since}` : sql``}
      ${filter.until ? sql`and r.received_at < ${filter.until}` : sql``}
    order by r.id
    ${filter.limit ? sql`limit ${filter.limit}` : sql``}`;
  for await (const rows of query.cursor(500)) {
    for (const row of rows) {
      // base64 from encode() wraps every 76 characters.
      await write(`${JSON.stringify(receiptLine({ ...row, body: row.body.replace(/\n/g, '') }, filter.withState))}\n`);
      written++;
    }
  }
  return written;
}
