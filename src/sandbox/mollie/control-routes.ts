/**
 * The Mollie sandbox's control API under /__sandbox: JSON in, JSON out, no auth (it is a
 * sandbox), the same verbs as the handle so other processes can script it.
 */
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { MollieFaults } from './faults.js';
import type { MollieNotifier } from './webhooks.js';
import { SANDBOX_PAYMENT_STATUSES, SANDBOX_REFUND_STATUSES, SandboxError, type MollieStore } from './state.js';
import { renderChargeback, renderPayment, renderRefund } from './wire.js';

const statusSchema = z.enum(SANDBOX_PAYMENT_STATUSES);
const refundStatusSchema = z.enum(SANDBOX_REFUND_STATUSES);
const amountSchema = z.object({ currency: z.string(), value: z.string() });
const idSchema = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]+$`), `must look like ${prefix}_...`);
const timelineSchema = z.array(z.object({ atMs: z.number().int().min(0), status: statusSchema }));
const dateSchema = z.union([z.string(), z.number()]).transform((value) => new Date(value));

const createPaymentSchema = z.object({
  id: idSchema('tr').optional(),
  status: statusSchema.optional(),
  amount: amountSchema.optional(),
  description: z.string().optional(),
  method: z.string().nullable().optional(),
  metadata: z.unknown().optional(),
  sequenceType: z.enum(['oneoff', 'first', 'recurring']).optional(),
  mode: z.enum(['live', 'test']).optional(),
  apiKey: z.string().optional(),
  createdAt: dateSchema.optional(),
  webhookUrl: z.string().nullable().optional(),
  redirectUrl: z.string().nullable().optional(),
  customerId: z.string().nullable().optional(),
  mandateId: z.string().nullable().optional(),
  subscriptionId: z.string().nullable().optional(),
  settlementId: z.string().nullable().optional(),
  details: z.record(z.string(), z.unknown()).nullable().optional(),
  timeline: timelineSchema.optional(),
});
const refundSchema = z.object({
  id: idSchema('re').optional(),
  status: refundStatusSchema.optional(),
  amount: amountSchema.optional(),
  description: z.string().optional(),
  createdAt: dateSchema.optional(),
});
const chargebackSchema = z.object({
  id: idSchema('chb').optional(),
  amount: amountSchema.optional(),
  reversed: z.boolean().optional(),
  createdAt: dateSchema.optional(),
});
const faultSchema = z.object({
  status: z.number().int().min(400).max(599),
  count: z.number().int().min(1),
  retryAfterS: z.number().int().min(0).optional(),
  paymentId: z.string().optional(),
});
const latencySchema = z.object({ ms: z.number().int().min(0), paymentId: z.string().optional() });
const downSchema = z.object({ mode: z.enum(['error', 'reset']).nullable() });
const sendOptionsSchema = z.object({
  url: z.string().url().optional(),
  scale: z.number().positive().optional(),
  schedule: z.array(z.number().min(0)).optional(),
  timeoutMs: z.number().positive().optional(),
});
const eventOptionsSchema = sendOptionsSchema.extend({
  secret: z.string().min(1),
  mode: z.enum(['snapshot', 'simple']).optional(),
  type: z.string().optional(),
  prefixSignature: z.boolean().optional(),
});

export function mollieControlRoutes(deps: {
  store: MollieStore;
  faults: MollieFaults;
  notifier: MollieNotifier;
  site: { baseUrl: string };
  paymentJson(id: string): Record<string, unknown>;
  reset(): void;
}) {
  const { store, notifier, site, paymentJson, reset } = deps;
  const { state, paymentOf, createPayment, setStatus, scheduleStatuses, addRefund, setRefundStatus, addChargeback, reverseChargeback } = store;
  const { failNext, setLatency } = deps.faults;
  const { notify, notifyEvent } = notifier;

  async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
    const text = await c.req.text();
    let value: unknown = {};
    if (text.trim() !== '') {
      try {
        value = JSON.parse(text);
      } catch {
        throw new SandboxError('request body is not valid JSON');
      }
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new SandboxError(parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    }
    return parsed.data;
  }

  const control = new Hono<{ Bindings: HttpBindings }>();
  control.onError((error) => {
    const status = error instanceof SandboxError ? error.status : 500;
    return Response.json({ error: error.message }, { status });
  });
  control.post('/payments', async (c) => {
    const payment = createPayment(await jsonBody(c, createPaymentSchema));
    return c.json(renderPayment(payment, site.baseUrl), 201);
  });
  control.get('/payments/:id', (c) => c.json({ payment: paymentJson(c.req.param('id')), requestCount: state.requestCounts.get(c.req.param('id')) ?? 0 }));
  control.post('/payments/:id/status', async (c) => {
    const { status } = await jsonBody(c, z.object({ status: statusSchema }));
    return c.json(renderPayment(setStatus(c.req.param('id'), status), site.baseUrl));
  });
  control.post('/payments/:id/timeline', async (c) => {
    const { steps } = await jsonBody(c, z.object({ steps: timelineSchema }));
    return c.json(renderPayment(scheduleStatuses(c.req.param('id'), steps), site.baseUrl));
  });
  control.post('/payments/:id/refunds', async (c) => {
    const refund = addRefund(c.req.param('id'), await jsonBody(c, refundSchema));
    return c.json(renderRefund(refund, paymentOf(refund.paymentId), site.baseUrl), 201);
  });
  control.post('/refunds/:id/status', async (c) => {
    const { status } = await jsonBody(c, z.object({ status: refundStatusSchema }));
    const refund = setRefundStatus(c.req.param('id'), status);
    return c.json(renderRefund(refund, paymentOf(refund.paymentId), site.baseUrl));
  });
  control.post('/payments/:id/chargebacks', async (c) => {
    const chargeback = addChargeback(c.req.param('id'), await jsonBody(c, chargebackSchema));
    return c.json(renderChargeback(chargeback, site.baseUrl), 201);
  });
  control.post('/chargebacks/:id/reverse', (c) => c.json(renderChargeback(reverseChargeback(c.req.param('id')), site.baseUrl)));
  control.post('/payments/:id/webhook', async (c) => {
    const sendOptions = await jsonBody(c, sendOptionsSchema);
    return c.json(await notify(c.req.param('id'), sendOptions));
  });
  control.post('/payments/:id/event', async (c) => {
    const eventOptions = await jsonBody(c, eventOptionsSchema);
    return c.json(await notifyEvent(c.req.param('id'), eventOptions));
  });
  control.post('/faults', async (c) => {
    failNext(await jsonBody(c, faultSchema));
    return c.json({ faults: state.faults });
  });
  control.post('/latency', async (c) => {
    const { ms, paymentId } = await jsonBody(c, latencySchema);
    setLatency(ms, paymentId);
    return c.json({ latencyMs: state.latencyMs, paymentLatencyMs: Object.fromEntries(state.paymentLatencyMs) });
  });
  control.post('/down', async (c) => {
    const { mode } = await jsonBody(c, downSchema);
    state.down = mode;
    return c.json({ down: state.down });
  });
  control.get('/requests', (c) =>
    c.json({ counts: Object.fromEntries(state.requestCounts), recent: state.requests.slice(-100) }),
  );
  control.get('/requests/:id', (c) => c.json({ id: c.req.param('id'), count: state.requestCounts.get(c.req.param('id')) ?? 0 }));
  control.get('/deliveries', (c) => c.json({ deliveries: state.deliveries }));
  control.post('/reset', (c) => {
    reset();
    return c.json({ ok: true });
  });
  return control;
}
