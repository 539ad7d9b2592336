/**
 * The GoCardless sandbox's control API under /__sandbox, for other processes: the same
 * verbs as the handle, with the handle's input objects as JSON bodies.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { SandboxEnv } from './gatekeeping.js';
import {
  createEventInputSchema,
  createPaymentInputSchema,
  deliverInputSchema,
  endpointInputSchema,
  faultsInputSchema,
  mandateEndInputSchema,
  paymentStatusSchema,
  payoutInputSchema,
  refundInputSchema,
  refundStatusInputSchema,
  SandboxError,
  statusChangeOptionsSchema,
  timelineStepSchema,
  type GoCardlessStore,
} from './state.js';
import type { GoCardlessWebhooks } from './webhooks.js';
import { json } from './wire.js';

export function registerGoCardlessControlRoutes(app: Hono<SandboxEnv>, store: GoCardlessStore, webhooks: GoCardlessWebhooks): void {
  const { payments, events, fetchCounts, requests, webhookDeliveries, requirePayment, createPayment, setPaymentStatus, scheduleTimeline, refundPayment, setRefundStatus, endMandate, payOut, createEvent, tick, setFaults, clearFaults, reset } = store;
  const { deliverWebhooks, setWebhookEndpoint, webhooksIdle } = webhooks;

  const readJson = async (c: Context<SandboxEnv>): Promise<unknown> => {
    const text = await c.req.text();
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new SandboxError(400, 'control body is not valid JSON');
    }
  };

  const stateSnapshot = () => ({
    payments: [...payments.values()],
    events,
    fetch_counts: Object.fromEntries(fetchCounts),
    faults: store.faults,
    webhook_endpoint: store.webhookEndpoint ? { ...store.webhookEndpoint, random: undefined, fetcher: undefined } : null,
    webhook_deliveries: webhookDeliveries.length,
    pending_timeline_steps: store.pendingStepCount,
    requests: requests.length,
  });

  app.get('/__sandbox/state', () => json(200, stateSnapshot()));
  app.post('/__sandbox/reset', () => {
    reset();
    return json(200, stateSnapshot());
  });
  app.post('/__sandbox/tick', () => {
    tick();
    return json(200, { pending_timeline_steps: store.pendingStepCount });
  });
  app.post('/__sandbox/payments', async (c) => {
    const payment = createPayment(createPaymentInputSchema.parse(await readJson(c)));
    return json(201, { payments: payment, events: events.filter((event) => event.links.payment === payment.id) });
  });
  app.get('/__sandbox/payments/:id', (c) => {
    const payment = requirePayment(c.req.param('id'));
    return json(200, { payments: payment, fetch_count: fetchCounts.get(payment.id) ?? 0 });
  });
  app.post('/__sandbox/payments/:id/status', async (c) => {
    const body = statusChangeOptionsSchema.extend({ status: paymentStatusSchema }).parse(await readJson(c));
    const { status, ...statusOptions } = body;
    const result = setPaymentStatus(c.req.param('id'), status, statusOptions);
    return json(200, { payments: result.payment, events: result.event });
  });
  app.post('/__sandbox/payments/:id/timeline', async (c) => {
    const body = z.object({ steps: z.array(timelineStepSchema).min(1) }).parse(await readJson(c));
    const { dueAt } = scheduleTimeline(c.req.param('id'), body.steps);
    return json(200, { due_at: dueAt.map((date) => date.toISOString()) });
  });
  app.post('/__sandbox/payments/:id/refunds', async (c) => {
    const result = refundPayment(c.req.param('id'), refundInputSchema.parse(await readJson(c)));
    return json(201, { refund_id: result.refundId, events: result.event });
  });
  app.post('/__sandbox/refunds/:id/status', async (c) => {
    const result = setRefundStatus(c.req.param('id'), refundStatusInputSchema.parse(await readJson(c)));
    return json(200, { refunds: result.refund, events: result.event });
  });
  app.post('/__sandbox/mandates/:id/cancel', async (c) =>
    json(200, { events: endMandate(c.req.param('id'), 'cancelled', mandateEndInputSchema.parse(await readJson(c))) }),
  );
  app.post('/__sandbox/mandates/:id/expire', async (c) =>
    json(200, { events: endMandate(c.req.param('id'), 'expired', mandateEndInputSchema.parse(await readJson(c))) }),
  );
  app.post('/__sandbox/payouts', async (c) => {
    const body = payoutInputSchema.parse(await readJson(c));
    const result = payOut(body.paymentIds, body.payoutId);
    return json(201, { payout_id: result.payoutId, events: result.events });
  });
  app.post('/__sandbox/events', async (c) => json(201, { events: createEvent(createEventInputSchema.parse(await readJson(c))) }));
  app.get('/__sandbox/fetch-counts', () => json(200, { counts: Object.fromEntries(fetchCounts) }));
  app.get('/__sandbox/requests', () => json(200, { requests }));
  app.get('/__sandbox/faults', () => json(200, { faults: store.faults }));
  app.put('/__sandbox/faults', async (c) => {
    setFaults(faultsInputSchema.parse(await readJson(c)));
    return json(200, { faults: store.faults });
  });
  app.delete('/__sandbox/faults', () => {
    clearFaults();
    return json(200, { faults: store.faults });
  });
  app.post('/__sandbox/webhooks/deliver', async (c) => {
    const input = deliverInputSchema.parse(await readJson(c));
    const report = await deliverWebhooks(input);
    return json(200, report);
  });
  app.put('/__sandbox/webhooks/endpoint', async (c) => {
    const config = endpointInputSchema.parse(await readJson(c));
    setWebhookEndpoint(config);
    return json(200, { webhook_endpoint: config });
  });
  app.delete('/__sandbox/webhooks/endpoint', () => {
    setWebhookEndpoint(null);
    return json(200, { webhook_endpoint: null });
  });
  app.get('/__sandbox/webhooks/deliveries', () => json(200, { deliveries: webhookDeliveries }));
  app.post('/__sandbox/webhooks/idle', async () => {
    await webhooksIdle();
    return json(200, { deliveries: webhookDeliveries.length });
  });
}
