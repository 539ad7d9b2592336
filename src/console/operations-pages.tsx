import type { FC } from 'hono/jsx';
import { formatDuration } from './format.js';
import { Badge, EmptyRow, Instant, Layout, Notice } from './layout.js';
import { PaymentRef, RedriveButton } from './payment-pages.js';
import type { FleetStatus } from '../poller/fleet.js';
import type { DeadLetterRow, OutboxSummary, PollerAccountHealth, WebhookVolume } from './queries.js';
import { VolumeChart } from './volume-chart.js';
import { sinkPath } from './delivery-pages.js';

/** Past this, an unrelayed event means the relay is stuck or missing, not merely busy. */
export const OUTBOX_LAG_WARN_SECONDS = 60;

const Stat: FC<{ label: string; value: string; tone?: 'ok' | 'warn' | 'bad'; testId?: string; href?: string }> = ({ label, value, tone, testId, href }) => {
  const body = (
    <>
      <div class="label">{label}</div>
      <div class={`value${tone ? ` tone-text-${tone}` : ''}`} data-testid={testId}>
        {value}
      </div>
    </>
  );
  // A card that has a page behind it is a link to that page.
  return href ? (
    <a class="card stat link" href={href}>
      {body}
    </a>
  ) : (
    <div class="card stat">{body}</div>
  );
};

/** The overview chart's ranges: how far back, and each bar's length. */
export const VOLUME_RANGES = {
  '1h': { minutes: 60, bucketMinutes: 1, label: 'last hour' },
  '6h': { minutes: 360, bucketMinutes: 5, label: 'last 6 hours' },
  '24h': { minutes: 1440, bucketMinutes: 15, label: 'last 24 hours' },
  '7d': { minutes: 10_080, bucketMinutes: 60, label: 'last 7 days' },
} as const;
export type VolumeRange = keyof typeof VOLUME_RANGES;
/** Reload choices for the overview, in seconds (0: off). */
export const REFRESH_CHOICES = [0, 10, 30, 60] as const;

const overviewHref = (range: VolumeRange, refresh: number) => {
  const params = new URLSearchParams();
  if (range !== '1h') params.set('range', range);
  if (refresh > 0) params.set('refresh', String(refresh));
  const text = params.toString();
  return `/console${text ? `?${text}` : ''}`;
};

function lagTone(summary: OutboxSummary) {
  if (summary.unrelayed === 0) return 'ok' as const;
  return summary.lagSeconds > OUTBOX_LAG_WARN_SECONDS ? ('bad' as const) : ('warn' as const);
}

export const OverviewPage: FC<{
  volume: WebhookVolume;
  outbox: OutboxSummary;
  pollers: PollerAccountHealth[];
  fleet?: FleetStatus | null;
  range?: VolumeRange;
  refresh?: number;
}> = ({ volume, outbox, pollers, fleet, range = '1h', refresh = 0 }) => {
  const degraded = pollers.filter((p) => p.state === 'degraded').length;
  const received = volume.buckets.reduce((sum, b) => sum + b.counts.processed + b.counts.ignored + b.counts.pending + b.counts.failed + b.other, 0);
  const disabledSinks = outbox.sinks.filter((sink) => sink.disabledAt !== null);
  return (
    <Layout title="Overview" nav="overview" signedIn refreshSeconds={refresh > 0 ? refresh : undefined}>
      <h1>Overview</h1>
      <div class="toolbar" data-testid="refresh-choices">
        <span>Reload every</span>
        {REFRESH_CHOICES.map((seconds) => (
          <a href={overviewHref(range, seconds)} class={seconds === refresh ? 'on' : undefined}>
            {seconds === 0 ? 'off' : `${seconds} s`}
          </a>
        ))}
        <a href={overviewHref(range, refresh)}>Reload now</a>
      </div>
      {disabledSinks.map((sink) => (
        <Notice tone="bad">
          <span data-testid="sink-disabled">
            Sink <span class="mono">{sink.target}</span> ({sink.kind}) is disabled{sink.disabledReason ? `: ${sink.disabledReason}` : ''}. Its {sink.pending}{' '}
            pending events wait until it is enabled again (<a href="/console/outbox">Outbox &amp; sinks</a>, or POST /v1/event-sinks/{sink.id}/enable).
          </span>
        </Notice>
      ))}
      <div class="grid">
        <Stat label={`Webhooks, ${VOLUME_RANGES[range].label}`} value={String(received)} testId="stat-webhooks" href="/console/receipts" />
        <Stat label="Outbox lag" value={outbox.unrelayed === 0 ? 'none' : formatDuration(outbox.lagSeconds * 1000)} tone={lagTone(outbox)} testId="stat-outbox-lag" href="/console/outbox" />
        <Stat label="Dead letters" value={String(outbox.deadLetters)} tone={outbox.deadLetters > 0 ? 'bad' : 'ok'} testId="stat-dead-letters" href="/console/deliveries?state=dead" />
        <Stat label="Pollers degraded" value={`${degraded} of ${pollers.length}`} tone={degraded > 0 ? 'bad' : 'ok'} testId="stat-pollers" href="/console/pollers" />
        <Stat
          label="Polling, fleet-wide"
          value={!fleet ? 'not seen yet' : fleet.state === 'stalled' ? `STALLED, last pass ${fleet.lastPassAt}` : 'running'}
          tone={fleet?.state === 'stalled' ? 'bad' : 'ok'}
          testId="stat-poller-fleet"
        />
      </div>
      <h2>Webhook volume and outcomes, {VOLUME_RANGES[range].label}</h2>
      <div class="toolbar" data-testid="range-choices">
        <span>Range</span>
        {(Object.keys(VOLUME_RANGES) as VolumeRange[]).map((key) => (
          <a href={overviewHref(key, refresh)} class={key === range ? 'on' : undefined}>
            {key}
          </a>
        ))}
      </div>
      <div class="card">
        <VolumeChart volume={volume} />
      </div>
    </Layout>
  );
};

