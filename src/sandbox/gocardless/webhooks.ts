/**
 * The webhooks the GoCardless sandbox pushes: on request, or automatically to a configured
 * endpoint shortly after new events, one delivery at a time like a single GoCardless worker.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { GoCardlessEvent } from '../../providers/gocardless/webhook.js';
import { sendGoCardlessWebhooks, type SendGoCardlessWebhooksReport } from '../gocardless-webhook-sender.js';
import { SandboxError, type DeliverWebhooksInput, type GoCardlessStore, type SandboxWebhookOptions, type WebhookEndpointConfig } from './state.js';

export function createGoCardlessWebhooks(store: GoCardlessStore, settings: { webhookSecret: string; origin: string; signal: AbortSignal }) {
  const { events, eventIndex, attempted, webhookDeliveries, later } = store;
  const { webhookSecret, origin } = settings;
  const lifetime = { signal: settings.signal };

  let deliveryChain: Promise<void> = Promise.resolve();
  let deliveryScheduled = false;

  async function deliver(url: string, selected: GoCardlessEvent[], webhookOptions: SandboxWebhookOptions): Promise<SendGoCardlessWebhooksReport> {
    for (const event of selected) attempted.add(event.id);
    const report = await sendGoCardlessWebhooks({
      ...webhookOptions,
      url,
      secret: webhookSecret,
      origin,
      events: selected,
      signal: lifetime.signal,
    });
    webhookDeliveries.push(...report.batches);
    return report;
  }

  function scheduleAutoDelivery(): void {
    if (deliveryScheduled || !store.webhookEndpoint) return;
    deliveryScheduled = true;
    later(store.webhookEndpoint.debounceMs ?? 10, () => {
      deliveryScheduled = false;
      const endpoint = store.webhookEndpoint;
      if (!endpoint || lifetime.signal.aborted) return;
      const selected = events.filter((event) => !attempted.has(event.id));
      if (selected.length === 0) return;
      const { url, debounceMs: _debounceMs, ...webhookOptions } = endpoint;
      for (const event of selected) attempted.add(event.id);
      // One automatic delivery at a time, in order, like a single GoCardless worker.
      deliveryChain = deliveryChain.then(() => deliver(url, selected, webhookOptions).then(() => undefined, () => undefined));
    });
  }

  async function deliverWebhooks(input: DeliverWebhooksInput = {}): Promise<SendGoCardlessWebhooksReport> {
    const { url: explicitUrl, eventIds, all, ...webhookOptions } = input;
    const url = explicitUrl ?? store.webhookEndpoint?.url;
    if (!url) throw new SandboxError(400, 'no webhook url: pass one or configure the webhook endpoint');
    let selected: GoCardlessEvent[];
    if (eventIds) {
      selected = eventIds.map((id) => {
        const index = eventIndex.get(id);
        if (index === undefined) throw new SandboxError(404, `no sandbox event ${id}`);
        return events[index]!;
      });
    } else {
      selected = all ? [...events] : events.filter((event) => !attempted.has(event.id));
    }
    return deliver(url, selected, webhookOptions);
  }

  async function webhooksIdle(): Promise<void> {
    // A delivery can schedule another (events appended meanwhile), so wait until quiet.
    for (;;) {
      const chain = deliveryChain;
      await chain;
      if (!deliveryScheduled && chain === deliveryChain) return;
      await sleep(5);
    }
  }
  function setWebhookEndpoint(config: WebhookEndpointConfig | null): void {
    store.setWebhookEndpoint(config);
    if (config) scheduleAutoDelivery();
  }

  return { scheduleAutoDelivery, deliverWebhooks, webhooksIdle, setWebhookEndpoint };
}

export type GoCardlessWebhooks = ReturnType<typeof createGoCardlessWebhooks>;
