import type { FC } from 'hono/jsx';
import type { SelectAuditEntry } from '../db/schema/audit-log.js';
import { AUDIT_ACTIONS } from '../audit/audit-log.js';
import { PROVIDERS } from '../providers/types.js';
import { INBOUND_LOG_RATE, type InboundRequest } from '../webhooks/inbound-log.js';
import { RECEIPT_STATES, type ReceiptListItem } from '../webhooks/receipts.js';
import { Badge, EmptyRow, Instant, Layout, Notice, type Tone } from './layout.js';

export interface ReceiptSearch {
  provider?: string;
  state?: string;
  resource?: string;
  before?: number;
  after?: number;
}

const query = (values: Record<string, string | number | undefined>) => {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
};

/** The provider filter of every search form. */
export const ProviderSelect: FC<{ selected?: string }> = ({ selected }) => (
  <label>
    Provider
    <select name="provider">
      <option value="">any</option>
      {PROVIDERS.map((provider) => (
        <option value={provider} selected={selected === provider}>
          {provider}
        </option>
      ))}
    </select>
  </label>
);

/** A filter's select: "any", then each choice. */
export const ChoiceSelect: FC<{ label: string; name: string; choices: readonly string[]; selected?: string }> = ({ label, name, choices, selected }) => (
  <label>
    {label}
    <select name={name}>
      <option value="">any</option>
      {choices.map((choice) => (
        <option value={choice} selected={selected === choice}>
          {choice}
        </option>
      ))}
    </select>
  </label>
);

export const receiptsHref = (search: ReceiptSearch) => `/console/receipts${query({ ...search })}`;

/** Re-opens a failed receipt for the receipt worker; back to the page the button was on. */
export const ReprocessButton: FC<{ receiptId: number; back: string }> = ({ receiptId, back }) => (
  <form method="post" action={`/console/receipts/${receiptId}/reprocess`} class="inline">
    <input type="hidden" name="back" value={back} />
    <button class="action" type="submit" data-testid={`reprocess-${receiptId}`}>
      Re-process
    </button>
  </form>
);

/** Syncs the payment from its provider now, the same verb as every trigger. */
export const SyncButton: FC<{ provider: string; id: string }> = ({ provider, id }) => (
  <form method="post" action={`/console/payments/${encodeURIComponent(provider)}/${encodeURIComponent(id)}/sync`} class="inline">
    <button class="action" type="submit" data-testid="sync-now">
      Sync now
    </button>
  </form>
);

