/**
 * Scenario (b) GoCardless 250-event batches
 */
import { buildGoCardlessWebhook, type WebhookEventPayload } from '../../src/sandbox/gocardless-webhook-sender.js';
import { watchRss } from '../proc-stats.js';
import { percentile, round, say, until } from '../common.js';
import { GC_BATCHES, GC_CONCURRENCY } from '../config.js';
import { type Ceiling, type Context, type GatewayRun, type Usage, ceiling, ceilingAgain, cpuMsPer, measured, withGateway } from '../measure.js';

export interface ScenarioBResult {
  ceiling: Ceiling;
  gateway: GatewayRun;
  events: number;
  batches: number;
  idleAck: { samples: number; p50Ms: number; maxMs: number };
  loadAck: { samples: number; concurrency: number; p50Ms: number; p99Ms: number; maxMs: number; statuses: Record<string, number> };
  applied: { seconds: number; eventsPerSecond: number; payments: number; pendingReceipts: number };
  usage: Usage;
}

export async function scenarioB(ctx: Context): Promise<ScenarioBResult> {
  say(`(b) GoCardless: ${GC_BATCHES} signed batches of 250 events`);
  const ceil = await ceiling(ctx, 'gocardless-sync');
  const events = await ctx.sandbox.call<WebhookEventPayload[]>({ command: 'gocardless.bulk', count: GC_BATCHES * 250, status: 'paid_out' });
  const batches: Array<{ body: string; headers: Record<string, string> }> = [];
  for (let i = 0; i < events.length; i += 250) batches.push(buildGoCardlessWebhook(events.slice(i, i + 250), ctx.sandbox.gocardlessWebhookSecret));
  const idleBatches = Math.min(3, batches.length);

  const { value, gateway } = await withGateway(ctx, 'b-in-process', { lock: 'in-process' }, async (gw) => {
    const send = async (batch: { body: string; headers: Record<string, string> }) => {
      const started = performance.now();
      const response = await fetch(`${gw.url}/webhooks/gocardless`, { method: 'POST', headers: batch.headers, body: batch.body });
      await response.arrayBuffer();
      return { ms: performance.now() - started, status: response.status };
    };
    const waitApplied = async (count: number) =>
      until('every GoCardless event applied', 240_000, async () => {
        const [row] = await ctx.benchSql<{ pending: number; payments: number }[]>`
          select (select count(*)::int from webhook_receipts where provider = 'gocardless' and state = 'pending') as pending,
                 (select count(*)::int from payments where provider = 'gocardless') as payments`;
        return row!.pending === 0 && row!.payments >= count;
      });

    // One batch at a time on an idle gateway, each applied before the next.
    const idle: number[] = [];
    for (let i = 0; i < idleBatches; i++) {
      const { ms, status } = await send(batches[i]!);
      if (status !== 204) throw new Error(`GoCardless batch answered ${status}`);
      idle.push(ms);
      await waitApplied((i + 1) * 250);
    }

    const rss = watchRss(gw.pid);
    const run = await measured(ctx, gw, async () => {
      const started = performance.now();
      const acks: number[] = [];
      const statuses: Record<string, number> = {};
      let next = idleBatches;
      await Promise.all(
        Array.from({ length: GC_CONCURRENCY }, async () => {
          while (next < batches.length) {
            const { ms, status } = await send(batches[next++]!);
            acks.push(ms);
            statuses[status] = (statuses[status] ?? 0) + 1;
          }
        }),
      );
      const ackedAt = performance.now();
      await waitApplied(batches.length * 250);
      return { acks, statuses, ackSeconds: (ackedAt - started) / 1000, seconds: (performance.now() - started) / 1000 };
    });
    await rss.stop();
    return { idle, run };
  });

  const loadEvents = (batches.length - idleBatches) * 250;
  const [counts] = await ctx.benchSql<{ payments: number; pending: number }[]>`
    select (select count(*)::int from payments where provider = 'gocardless') as payments,
           (select count(*)::int from webhook_receipts where provider = 'gocardless' and state = 'pending') as pending`;
  await ceilingAgain(ctx, ceil);
  const result: ScenarioBResult = {
    ceiling: ceil,
    gateway,
    events: events.length,
    batches: batches.length,
    idleAck: { samples: value.idle.length, p50Ms: round(percentile(value.idle, 50)), maxMs: round(Math.max(...value.idle)) },
    loadAck: {
      samples: value.run.value.acks.length,
      concurrency: GC_CONCURRENCY,
      p50Ms: round(percentile(value.run.value.acks, 50)),
      p99Ms: round(percentile(value.run.value.acks, 99)),
      maxMs: round(Math.max(...value.run.value.acks)),
      statuses: value.run.value.statuses,
    },
    applied: {
      seconds: round(value.run.value.seconds, 2),
      eventsPerSecond: round(loadEvents / value.run.value.seconds),
      payments: counts!.payments,
      pendingReceipts: counts!.pending,
    },
    usage: value.run.usage,
  };
  say(
    `  ack idle p50 ${result.idleAck.p50Ms} ms; under load (${GC_CONCURRENCY} in flight) p50 ${result.loadAck.p50Ms} ms, p99 ${result.loadAck.p99Ms} ms, max ${result.loadAck.maxMs} ms; ` +
      `${loadEvents} events acked in ${round(value.run.value.ackSeconds, 2)} s, applied in ${result.applied.seconds} s = ${result.applied.eventsPerSecond} events/s; ` +
      `gateway ${result.usage.gatewayCpuCores} cores, ${cpuMsPer(result.usage, result.applied.eventsPerSecond)} ms per event; load ${result.usage.loadAverageStart[0]}→${result.usage.loadAverageEnd[0]}`,
  );
  return result;
}
