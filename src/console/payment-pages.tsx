import type { FC } from 'hono/jsx';
import { PAYMENT_STATUSES } from '../providers/types.js';
import { formatDuration, formatMoney } from './format.js';
import { Badge, Duration, EmptyRow, Instant, Layout, Notice } from './layout.js';
import type { DeliveryRecord, PaymentDetail, PaymentListRow } from './queries.js';
import { ChoiceSelect, ProviderSelect, ReprocessButton, SyncButton } from './activity-pages.js';
import type { TimelineEntry } from './timeline.js';

export const paymentPath = (provider: string, id: string) => `/console/payments/${encodeURIComponent(provider)}/${encodeURIComponent(id)}`;

/** The payment search form's values as typed (amounts as decimals, dates as YYYY-MM-DD). */
export interface PaymentFormValues {
  provider?: string;
  status?: string;
  id?: string;
  account?: string;
  method?: string;
  currency?: string;
  min?: string;
  max?: string;
  from?: string;
  to?: string;
  meta?: string;
}

function searchHref(search: PaymentFormValues & { before?: number; after?: number }): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(search)) if (value !== undefined && value !== '') params.set(key, String(value));
  const query = params.toString();
  return `/console/payments${query ? `?${query}` : ''}`;
}

const TextField: FC<{ label: string; name: keyof PaymentFormValues; search: PaymentFormValues; placeholder?: string; size?: number; type?: string }> = ({ label, name, search, placeholder, size, type }) => (
  <label>
    {label}
    <input type={type ?? 'search'} name={name} value={search[name] ?? ''} placeholder={placeholder} size={size ?? 12} maxlength={type === 'date' ? undefined : 260} />
  </label>
);

