/**
 * The webhooks the Mollie sandbox sends itself: classic (id=tr_...) and signed next-gen
 * events on request, and, with autoWebhooks, after the changes Mollie would notify,
 * including timeline steps as they fall due.
 */
import {
  sendMollieClassicWebhook,
  sendMollieEventWebhook,
  type WebhookDeliveryResult,
  type WebhookSendOptions,
} from '../mollie-webhook-sender.js';
import { effectiveStatus, SandboxError, WEBHOOK_STATUSES, type MollieSandboxState, type SandboxPayment } from './state.js';

export type MollieEventOptions = WebhookSendOptions & { url?: string; secret: string; mode?: 'snapshot' | 'simple'; type?: string; prefixSignature?: boolean };

export function createMollieNotifier(deps: {
  paymentOf(id: string): SandboxPayment;
  /** The payment exactly as GET /v2/payments/:id would return it now. */
  paymentJson(id: string): Record<string, unknown>;
  deliveries: MollieSandboxState['deliveries'];
  autoWebhooks: WebhookSendOptions | null;
}) {
  const { paymentOf, paymentJson, autoWebhooks, deliveries } = deps;
  const lifetime = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const background = new Set<Promise<unknown>>();

  function track<T>(promise: Promise<T>): Promise<T> {
    background.add(promise);
    void promise.finally(() => background.delete(promise)).catch(() => undefined);
    return promise;
  }

  async function notify(paymentId: string, sendOptions: WebhookSendOptions & { url?: string } = {}): Promise<WebhookDeliveryResult> {
    const payment = paymentOf(paymentId);
    const url = sendOptions.url ?? payment.webhookUrl;
    if (!url) throw new SandboxError(`payment ${paymentId} has no webhookUrl and no url was given`);
    const result = await track(
      sendMollieClassicWebhook(url, paymentId, { ...sendOptions, signal: sendOptions.signal ?? lifetime.signal }),
    );
    deliveries.push({ paymentId, url, kind: 'classic', result });
    return result;
  }

  function autoNotify(payment: SandboxPayment): void {
    if (!autoWebhooks || !payment.webhookUrl || lifetime.signal.aborted) return;
    void notify(payment.id, autoWebhooks).catch(() => undefined);
  }

  function armTimeline(payment: SandboxPayment): void {
    if (!autoWebhooks || !payment.webhookUrl) return;
    const now = Date.now();
    for (const step of payment.timeline) {
      if (step.at <= now || !WEBHOOK_STATUSES.has(step.status)) continue;
      const timer = setTimeout(() => {
        timers.delete(timer);
        // Only if this step is still part of the payment's timeline (not replaced meanwhile).
        // The status is read as of the step's time at least: a timer can fire a millisecond
        // before Date.now() reaches step.at, and the step would then look not yet due.
        const at = Math.max(Date.now(), step.at);
        if (payment.timeline.includes(step) && effectiveStatus(payment, at).status === step.status) autoNotify(payment);
      }, step.at - now);
      timers.add(timer);
    }
  }
  async function notifyEvent(
    paymentId: string,
    eventOptions: MollieEventOptions,
  ) {
    const payment = paymentOf(paymentId);
    const url = eventOptions.url ?? payment.webhookUrl;
    if (!url) throw new SandboxError(`payment ${paymentId} has no webhookUrl and no url was given`);
    const mode = eventOptions.mode ?? 'snapshot';
    const result = await track(
      sendMollieEventWebhook(
        url,
        {
          type: eventOptions.type ?? `payment.${effectiveStatus(payment).status}`,
          entityId: paymentId,
          mode,
          ...(mode === 'snapshot' ? { entity: paymentJson(paymentId) } : {}),
        },
        { ...eventOptions, signal: eventOptions.signal ?? lifetime.signal },
      ),
    );
    deliveries.push({ paymentId, url, kind: 'event', result });
    return result;
  }

  function clearTimers(): void {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  }

  /** Stops auto webhooks and aborts deliveries in flight (the sandbox is closing). */
  function stop(): void {
    lifetime.abort();
    clearTimers();
  }

  /** Resolves once every delivery started so far has ended. */
  async function settled(): Promise<void> {
    await Promise.allSettled([...background]);
  }

  return { notify, notifyEvent, autoNotify, armTimeline, clearTimers, stop, settled };
}

export type MollieNotifier = ReturnType<typeof createMollieNotifier>;