export const PollersPage: FC<{ pollers: PollerAccountHealth[]; now: Date }> = ({ pollers, now }) => (
  <Layout title="Pollers" nav="pollers" signedIn>
    <h1>Poller health</h1>
    <p class="muted">
      One row per provider account. <em>Degraded</em> means polls keep failing; payments left due pile up until it recovers. Due counts come from
      the payments table (a poll time that has passed).
    </p>
    <table data-testid="pollers-table">
      <thead>
        <tr>
          <th>Provider</th>
          <th>Account</th>
          <th>State</th>
          <th class="num">Failures in a row</th>
          <th>Last success</th>
          <th>Last failure</th>
          <th>Paused until</th>
          <th class="num">Scheduled</th>
          <th class="num">Due now</th>
          <th>Oldest due</th>
        </tr>
      </thead>
      <tbody>
        {pollers.length === 0 ? (
          <EmptyRow cols={10}>No poller has reported yet, and no payment has a poll scheduled.</EmptyRow>
        ) : (
          pollers.map((p) => (
            <tr data-provider={p.provider} data-account={p.account}>
              <td>{p.provider}</td>
              <td>{p.account}</td>
              <td>
                <Badge value={p.state ?? 'no report'} />
                {p.stateChangedAt ? (
                  <div class="small muted">
                    since <Instant value={p.stateChangedAt} now={now} />
                  </div>
                ) : null}
              </td>
              <td class="num">{String(p.consecutiveFailures)}</td>
              <td>
                <Instant value={p.lastSuccessAt} now={now} empty="never" />
              </td>
              <td>
                <Instant value={p.lastFailureAt} now={now} empty="never" />
                {p.lastError ? <div class="small muted">{p.lastError}</div> : null}
              </td>
              <td>{p.pausedUntil && p.pausedUntil > now ? <Instant value={p.pausedUntil} now={now} /> : <span class="muted">—</span>}</td>
              <td class="num">{String(p.scheduled)}</td>
              <td class="num">{String(p.due)}</td>
              <td>{p.oldestDueAt ? <span>{formatDuration(now.getTime() - p.oldestDueAt.getTime())} overdue</span> : <span class="muted">—</span>}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  </Layout>
);

export const OutboxPage: FC<{
  summary: OutboxSummary;
  deadLetters: DeadLetterRow[];
  nextAfter: number | null;
  now: Date;
  notice?: { tone: 'ok' | 'warn'; text: string };
}> = ({ summary, deadLetters, nextAfter, now, notice }) => (
  <Layout title="Outbox & sinks" nav="outbox" signedIn>
    <h1>Outbox, sinks and dead letters</h1>
    {notice ? <Notice tone={notice.tone}>{notice.text}</Notice> : null}
    <div class="grid">
      <Stat
        label="Oldest unrelayed event"
        value={summary.unrelayed === 0 ? 'none waiting' : `${formatDuration(summary.lagSeconds * 1000)} old`}
        tone={lagTone(summary)}
        testId="outbox-lag"
      />
      <Stat label="Events waiting in the outbox" value={String(summary.unrelayed)} testId="outbox-unrelayed" />
      <Stat label="Dead letters" value={String(summary.deadLetters)} tone={summary.deadLetters > 0 ? 'bad' : 'ok'} testId="outbox-dead" />
    </div>

    <h2>Sinks</h2>
    <p class="muted small">
      Open a sink for its success rate, to enable or disable it, or to send it a test event. <a href="/console/deliveries">Every delivery</a>, filtered by
      sink, state, type and date, with each attempt.
    </p>
    <table data-testid="sinks-table">
      <thead>
        <tr>
          <th>Sink</th>
          <th>Kind</th>
          <th>Target</th>
          <th>State</th>
          <th class="num">Pending</th>
          <th class="num">Dead letters</th>
        </tr>
      </thead>
      <tbody>
        {summary.sinks.length === 0 ? (
          <EmptyRow cols={6}>No sink has been registered (EVENT_SINK_URLS, EVENT_STREAM, EVENT_NATS_URL, EVENT_AMQP_URL).</EmptyRow>
        ) : (
          summary.sinks.map((sink) => (
            <tr data-sink={sink.id}>
              <td class="mono">
                <a href={sinkPath(sink.id)}>{sink.id}</a>
              </td>
              <td>{sink.kind}</td>
              <td class="mono">{sink.target}</td>
              <td>
                {sink.disabledAt ? (
                  <>
                    <Badge value="disabled" tone="bad" />
                    <div class="small muted">
                      since <Instant value={new Date(sink.disabledAt)} now={now} />
                      {sink.disabledReason ? <> · {sink.disabledReason}</> : null}
                    </div>
                  </>
                ) : (
                  <Badge value="enabled" tone="ok" />
                )}
              </td>
              <td class="num">{String(sink.pending)}</td>
              <td class="num">{String(sink.deadLetters)}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>

    <h2>Dead letters</h2>
    <p class="muted small">
      Deliveries the relay gave up on, oldest first. Re-drive puts one back in the queue with a fresh retry schedule; the event keeps its id, so a
      receiver that already has it de-duplicates it.
    </p>
    <table data-testid="dead-letters-table">
      <thead>
        <tr>
          <th class="num">Delivery</th>
          <th>Event</th>
          <th>Payment</th>
          <th>Sink</th>
          <th>Last attempt</th>
          <th>Dead since</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        {deadLetters.length === 0 ? (
          <EmptyRow cols={7}>No dead letters.</EmptyRow>
        ) : (
          deadLetters.map((d) => (
            <tr data-delivery-id={String(d.id)}>
              <td class="num mono">#{String(d.id)}</td>
              <td>
                {d.type}
                <div class="small mono muted">{d.eventId}</div>
              </td>
              <td>
                <PaymentRef provider={d.provider} paymentId={d.paymentId} version={d.version} />
              </td>
              <td>
                <span class="mono small">{d.sinkTarget}</span>
                {d.sinkDisabled ? (
                  <>
                    {' '}
                    <Badge value="disabled" tone="bad" />
                  </>
                ) : null}
              </td>
              <td>
                {String(d.attempts)} attempts{d.lastStatus !== null ? <> · HTTP {String(d.lastStatus)}</> : null}
                {d.lastError ? <div class="small muted">{d.lastError}</div> : null}
                <div class="small">
                  <Instant value={d.lastAttemptAt} now={now} />
                </div>
              </td>
              <td>
                <Instant value={d.deadLetteredAt} now={now} />
              </td>
              <td>
                <RedriveButton deliveryId={d.id} back="/console/outbox" />
              </td>
            </tr>
          ))
        )}
      </tbody>
    </table>
    <div class="pager">{nextAfter !== null ? <a href={`/console/outbox?after=${nextAfter}`}>More »</a> : null}</div>
  </Layout>
);
