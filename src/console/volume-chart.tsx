import type { FC } from 'hono/jsx';
import { RECEIPT_STATES, type VolumeBucket, type WebhookVolume } from './queries.js';

const COLORS: Record<(typeof RECEIPT_STATES)[number] | 'other', string> = {
  processed: '#2f9e63',
  ignored: '#9aa5b8',
  pending: '#e0a100',
  failed: '#d64535',
  other: '#6b5bd6',
};

const WIDTH = 960;
const HEIGHT = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };

const total = (bucket: VolumeBucket) => RECEIPT_STATES.reduce((sum, state) => sum + bucket.counts[state], bucket.other);
const hhmm = (date: Date) => date.toISOString().slice(11, 16);
/** Past a day, the date too. */
const tickLabel = (date: Date, spanMinutes: number) => (spanMinutes > 1440 ? date.toISOString().slice(5, 16).replace('T', ' ') : hhmm(date));

/** A round axis maximum (1, 2, 5 × 10^n) at or above the busiest minute. */
function niceMax(value: number): number {
  if (value <= 4) return 4;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/**
 * Webhook receipts per minute, stacked by state, as inline SVG: no script, no image
 * request. Each bar's <title> is its tooltip with the exact counts.
 */
export const VolumeChart: FC<{ volume: WebhookVolume }> = ({ volume }) => {
  const { buckets } = volume;
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const max = niceMax(Math.max(0, ...buckets.map(total)));
  const slot = plotWidth / Math.max(1, buckets.length);
  const barWidth = Math.max(1, slot * 0.78);
  const y = (value: number) => PAD.top + plotHeight - (value / max) * plotHeight;
  const ticks = [0, max / 4, max / 2, (3 * max) / 4, max];
  const totals = Object.fromEntries([...RECEIPT_STATES, 'other'].map((state) => [state, 0])) as Record<keyof typeof COLORS, number>;
  for (const bucket of buckets) {
    for (const state of RECEIPT_STATES) totals[state] += bucket.counts[state];
    totals.other += bucket.other;
  }
  const first = buckets[0]?.minute;
  const last = buckets.at(-1)?.minute;
  const span = buckets.length * volume.bucketMinutes;
  const per = volume.bucketMinutes === 1 ? 'minute' : volume.bucketMinutes % 60 === 0 ? `${volume.bucketMinutes / 60} h` : `${volume.bucketMinutes} min`;
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 8));

  return (
    <div class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`Webhook receipts per ${per}${first && last ? `, ${hhmm(first)} to ${hhmm(last)} UTC` : ''}`}
        data-testid="volume-chart"
      >
        {ticks.map((tick) => (
          <g>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(tick)} y2={y(tick)} stroke={tick === 0 ? '#9aa5b8' : '#e3e7ee'} stroke-width="1" />
            <text x={PAD.left - 6} y={y(tick) + 4} text-anchor="end" font-size="11" fill="#687386">
              {Number.isInteger(tick) ? String(tick) : tick.toFixed(1)}
            </text>
          </g>
        ))}
        {buckets.map((bucket, index) => {
          const x = PAD.left + index * slot + (slot - barWidth) / 2;
          let base = 0;
          const segments = [...RECEIPT_STATES.map((state) => [state, bucket.counts[state]] as const), ['other', bucket.other] as const]
            .filter(([, count]) => count > 0)
            .map(([state, count]) => {
              const top = base + count;
              const rect = (
                <rect x={x.toFixed(1)} y={y(top).toFixed(1)} width={barWidth.toFixed(1)} height={(y(base) - y(top)).toFixed(1)} fill={COLORS[state]} data-state={state} />
              );
              base = top;
              return rect;
            });
          const label = `${tickLabel(bucket.minute, span)} UTC: ${total(bucket)} receipts (${RECEIPT_STATES.map((state) => `${bucket.counts[state]} ${state}`).join(', ')}${bucket.other ? `, ${bucket.other} other` : ''})`;
          return (
            <g data-minute={bucket.minute.toISOString()} data-total={String(total(bucket))}>
              <title>{label}</title>
              {/* A transparent full-height target so empty minutes have a tooltip too. */}
              <rect x={(PAD.left + index * slot).toFixed(1)} y={PAD.top} width={slot.toFixed(1)} height={plotHeight} fill="transparent" />
              {segments}
              {index % labelEvery === 0 ? (
                <text x={(x + barWidth / 2).toFixed(1)} y={HEIGHT - 8} text-anchor="middle" font-size="11" fill="#687386">
                  {tickLabel(bucket.minute, span)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <div class="legend">
        {[...RECEIPT_STATES, 'other' as const]
          .filter((state) => state !== 'other' || totals.other > 0)
          .map((state) => (
            <span>
              <span class={`swatch sw-${state}`} />
              {state} <strong data-testid={`volume-total-${state}`}>{String(totals[state])}</strong>
            </span>
          ))}
        <span class="muted">
          per {per}, last {span >= 120 ? `${String(Math.round(span / 60))} h` : `${String(span)} min`}, UTC
        </span>
      </div>
    </div>
  );
};
