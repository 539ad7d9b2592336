import type { FC } from 'hono/jsx';
import { DELIVERY_STATES, type DeliveryAttempt, type DeliveryListItem, type SinkAttemptStats } from '../events/delivery-operations.js';
import type { SinkState } from '../events/deliveries.js';
import { formatDuration } from './format.js';
import { Badge, EmptyRow, Instant, Layout, Notice, type Tone } from './layout.js';
import { ChoiceSelect } from './activity-pages.js';
import { PaymentRef, RedriveButton } from './payment-pages.js';

/** The deliveries page's filter as the form and its links carry it (dates as YYYY-MM-DD). */
export interface DeliverySearch {
  sink?: string;
  state?: string;
  type?: string;
  from?: string;
  to?: string;
}

const queryOf = (values: Record<string, string | number | undefined>) => {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
};

export const deliveriesHref = (search: DeliverySearch & { before?: number; after?: number }) => `/console/deliveries${queryOf({ ...search })}`;
export const deliveryPath = (id: number) => `/console/deliveries/${id}`;
export const sinkPath = (id: string) => `/console/sinks/${encodeURIComponent(id)}`;

const attemptTone = (outcome: string): Tone => (outcome === 'delivered' ? 'ok' : outcome === 'retry' || outcome === 'probe_failed' ? 'warn' : 'bad');

/** The hidden fields that carry a filter into a form post. */
const FilterFields: FC<{ search: DeliverySearch }> = ({ search }) => (
  <>
    {(['sink', 'type', 'from', 'to'] as const).map((key) => (search[key] ? <input type="hidden" name={key} value={search[key]} /> : null))}
  </>
);

