/**
 * Scenario (d) The poller over many tracked payments
 */
import { watchRss } from '../proc-stats.js';
import { round, say, sleep } from '../common.js';
import { POLL_PAYMENTS, POLL_SECONDS, env } from '../config.js';
import { type Ceiling, type Context, type GatewayRun, type Usage, ceiling, ceilingAgain, cpuMsPer, measured, withGateway } from '../measure.js';

export interface ScenarioDResult {
  ceiling: Ceiling;
  gateway: GatewayRun;
  tracked: number;
  pollerEnv: Record<string, string>;
  seconds: number;
  polled: number;
  pollsPerSecond: number;
  changed: number;
  lagSecondsStart: number;
  lagSecondsEnd: number;
  pollDelayP50Seconds: number;
  pollDelayP99Seconds: number;
  secondsToPollAll: number;
  usage: Usage;
}

export async function scenarioD(ctx: Context): Promise<ScenarioDResult> {
  say(`(d) the poller over ${POLL_PAYMENTS} tracked payments`);
  const ceil = await ceiling(ctx, 'noop-poll');
  const prefix = 'tr_poll';
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix, from: 1, count: POLL_PAYMENTS, status: 'open', amount: { currency: 'EUR', value: '10.00' } });
  // Every tenth payment was paid meanwhile: its poll is a real change with an event.
  const changedIds: string[] = [];
  for (let n = 10; n <= POLL_PAYMENTS; n += 10) changedIds.push(`${prefix}${n}`);
  await ctx.sandbox.call({ command: 'mollie.setStatus', ids: changedIds, status: 'paid' });
  // Due over the last POLL_PAYMENTS milliseconds, oldest first by number.
  const base = (await ctx.benchSql<{ base: Date }[]>`select now() as base`)[0]!.base;
  await ctx.benchSql`
    insert into payments (provider, provider_payment_id, account, status, provider_status, amount_minor, currency,
      refunded_minor, charged_back_minor, mode, method, metadata, snapshot, version, fence, next_poll_at)
    select 'mollie', ${prefix} || g, 'default', 'open', 'open', 1000, 'EUR', 0, 0, 'test', 'ideal', '{"bench":true}', '{}', 1, 0,
      ${base}::timestamptz - (${POLL_PAYMENTS} - g) * interval '1 millisecond'
    from generate_series(1, ${POLL_PAYMENTS}::int) g`;
  await ctx.benchSql`analyze payments`;

  const pollerEnv = {
    // The token bucket paces real providers; here it would be the only thing measured.
    POLLER_RATE_PER_SECOND: env.BENCH_POLLER_RATE ?? '100000',
    POLLER_RATE_BURST: '1000',
    POLLER_BATCH_SIZE: env.BENCH_POLLER_BATCH ?? '200',
    POLLER_CONCURRENCY: env.BENCH_POLLER_CONCURRENCY ?? '16',
  };
  // Polls as the gateway counts them (each as it completes; the database sees them a pass at a time).
  const pollsCounted = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    let total = 0;
    for (const match of text.matchAll(/^gateway_poller_polls_total\{[^}]*\} (\d+)/gm)) total += Number(match[1]);
    return total;
  };
  const polledCount = async (url: string) => {
    const [row] = await ctx.benchSql<{ lag: number | null }[]>`
      select (select extract(epoch from now() - min(next_poll_at))::float8 from payments
               where next_poll_at <= now() and provider_payment_id like 'tr_poll%') as lag`;
    return { polled: await pollsCounted(url), lag: row!.lag };
  };
  const { value, gateway } = await withGateway(ctx, 'd-in-process', { lock: 'in-process', env: pollerEnv }, async (gw) => {
    const rss = watchRss(gw.pid);
    const run = await measured(ctx, gw, async () => {
      const start = await polledCount(gw.url);
      const started = performance.now();
      await sleep(POLL_SECONDS * 1000);
      const end = await polledCount(gw.url);
      return { start, end, seconds: (performance.now() - started) / 1000 };
    });
    await rss.stop();
    return run;
  });
  const { start, end, seconds } = value.value;
  const [delays] = await ctx.benchSql<{ p50: number | null; p99: number | null; changed: number }[]>`
    select percentile_cont(0.5) within group (order by d) as p50, percentile_cont(0.99) within group (order by d) as p99,
      (select count(*)::int from payments where provider_payment_id like 'tr_poll%' and status = 'paid') as changed
    from (select extract(epoch from last_polled_at - (${base}::timestamptz - (${POLL_PAYMENTS} - substr(provider_payment_id, 8)::int) * interval '1 millisecond'))::float8 as d
          from payments where provider_payment_id like 'tr_poll%' and last_polled_at is not null) x`;
  const polled = end.polled - start.polled;
  const pollsPerSecond = round(polled / seconds);
  await ceilingAgain(ctx, ceil);
  const result: ScenarioDResult = {
    ceiling: ceil,
    gateway,
    tracked: POLL_PAYMENTS,
    pollerEnv,
    seconds: round(seconds, 2),
    polled,
    pollsPerSecond,
    changed: delays!.changed,
    lagSecondsStart: round(start.lag ?? 0),
    lagSecondsEnd: round(end.lag ?? 0),
    pollDelayP50Seconds: round(delays!.p50 ?? 0),
    pollDelayP99Seconds: round(delays!.p99 ?? 0),
    secondsToPollAll: pollsPerSecond > 0 ? round(POLL_PAYMENTS / pollsPerSecond) : Infinity,
    usage: value.usage,
  };
  say(
    `  ${pollsPerSecond} polls/s (${polled} in ${result.seconds} s, ${result.changed} changed so far); lag ${result.lagSecondsStart} s → ${result.lagSecondsEnd} s; ` +
      `all ${POLL_PAYMENTS} in ~${result.secondsToPollAll} s; gateway ${result.usage.gatewayCpuCores} cores, ${cpuMsPer(result.usage, pollsPerSecond)} ms per poll; load ${result.usage.loadAverageStart[0]}→${result.usage.loadAverageEnd[0]}`,
  );
  return result;
}