export const PaymentsPage: FC<{ search: PaymentFormValues; rows: PaymentListRow[]; total: number; newer: number | null; older: number | null; now: Date; problem?: string }> = ({
  search,
  rows,
  total,
  newer,
  older,
  now,
  problem,
}) => {
  return (
    <Layout title="Payments" nav="payments" signedIn>
      <h1>Payments</h1>
      {problem ? <Notice tone="warn">{problem}</Notice> : null}
      <form class="search" method="get" action="/console/payments">
        <ProviderSelect selected={search.provider} />
        <ChoiceSelect label="Status" name="status" choices={PAYMENT_STATUSES} selected={search.status} />
        <TextField label="Payment id (or its start)" name="id" search={search} placeholder="tr_… / PM…" size={22} />
        <TextField label="Account" name="account" search={search} placeholder="default" />
        <TextField label="Method" name="method" search={search} placeholder="ideal / sepa_core" />
        <TextField label="Currency" name="currency" search={search} placeholder="EUR" size={5} />
        <TextField label="Amount from" name="min" search={search} placeholder="10.00" size={8} />
        <TextField label="Amount to" name="max" search={search} placeholder="99.99" size={8} />
        <TextField label="First seen from" name="from" search={search} type="date" />
        <TextField label="First seen to (inclusive)" name="to" search={search} type="date" />
        <TextField label="Metadata key (or key=value)" name="meta" search={search} placeholder="orderId=1234" size={18} />
        <button class="primary" type="submit">
          Search
        </button>
      </form>
      <p class="small" data-testid="payments-count">
        {String(total)} {total === 1 ? 'payment matches' : 'payments match'}
      </p>
      <table data-testid="payments-table">
        <thead>
          <tr>
            <th>Provider</th>
            <th>Payment id</th>
            <th>Account</th>
            <th>Status</th>
            <th>Provider status</th>
            <th class="num">Amount</th>
            <th class="num">Version</th>
            <th>Updated</th>
            <th>Next poll</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <EmptyRow cols={9}>No payments match.</EmptyRow>
          ) : (
            rows.map((row) => (
              <tr>
                <td>{row.provider}</td>
                <td>
                  <a class="mono" href={paymentPath(row.provider, row.providerPaymentId)}>
                    {row.providerPaymentId}
                  </a>
                </td>
                <td>{row.account}</td>
                <td>
                  <Badge value={row.status} />
                </td>
                <td class="mono">{row.providerStatus}</td>
                <td class="num">{formatMoney(row.amountMinor, row.currency)}</td>
                <td class="num">{String(row.version)}</td>
                <td>
                  <Instant value={row.updatedAt} now={now} />
                </td>
                <td>
                  <Instant value={row.nextPollAt} now={now} empty="not scheduled" />
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      <div class="pager">
        {newer !== null ? <a href={searchHref({ ...search, after: newer })}>« Newer</a> : null}
        {older !== null ? <a href={searchHref({ ...search, before: older })}>Older »</a> : null}
      </div>
    </Layout>
  );
};

const Facts: FC<{ payment: PaymentDetail; now: Date }> = ({ payment: p, now }) => (
  <dl class="facts card">
    <dt>Status</dt>
    <dd>
      <Badge value={p.status} /> <span class="mono muted">provider: {p.providerStatus}</span>
    </dd>
    <dt>Version · fence</dt>
    <dd class="mono">
      v{String(p.version)} · fence {String(p.fence)}
    </dd>
    <dt>Amount</dt>
    <dd>{formatMoney(p.amountMinor, p.currency)}</dd>
    <dt>Refunded · charged back</dt>
    <dd>
      {formatMoney(p.refundedMinor, p.currency)} · {formatMoney(p.chargedBackMinor, p.currency)}
    </dd>
    <dt>Account · mode · method</dt>
    <dd>
      {p.account} · {p.mode ?? '—'} · {p.method ?? '—'}
    </dd>
    <dt>Created at the provider</dt>
    <dd>
      <Instant value={p.providerCreatedAt} now={now} />
    </dd>
    <dt>First seen</dt>
    <dd>
      <Instant value={p.createdAt} now={now} />
    </dd>
    <dt>Last change</dt>
    <dd>
      <Instant value={p.updatedAt} now={now} />
    </dd>
    <dt>Last synced</dt>
    <dd>
      <Instant value={p.lastSyncedAt} now={now} empty="never" />
    </dd>
    <dt>Last polled</dt>
    <dd>
      <Instant value={p.lastPolledAt} now={now} empty="never" />
    </dd>
    <dt>Next poll</dt>
    <dd>
      <Instant value={p.nextPollAt} now={now} empty="not scheduled (final, or left to webhooks)" />
      {p.pollAttempts > 0 ? <span class="muted small"> · {String(p.pollAttempts)} poll attempts</span> : null}
    </dd>
    <dt>Poll lease</dt>
    <dd>
      {p.pollLeaseOwner && p.pollLeaseUntil && p.pollLeaseUntil > now ? (
        <span>
          held by <code>{p.pollLeaseOwner}</code> until <Instant value={p.pollLeaseUntil} now={now} />
        </span>
      ) : (
        <span class="muted">none</span>
      )}
    </dd>
    {p.stuckNotifiedAt ? (
      <>
        <dt>Reported stuck</dt>
        <dd>
          <Instant value={p.stuckNotifiedAt} now={now} />
        </dd>
      </>
    ) : null}
  </dl>
);

/** A payment an event or delivery is about, linked, with the version it carries; a dash for none. */
export const PaymentRef: FC<{ provider: string | null; paymentId: string | null; version: number | null }> = ({ provider, paymentId, version }) => (
  <>
    {provider && paymentId ? (
      <a class="mono" href={paymentPath(provider, paymentId)}>
        {provider}/{paymentId}
      </a>
    ) : (
      <span class="muted">—</span>
    )}
    {version !== null ? <span class="mono small"> v{String(version)}</span> : null}
  </>
);

export const RedriveButton: FC<{ deliveryId: number; back: string }> = ({ deliveryId, back }) => (
  <form method="post" action={`/console/dead-letters/${deliveryId}/redrive`} class="inline">
    <input type="hidden" name="back" value={back} />
    <button class="action" type="submit" data-testid={`redrive-${deliveryId}`}>
      Re-drive
    </button>
  </form>
);

function deliveryTone(delivery: DeliveryRecord) {
  return delivery.state === 'pending' && delivery.attempts > 0 ? ('warn' as const) : undefined;
}

const TimelineRow: FC<{ entry: TimelineEntry; now: Date; back: string }> = ({ entry, now, back }) => {
  const time = (
    <td>
      <Instant value={entry.at} now={now} />
    </td>
  );
  const kind = <td class={`kind kind-${entry.kind}`}>{entry.kind}</td>;
  switch (entry.kind) {
    case 'receipt': {
      const r = entry.receipt;
      return (
        <tr id={`receipt-${r.id}`} data-kind="receipt">
          {time}
          {kind}
          <td>
            {r.signature === 'fetched' ? 'events API' : 'webhook'} · {r.provider}/{r.account}
            <div class="muted small">signature {r.signature}</div>
          </td>
          <td>
            Receipt <span class="mono">#{String(r.id)}</span> <Badge value={r.state} />
            <div class="small">
              {r.resourceType ?? 'resource'} <code>{r.resourceId ?? '—'}</code>
              {r.eventId ? (
                <>
                  {' '}
                  · event <code>{r.eventId}</code>
                </>
              ) : null}
              {r.attempts > 0 ? <> · {String(r.attempts)} retry attempts</> : null}
            </div>
            {r.lastError ? <div class="small muted">{r.lastError}</div> : null}
            {r.state === 'failed' ? <ReprocessButton receiptId={r.id} back={back} /> : null}
          </td>
          <td>{r.processedAt ? <span>settled after <Duration from={r.receivedAt} to={r.processedAt} /></span> : <span class="muted">not settled</span>}</td>
        </tr>
      );
    }
    case 'transition': {
      const t = entry.transition;
      return (
        <tr data-kind="transition" data-version={String(t.version)}>
          {time}
          {kind}
          <td>
            <Badge value={t.source} tone="info" />
          </td>
          <td>
            <span class="mono">v{String(t.version)}</span> {t.previousStatus ? <Badge value={t.previousStatus} /> : <span class="muted">new</span>} →{' '}
            <Badge value={t.newStatus} />
            <div class="small mono muted">
              provider {t.previousProviderStatus ?? '∅'} → {t.newProviderStatus} · fence {String(t.fence)}
            </div>
          </td>
          <td>
            {entry.cause ? (
              <span>
                <Duration from={entry.cause.receivedAt} to={t.createdAt} /> after <a href={`#receipt-${entry.cause.id}`}>receipt #{String(entry.cause.id)}</a>
              </span>
            ) : t.receiptId !== null ? (
              <span class="muted">receipt #{String(t.receiptId)}</span>
            ) : (
              <span class="muted">—</span>
            )}
          </td>
        </tr>
      );
    }
    case 'event': {
      const e = entry.event;
      return (
        <tr data-kind="event" data-type={e.type}>
          {time}
          {kind}
          <td>{e.source ? <Badge value={e.source} tone="info" /> : <span class="muted">gateway</span>}</td>
          <td>
            <strong>{e.type}</strong> <span class="mono muted small">{e.eventId}</span>
            {e.paymentVersion !== null ? <span class="mono small"> · v{String(e.paymentVersion)}</span> : null}
            {entry.deliveries.length > 0 ? (
              <div class="small">
                {entry.deliveries.map((d) => (
                  <span>
                    {d.sinkTarget} <Badge value={d.state} tone={deliveryTone(d)} />{' '}
                  </span>
                ))}
              </div>
            ) : null}
          </td>
          <td>
            {e.relayedAt ? (
              <span>
                relayed after <Duration from={e.createdAt} to={e.relayedAt} />
              </span>
            ) : (
              <span class="muted">in the outbox for {formatDuration(now.getTime() - e.createdAt.getTime())}</span>
            )}
          </td>
        </tr>
      );
    }
    case 'delivery': {
      const d = entry.delivery;
      return (
        <tr data-kind="delivery" data-state={d.state} data-delivery-id={String(d.id)}>
          {time}
          {kind}
          <td>
            relay → {d.sinkKind}
            <div class="small mono">{d.sinkTarget}</div>
          </td>
          <td>
            {d.eventType} <Badge value={d.state} tone={deliveryTone(d)} />
            <div class="small">
              {String(d.attempts)} attempt{d.attempts === 1 ? '' : 's'}
              {d.lastStatus !== null ? <> · last HTTP {String(d.lastStatus)}</> : null}
            </div>
            {d.lastError ? <div class="small muted">{d.lastError}</div> : null}
            {d.state === 'dead' ? <RedriveButton deliveryId={d.id} back={back} /> : null}
          </td>
          <td>
            {d.deliveredAt ? (
              <span>
                delivered <Duration from={entry.event?.createdAt ?? d.createdAt} to={d.deliveredAt} /> after the event
              </span>
            ) : d.state === 'pending' ? (
              <span>
                next attempt <Instant value={d.nextAttemptAt} now={now} />
              </span>
            ) : d.deadLetteredAt ? (
              <span>
                gave up <Duration from={entry.event?.createdAt ?? d.createdAt} to={d.deadLetteredAt} /> after the event
              </span>
            ) : null}
          </td>
        </tr>
      );
    }
    default: {
      const unreachable: never = entry;
      return unreachable;
    }
  }
};

export const PaymentPage: FC<{ payment: PaymentDetail; timeline: TimelineEntry[]; now: Date; notice?: string; noticeTone?: 'ok' | 'warn' }> = ({
  payment,
  timeline,
  now,
  notice,
  noticeTone,
}) => {
  const back = paymentPath(payment.provider, payment.providerPaymentId);
  const counts = { receipt: 0, transition: 0, event: 0, delivery: 0 };
  for (const entry of timeline) counts[entry.kind]++;
  return (
    <Layout title={`${payment.provider} ${payment.providerPaymentId}`} nav="payments" signedIn>
      <p class="small">
        <a href="/console/payments">« Payments</a>
      </p>
      <h1>
        {payment.provider} <span class="mono">{payment.providerPaymentId}</span> <SyncButton provider={payment.provider} id={payment.providerPaymentId} />
      </h1>
      {notice ? <Notice tone={noticeTone ?? 'ok'}>{notice}</Notice> : null}
      <Facts payment={payment} now={now} />
      <h2>Timeline</h2>
      <p class="muted small">
        {String(counts.receipt)} receipts · {String(counts.transition)} transitions · {String(counts.event)} events · {String(counts.delivery)} deliveries,
        oldest first. Times are the database's, in UTC.
      </p>
      <table data-testid="timeline">
        <thead>
          <tr>
            <th>When</th>
            <th>Kind</th>
            <th>Source</th>
            <th>What</th>
            <th>Timing</th>
          </tr>
        </thead>
        <tbody>
          {timeline.length === 0 ? (
            <EmptyRow cols={5}>Nothing recorded yet.</EmptyRow>
          ) : (
            timeline.map((entry) => <TimelineRow entry={entry} now={now} back={back} />)
          )}
        </tbody>
      </table>
    </Layout>
  );
};

export const PaymentNotFoundPage: FC<{ provider: string; id: string }> = ({ provider, id }) => (
  <Layout title="Payment not found" nav="payments" signedIn>
    <h1>Payment not found</h1>
    <Notice tone="warn">
      No {provider} payment <code>{id}</code> is stored. <a href={`/console/payments?id=${encodeURIComponent(id)}`}>Search for ids starting with it</a>.
    </Notice>
  </Layout>
);
