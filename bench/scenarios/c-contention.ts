/**
 * Scenario (c) Contention: many triggers for few payments
 */
import autocannon from 'autocannon';
import { watchRss } from '../proc-stats.js';
import { round, say } from '../common.js';
import { ADMIN_TOKEN, CONNECTIONS, HOT_PAYMENTS, RUN_ID, SECONDS } from '../config.js';
import { type Ceiling, type Context, type GatewayRun, type LoadStats, type Usage, ceiling, ceilingAgain, cpuMsPer, loadStats, measured, mollieWebhook, printLoad, withGateway } from '../measure.js';

export interface ScenarioCResult {
  ceiling: Ceiling;
  gateway: GatewayRun;
  payments: number;
  webhooks: LoadStats;
  syncs: LoadStats;
  usage: Usage;
  check: {
    rows: number;
    paid: number;
    paidEvents: number;
    duplicateVersions: number;
    eventsWithoutTransition: number;
    transitions: number;
    pendingReceipts: number;
    ok: boolean;
  };
}

export async function scenarioC(ctx: Context): Promise<ScenarioCResult> {
  say(`(c) contention: webhooks and return-page syncs for ${HOT_PAYMENTS} payments`);
  const ceil = await ceiling(ctx, 'noop-webhook');
  const prefix = `tr_hot${RUN_ID}x`;
  const ids = Array.from({ length: HOT_PAYMENTS }, (_, i) => `${prefix}${i}`);
  await ctx.sandbox.call({ command: 'mollie.bulk', prefix, from: 0, count: HOT_PAYMENTS, status: 'open' });
  const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
  const connections = Math.max(2, Math.floor(CONNECTIONS / 2));

  const { value, gateway } = await withGateway(ctx, 'c-in-process', { lock: 'in-process' }, async (gw) => {
    // The payments move open → pending → paid while the triggers arrive.
    await ctx.sandbox.call({
      command: 'mollie.timeline',
      ids,
      steps: [
        { atMs: Math.round(SECONDS * 300), status: 'pending' },
        { atMs: Math.round(SECONDS * 600), status: 'paid' },
      ],
    });
    const rss = watchRss(gw.pid);
    const run = await measured(ctx, gw, async () => {
      const [webhooks, syncs] = await Promise.all([
        autocannon({ url: gw.url, connections, duration: SECONDS, requests: [mollieWebhook(pick)] }),
        autocannon({
          url: gw.url,
          connections,
          duration: SECONDS,
          requests: [
            {
              method: 'POST',
              headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
              setupRequest: (request) => {
                request.path = `/v1/payments/mollie/${pick()}/sync`;
                return request;
              },
            },
          ],
        }),
      ]);
      return { webhooks: loadStats(webhooks), syncs: loadStats(syncs) };
    });
    await rss.stop();
    return run;
  });

  const like = `${prefix}%`;
  const [check] = await ctx.benchSql<Omit<ScenarioCResult['check'], 'ok'>[]>`
    select
      (select count(*)::int from payments where provider_payment_id like ${like}) as rows,
      (select count(*)::int from payments where provider_payment_id like ${like} and status = 'paid') as paid,
      (select count(*)::int from outbox where provider_payment_id like ${like} and type = 'payment.paid') as "paidEvents",
      (select count(*)::int from (select payment_version from outbox where provider_payment_id like ${like}
         group by provider_payment_id, payment_version, type having count(*) > 1) d) as "duplicateVersions",
      (select count(*)::int from outbox o where provider_payment_id like ${like} and not exists (
         select 1 from payment_transitions t join payments p on p.id = t.payment_id
         where p.provider_payment_id = o.provider_payment_id and t.version = o.payment_version)) as "eventsWithoutTransition",
      (select count(*)::int from payment_transitions t join payments p on p.id = t.payment_id where p.provider_payment_id like ${like}) as transitions,
      (select count(*)::int from webhook_receipts where resource_id like ${like} and state = 'pending') as "pendingReceipts"`;
  const ok =
    check!.rows === HOT_PAYMENTS && check!.paid === HOT_PAYMENTS && check!.paidEvents === HOT_PAYMENTS && check!.duplicateVersions === 0 && check!.eventsWithoutTransition === 0;
  await ceilingAgain(ctx, ceil);
  const result: ScenarioCResult = {
    ceiling: ceil,
    gateway,
    payments: HOT_PAYMENTS,
    webhooks: value.value.webhooks,
    syncs: value.value.syncs,
    usage: value.usage,
    check: { ...check!, ok },
  };
  printLoad('webhooks', result.webhooks, result.usage);
  printLoad('return-page syncs', result.syncs, result.usage);
  say(`  together ${round(result.webhooks.rate + result.syncs.rate)}/s, ${cpuMsPer(result.usage, result.webhooks.rate + result.syncs.rate)} ms gateway CPU per trigger`);
  say(`  check: ${JSON.stringify(result.check)}`);
  return result;
}