export const ReceiptsPage: FC<{
  search: ReceiptSearch;
  rows: ReceiptListItem[];
  newer: number | null;
  older: number | null;
  now: Date;
  notice?: { tone: Tone; text: string };
  problem?: string;
}> = ({ search, rows, newer, older, now, notice, problem }) => {
  const back = receiptsHref({ provider: search.provider, state: search.state, resource: search.resource });
  return (
    <Layout title="Receipts" nav="receipts" signedIn>
      <h1>Webhook receipts</h1>
      <p class="muted">
        Every webhook the gateway acknowledged, newest first. <em>Failed</em> receipts were given up on after their retries: fix the cause, then
        re-process them. Bodies are not shown here. Refused requests leave no receipt: see the{' '}
        <a href="/console/requests">inbound requests</a>.
      </p>
      {notice ? <Notice tone={notice.tone}>{notice.text}</Notice> : null}
      {problem ? <Notice tone="warn">{problem}</Notice> : null}
      <form class="search" method="get" action="/console/receipts">
        <ProviderSelect selected={search.provider} />
        <ChoiceSelect label="State" name="state" choices={RECEIPT_STATES} selected={search.state} />
        <label>
          Resource id
          <input type="search" name="resource" value={search.resource ?? ''} placeholder="tr_… / PM…" size={24} maxlength={64} />
        </label>
        <button class="primary" type="submit">
          Filter
        </button>
      </form>
      <table data-testid="receipts-table">
        <thead>
          <tr>
            <th>Received</th>
            <th>Receipt</th>
            <th>Provider</th>
            <th>Resource</th>
            <th>State</th>
            <th>Last error</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <EmptyRow cols={7}>No receipts match.</EmptyRow>
          ) : (
            rows.map((row) => (
              <tr data-receipt={String(row.id)}>
                <td>
                  <Instant value={row.receivedAt} now={now} />
                </td>
                <td class="mono">#{String(row.id)}</td>
                <td>
                  {row.provider}/{row.account}
                  <div class="muted small">signature {row.signature}</div>
                </td>
                <td>
                  {row.resourceType ?? 'resource'} <code>{row.resourceId ?? '—'}</code>
                  {row.eventId ? <div class="small muted">event <code>{row.eventId}</code></div> : null}
                </td>
                <td>
                  <Badge value={row.state} />
                  {row.attempts > 0 ? <div class="small muted">{String(row.attempts)} attempts</div> : null}
                </td>
                <td class="small">{row.lastError ?? <span class="muted">—</span>}</td>
                <td>{row.state === 'failed' ? <ReprocessButton receiptId={row.id} back={back} /> : null}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      <div class="pager">
        {newer !== null ? <a href={receiptsHref({ ...search, before: undefined, after: newer })}>« Newer</a> : null}
        {older !== null ? <a href={receiptsHref({ ...search, after: undefined, before: older })}>Older »</a> : null}
      </div>
    </Layout>
  );
};

const OUTCOME_TONES: Record<string, Tone> = { applied: 'ok', no_change: 'none', refused: 'bad', failed: 'bad' };

export const AuditPage: FC<{ rows: SelectAuditEntry[]; action?: string; older: number | null; now: Date }> = ({ rows, action, older, now }) => (
  <Layout title="Audit trail" nav="audit" signedIn>
    <h1>Audit trail</h1>
    <p class="muted">
      What operators did, newest first: who (a console session or an API token, by fingerprint; never the secret), when, to what, and whether it
      changed anything.
    </p>
    <form class="search" method="get" action="/console/audit">
      <label>
        Action
        <select name="action">
          <option value="">any</option>
          {AUDIT_ACTIONS.map((name) => (
            <option value={name} selected={action === name}>
              {name}
            </option>
          ))}
        </select>
      </label>
      <button class="primary" type="submit">
        Filter
      </button>
    </form>
    <table data-testid="audit-table">
      <thead>
        <tr>
          <th>When</th>
          <th>Who</th>
          <th>Action</th>
          <th>Target</th>
          <th>Outcome</th>
          <th>Request</th>
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <EmptyRow cols={6}>Nothing recorded yet.</EmptyRow>
        ) : (
          rows.map((row) => (
            <tr data-action={row.action}>
              <td>
                <Instant value={row.at} now={now} />
              </td>
              <td class="mono">{row.actor}</td>
              <td class="mono">{row.action}</td>
              <td class="mono">{row.target ?? '—'}</td>
              <td>
                <Badge value={row.outcome} tone={OUTCOME_TONES[row.outcome] ?? 'none'} />
                {row.detail ? <div class="small muted mono">{JSON.stringify(row.detail)}</div> : null}
              </td>
              <td class="small mono muted">{row.requestId ?? '—'}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
    <div class="pager">
      {older !== null ? <a href={`/console/audit${query({ action, before: older })}`}>Older »</a> : null}
    </div>
  </Layout>
);

const requestTone = (status: number): Tone => (status >= 500 ? 'bad' : status >= 400 ? 'warn' : 'ok');

export const RequestsPage: FC<{ rows: InboundRequest[]; outcome?: string; provider?: string; older: number | null; now: Date }> = ({
  rows,
  outcome,
  provider,
  older,
  now,
}) => (
  <Layout title="Inbound requests" nav="receipts" signedIn>
    <p class="small">
      <a href="/console/receipts">« Receipts</a>
    </p>
    <h1>Inbound requests</h1>
    <p class="muted">
      Every request to a webhook route and what became of it, refused ones too (their bodies are not kept). A source over{' '}
      {String(INBOUND_LOG_RATE.ratePerSecond)} requests a second is logged in part: its next row says how many went unlogged.
    </p>
    <form class="search" method="get" action="/console/requests">
      <ProviderSelect selected={provider} />
      <label>
        Outcome
        <input type="search" name="outcome" value={outcome ?? ''} placeholder="accepted / bad_signature / …" size={24} maxlength={40} />
      </label>
      <button class="primary" type="submit">
        Filter
      </button>
    </form>
    <table data-testid="requests-table">
      <thead>
        <tr>
          <th>Received</th>
          <th>Provider</th>
          <th>Status</th>
          <th>Outcome</th>
          <th>Source</th>
          <th class="num">Bytes</th>
          <th class="num">ms</th>
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <EmptyRow cols={7}>No requests match.</EmptyRow>
        ) : (
          rows.map((row) => (
            <tr data-outcome={row.outcome}>
              <td>
                <Instant value={row.receivedAt} now={now} />
              </td>
              <td>
                {row.provider}/{row.account}
              </td>
              <td>
                <Badge value={String(row.status)} tone={requestTone(row.status)} />
              </td>
              <td class="mono">
                {row.outcome}
                {row.suppressed > 0 ? <div class="small muted">+{String(row.suppressed)} unlogged before</div> : null}
              </td>
              <td class="mono small">
                {row.source}
                {row.userAgent ? <div class="muted">{row.userAgent}</div> : null}
              </td>
              <td class="num">{row.bodyBytes === null ? '—' : String(row.bodyBytes)}</td>
              <td class="num">{String(row.durationMs)}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
    <div class="pager">{older !== null ? <a href={`/console/requests${query({ provider, outcome, before: older })}`}>Older »</a> : null}</div>
  </Layout>
);