export const DeliveriesPage: FC<{
  search: DeliverySearch;
  sinks: SinkState[];
  rows: DeliveryListItem[];
  total: number;
  deadMatching: number;
  newer: number | null;
  older: number | null;
  now: Date;
  notice?: { tone: Tone; text: string };
  problem?: string;
}> = ({ search, sinks, rows, total, deadMatching, newer, older, now, notice, problem }) => (
  <Layout title="Deliveries" nav="outbox" signedIn>
    <p class="small">
      <a href="/console/outbox">« Outbox &amp; sinks</a>
    </p>
    <h1>Deliveries</h1>
    <p class="muted">
      One row per event and sink, newest first. Open one for every attempt at it (kept across re-drives). Dates are UTC days, by when the event was
      handed to the sink.
    </p>
    {notice ? <Notice tone={notice.tone}>{notice.text}</Notice> : null}
    {problem ? <Notice tone="warn">{problem}</Notice> : null}
    <form class="search" method="get" action="/console/deliveries">
      <label>
        Sink
        <select name="sink">
          <option value="">any</option>
          {sinks.map((sink) => (
            <option value={sink.id} selected={search.sink === sink.id}>
              {sink.target}
            </option>
          ))}
        </select>
      </label>
      <ChoiceSelect label="State" name="state" choices={DELIVERY_STATES} selected={search.state} />
      <label>
        Event type
        <input type="search" name="type" value={search.type ?? ''} placeholder="payment.paid / payment." size={20} maxlength={100} />
      </label>
      <label>
        From
        <input type="date" name="from" value={search.from ?? ''} />
      </label>
      <label>
        To (inclusive)
        <input type="date" name="to" value={search.to ?? ''} />
      </label>
      <button class="primary" type="submit">
        Filter
      </button>
    </form>
    <p class="small" data-testid="deliveries-count">
      {String(total)} {total === 1 ? 'delivery matches' : 'deliveries match'}
      {deadMatching > 0 ? <> · {String(deadMatching)} of them {deadMatching === 1 ? 'a dead letter' : 'dead letters'}</> : null}
    </p>
    {deadMatching > 0 && search.state !== 'pending' && search.state !== 'delivered' ? (
      <form method="post" action="/console/deliveries/redrive" class="inline" data-testid="bulk-redrive">
        <FilterFields search={search} />
        <button class="action" type="submit">
          Re-drive the {deadMatching === 1 ? 'dead letter' : `${deadMatching} dead letters`} matching this filter
        </button>
      </form>
    ) : null}
    <div class="scroll">
      <table data-testid="deliveries-table">
        <thead>
          <tr>
            <th class="num">Delivery</th>
            <th>Event</th>
            <th>Payment</th>
            <th>Sink</th>
            <th>State</th>
            <th>Last attempt</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <EmptyRow cols={7}>No deliveries match.</EmptyRow>
          ) : (
            rows.map((d) => (
              <tr data-delivery-id={String(d.id)} data-state={d.state}>
                <td class="num mono">
                  <a href={deliveryPath(d.id)}>#{String(d.id)}</a>
                </td>
                <td>
                  {d.type}
                  <div class="small mono muted">{d.eventId}</div>
                </td>
                <td>
                  <PaymentRef provider={d.provider} paymentId={d.paymentId} version={d.version} />
                </td>
                <td>
                  <a class="mono small" href={sinkPath(d.sink.id)}>
                    {d.sink.target}
                  </a>
                  {d.sink.disabled ? (
                    <>
                      {' '}
                      <Badge value="disabled" tone="bad" />
                    </>
                  ) : null}
                </td>
                <td>
                  <Badge value={d.state} />
                  <div class="small muted">{String(d.attempts)} attempts</div>
                </td>
                <td>
                  {d.lastStatus !== null ? <>HTTP {String(d.lastStatus)} </> : null}
                  {d.lastError ? <div class="small muted">{d.lastError}</div> : null}
                  <div class="small">
                    <Instant value={d.lastAttemptAt} now={now} empty="not tried yet" />
                  </div>
                </td>
                <td>
                  <Instant value={d.createdAt} now={now} />
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
    <div class="pager">
      {newer !== null ? <a href={deliveriesHref({ ...search, after: newer })}>« Newer</a> : null}
      {older !== null ? <a href={deliveriesHref({ ...search, before: older })}>Older »</a> : null}
    </div>
  </Layout>
);

export const DeliveryPage: FC<{ delivery: DeliveryListItem; attempts: DeliveryAttempt[]; now: Date; notice?: { tone: Tone; text: string } }> = ({ delivery: d, attempts, now, notice }) => (
  <Layout title={`Delivery #${d.id}`} nav="outbox" signedIn>
    <p class="small">
      <a href={deliveriesHref({ sink: d.sink.id })}>« Deliveries to this sink</a>
    </p>
    <h1>
      Delivery #{String(d.id)} <Badge value={d.state} />
    </h1>
    {notice ? <Notice tone={notice.tone}>{notice.text}</Notice> : null}
    <div class="card">
      <dl class="facts">
        <dt>Event</dt>
        <dd>
          {d.type} <span class="mono small">{d.eventId}</span>
        </dd>
        <dt>Sink</dt>
        <dd>
          <a class="mono" href={sinkPath(d.sink.id)}>
            {d.sink.target}
          </a>{' '}
          ({d.sink.kind}){d.sink.disabled ? <> <Badge value="disabled" tone="bad" /></> : null}
        </dd>
        <dt>Payment</dt>
        <dd>
          <PaymentRef provider={d.provider} paymentId={d.paymentId} version={d.version} />
        </dd>
        <dt>Attempts</dt>
        <dd>{String(d.attempts)} since created or last re-driven</dd>
        <dt>Created</dt>
        <dd>
          <Instant value={d.createdAt} now={now} />
        </dd>
        <dt>{d.state === 'delivered' ? 'Delivered' : d.state === 'dead' ? 'Dead since' : 'Next attempt'}</dt>
        <dd>
          <Instant value={d.state === 'delivered' ? d.deliveredAt : d.state === 'dead' ? d.deadLetteredAt : d.nextAttemptAt} now={now} />
        </dd>
      </dl>
      {d.state === 'dead' ? <RedriveButton deliveryId={d.id} back={deliveryPath(d.id)} /> : null}
    </div>
    <h2>Attempts, newest first</h2>
    <div class="scroll">
      <table data-testid="attempts-table">
        <thead>
          <tr>
            <th>Started</th>
            <th class="num">Attempt</th>
            <th>Outcome</th>
            <th class="num">Took</th>
            <th>Answer</th>
          </tr>
        </thead>
        <tbody>
          {attempts.length === 0 ? (
            <EmptyRow cols={5}>No attempt yet.</EmptyRow>
          ) : (
            attempts.map((a) => (
              <tr data-attempt={String(a.id)} data-outcome={a.outcome}>
                <td>
                  <Instant value={a.startedAt} now={now} />
                </td>
                <td class="num">
                  {String(a.attempt)}
                  {a.probe ? <div class="small muted">probe</div> : null}
                </td>
                <td>
                  <Badge value={a.outcome} tone={attemptTone(a.outcome)} />
                  {a.status !== null ? <> HTTP {String(a.status)}</> : null}
                  {a.superseded ? <div class="small muted">another relay had taken over: not applied</div> : null}
                  {a.error ? <div class="small muted">{a.error}</div> : null}
                </td>
                <td class="num">{formatDuration(a.durationMs)}</td>
                <td class="small mono">{a.answer ? a.answer : <span class="muted">—</span>}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  </Layout>
);

const percent = (rate: number | null) => (rate === null ? 'no attempts' : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)} %`);

export const SinkPage: FC<{ sink: SinkState; stats: SinkAttemptStats; now: Date; notice?: { tone: Tone; text: string } }> = ({ sink, stats, now, notice }) => (
  <Layout title={`Sink ${sink.target}`} nav="outbox" signedIn>
    <p class="small">
      <a href="/console/outbox">« Outbox &amp; sinks</a>
    </p>
    <h1>
      Sink <span class="mono">{sink.target}</span> {sink.disabledAt ? <Badge value="disabled" tone="bad" /> : <Badge value="enabled" tone="ok" />}
    </h1>
    {notice ? <Notice tone={notice.tone}>{notice.text}</Notice> : null}
    <div class="grid">
      <div class="card stat">
        <div class="label">Success, last {String(stats.hours)} h</div>
        <div class={`value${stats.successRate === null ? '' : stats.successRate >= 0.99 ? ' tone-text-ok' : stats.successRate >= 0.9 ? ' tone-text-warn' : ' tone-text-bad'}`} data-testid="sink-success-rate">
          {percent(stats.successRate)}
        </div>
        <div class="small muted">
          {String(stats.delivered)} of {String(stats.attempts)} attempts delivered
        </div>
      </div>
      <div class="card stat">
        <div class="label">Answer time</div>
        <div class="value">{stats.averageMs === null ? '—' : formatDuration(stats.averageMs)}</div>
        <div class="small muted">average; slowest {stats.slowestMs === null ? '—' : formatDuration(stats.slowestMs)}</div>
      </div>
      <a class="card stat link" href={deliveriesHref({ sink: sink.id, state: 'pending' })}>
        <div class="label">Pending</div>
        <div class="value">{String(sink.pending)}</div>
      </a>
      <a class="card stat link" href={deliveriesHref({ sink: sink.id, state: 'dead' })}>
        <div class="label">Dead letters</div>
        <div class={`value${sink.deadLetters > 0 ? ' tone-text-bad' : ''}`}>{String(sink.deadLetters)}</div>
      </a>
    </div>
    <div class="card spaced">
      <dl class="facts">
        <dt>Id</dt>
        <dd class="mono">{sink.id}</dd>
        <dt>Kind</dt>
        <dd>{sink.kind}</dd>
        <dt>Last attempt</dt>
        <dd>
          <Instant value={stats.lastAttemptAt} now={now} empty="none in the window" />
        </dd>
        <dt>Last delivered</dt>
        <dd>
          <Instant value={stats.lastDeliveredAt} now={now} empty="none in the window" />
        </dd>
        {sink.disabledAt ? (
          <>
            <dt>Disabled</dt>
            <dd>
              <Instant value={new Date(sink.disabledAt)} now={now} />
              {sink.disabledReason ? <div class="small muted">{sink.disabledReason}</div> : null}
            </dd>
          </>
        ) : null}
      </dl>
      <div class="actions">
        <form method="post" action={`${sinkPath(sink.id)}/${sink.disabledAt ? 'enable' : 'disable'}`} class="inline">
          <button class="action" type="submit" data-testid={sink.disabledAt ? 'sink-enable' : 'sink-disable'}>
            {sink.disabledAt ? 'Enable: resume delivery in order' : 'Disable: hold its events'}
          </button>
        </form>{' '}
        <form method="post" action={`${sinkPath(sink.id)}/test`} class="inline">
          <button class="action" type="submit" data-testid="sink-test">
            Send a test event
          </button>
        </form>
      </div>
    </div>
  </Layout>
);
