/**
 * A fake GoCardless API on a real HTTP port, for tests, the local stack and load
 * runs. It answers the endpoints the gateway uses with GoCardless's envelopes
 * (docs/providers.md#gocardless-api-polling-and-recovery): `GET /payments/:id`,
 * `GET /events`, `GET /events/:id`, and can push signed webhooks like GoCardless
 * does (gocardless-webhook-sender.ts).
 *
 * Everything is scriptable twice: as methods on the returned handle (same process)
 * and as a JSON control API under `/__sandbox/...` (other processes). Control
 * bodies are the same objects the methods take.
 *
 * `GET /events` order: GoCardless's default order is not documented ([U], same
 * section). This sandbox lists NEWEST FIRST by default (option `eventOrder`
 * switches to oldest first). `after=<EV id>` continues past that event in list
 * order (towards older events when newest first) and `before=<EV id>` goes back
 * towards the start of the list. `meta.cursors.after` is null on the last page.
 * Events enter the list strictly in `created_at` order (the sandbox's clock never
 * repeats a millisecond), so paging with `created_at[gt]` and sorting locally, as
 * that section advises, sees every event exactly once per pass whichever
 * order is configured.
 *
 * Simplifications: every configured access token sees the same data (one creditor);
 * any status move is allowed, so tests can script what GoCardless would rarely do;
 * the rate limit is a fixed 60-second window. Fault injection (429, 5xx, latency,
 * down) applies to the API routes only, never to `/__sandbox`.
 *
 * The parts: state.ts (payments, events and the rules they follow), event-defaults.ts,
 * wire.ts (GoCardless's envelopes), gatekeeping.ts (faults, auth, version, rate limit),
 * webhooks.ts (what the sandbox pushes), api-routes.ts and control-routes.ts.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { z } from 'zod';
import type { GoCardlessPaymentStatus } from '../../providers/gocardless/mapping.js';
import type { GoCardlessEvent } from '../../providers/gocardless/webhook.js';
import { GOCARDLESS_SANDBOX_ORIGIN, type SendGoCardlessWebhooksReport } from '../gocardless-webhook-sender.js';
import { registerGoCardlessApiRoutes } from './api-routes.js';
import { registerGoCardlessControlRoutes } from './control-routes.js';
import { createGoCardlessSandboxCreditors, mountGoCardlessCreditorRoutes, type GoCardlessSandboxCreditors } from './creditors.js';
import { gatekeeping, type SandboxEnv } from './gatekeeping.js';
import {
  createGoCardlessStore,
  DEFAULT_RATE_LIMIT_PER_MINUTE,
  DEFAULT_SANDBOX_ACCESS_TOKEN,
  DEFAULT_SANDBOX_WEBHOOK_SECRET,
  SandboxError,
  type CreateEventInput,
  type CreatePaymentInput,
  type DeliverWebhooksInput,
  type GoCardlessSandboxState,
  type MandateEndInput,
  type RefundInput,
  type RefundStatusInput,
  type SandboxRefund,
  type SandboxFaults,
  type SandboxPayment,
  type StatusChangeOptions,
  type TimelineStep,
  type WebhookEndpointConfig,
} from './state.js';
import { createGoCardlessWebhooks } from './webhooks.js';
import { gcError, json } from './wire.js';

export interface GoCardlessSandboxOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  hostname?: string;
  accessTokens?: string[];
  webhookSecret?: string;
  eventOrder?: 'newest_first' | 'oldest_first';
  rateLimitPerMinute?: number;
  creditorId?: string;
  /** `Origin` on webhooks. */
  origin?: string;
  webhookEndpoint?: WebhookEndpointConfig;
}

export interface GoCardlessSandbox {
  readonly url: string;
  readonly port: number;
  /** The first configured token. */
  readonly accessToken: string;
  readonly webhookSecret: string;
  readonly state: GoCardlessSandboxState;
  /** More access tokens, each with its own creditor, and revocation. */
  readonly creditors: GoCardlessSandboxCreditors;
  close(): Promise<void>;
  /** Forgets payments, events, counts, faults and the webhook endpoint. */
  reset(): void;

  createPayment(input?: CreatePaymentInput): SandboxPayment;
  getPayment(id: string): SandboxPayment | undefined;
  /** Moves a payment and appends the matching event (unless `emitEvent: false`). */
  setPaymentStatus(id: string, status: GoCardlessPaymentStatus, options?: StatusChangeOptions): { payment: SandboxPayment; event: GoCardlessEvent | null };
  /** Status moves at fixed offsets from now; applied by timers and before every API answer. */
  scheduleTimeline(id: string, steps: TimelineStep[]): { dueAt: Date[] };
  /** Applies the timeline steps that are due. */
  tick(): void;
  refundPayment(id: string, input: RefundInput): { refundId: string; event: GoCardlessEvent };
  /** Moves a refund (created → pending_submission → submitted → paid | cancelled | bounced | funds_returned) and appends GoCardless's event for it, if it sends one. */
  setRefundStatus(refundId: string, input: RefundStatusInput): { refund: SandboxRefund; event: GoCardlessEvent | null };
  cancelMandate(mandateId: string, input?: MandateEndInput): GoCardlessEvent[];
  expireMandate(mandateId: string, input?: MandateEndInput): GoCardlessEvent[];
  /** A payout `paid` event, and each listed confirmed payment moved to paid_out with it as parent. */
  payOut(paymentIds: string[], payoutId?: string): { payoutId: string; events: GoCardlessEvent[] };
  /** Any event (mandates, subscriptions, refunds, payouts, billing_requests, ...). */
  createEvent(input: CreateEventInput): GoCardlessEvent;
  onEvent(listener: (event: GoCardlessEvent) => void): () => void;

  fetchCount(paymentId: string): number;
  rateLimitNext(count: number, options?: { resetMs?: number; header?: SandboxFaults['rateLimitHeader'] }): void;
  failNext(count: number, status?: number): void;
  setLatency(ms: number): void;
  setDown(mode: SandboxFaults['down']): void;
  setFaults(faults: Partial<SandboxFaults>): void;
  clearFaults(): void;

  /** Sends events to a webhook endpoint now, signed with `webhookSecret`. */
  deliverWebhooks(input?: DeliverWebhooksInput): Promise<SendGoCardlessWebhooksReport>;
  /** Pushes every new event to `url` automatically; null stops. */
  setWebhookEndpoint(config: WebhookEndpointConfig | null): void;
  /** Resolves once no automatic delivery is pending or in flight. */
  webhooksIdle(): Promise<void>;
}

export async function startGoCardlessSandbox(options: GoCardlessSandboxOptions = {}): Promise<GoCardlessSandbox> {
  const accessTokens = options.accessTokens && options.accessTokens.length > 0 ? [...options.accessTokens] : [DEFAULT_SANDBOX_ACCESS_TOKEN];
  const creditors = createGoCardlessSandboxCreditors(accessTokens, options.creditorId ?? 'CR000SANDBOX01');
  const webhookSecret = options.webhookSecret ?? DEFAULT_SANDBOX_WEBHOOK_SECRET;
  const origin = options.origin ?? GOCARDLESS_SANDBOX_ORIGIN;
  const lifetime = new AbortController();
  const store = createGoCardlessStore(
    {
      accessTokens,
      eventOrder: options.eventOrder ?? 'newest_first',
      rateLimitPerMinute: options.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
      creditorId: options.creditorId ?? 'CR000SANDBOX01',
      webhookEndpoint: options.webhookEndpoint ?? null,
    },
    { eventAppended: () => webhooks.scheduleAutoDelivery() },
  );
  const webhooks = createGoCardlessWebhooks(store, { webhookSecret, origin, signal: lifetime.signal });
  const { payments, fetchCounts, setFaults } = store;

  const app = new Hono<SandboxEnv>();

  app.onError((error, c) => {
    if (c.req.path.startsWith('/__sandbox')) {
      if (error instanceof SandboxError) return json(error.status, { error: error.message });
      if (error instanceof z.ZodError) return json(400, { error: z.prettifyError(error) });
      return json(500, { error: String(error) });
    }
    return gcError(500, 'gocardless', 'internal_server_error', 'Uh-oh! Something went wrong. Sandbox: ' + String(error));
  });

  // The API's gatekeeping, in the order a request meets it: faults, authentication,
  // version header, rate limit. The control API skips all of it.
  app.use('*', gatekeeping(store, lifetime));
  registerGoCardlessApiRoutes(app, store);
  mountGoCardlessCreditorRoutes(app, creditors, json);
  registerGoCardlessControlRoutes(app, store, webhooks);

  app.notFound((c) =>
    c.req.path.startsWith('/__sandbox')
      ? json(404, { error: `no sandbox control route ${c.req.method} ${c.req.path}` })
      : gcError(404, 'invalid_api_usage', 'path_not_found', `No route matches ${c.req.method} ${c.req.path}`),
  );

  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: options.hostname ?? '127.0.0.1' }, () => resolve(started as Server));
    started.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.hostname ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    accessToken: accessTokens[0]!,
    webhookSecret,
    state: store.view,
    creditors,
    close() {
      closed ??= new Promise<void>((resolve) => {
        lifetime.abort();
        store.clearTimers();
        server.close(() => resolve());
        // Keep-alive connections from fetch would otherwise hold close() open.
        server.closeAllConnections();
      });
      return closed;
    },
    reset: store.reset,
    createPayment: store.createPayment,
    getPayment: (id) => {
      const payment = payments.get(id);
      return payment ? structuredClone(payment) : undefined;
    },
    setPaymentStatus: store.setPaymentStatus,
    scheduleTimeline: store.scheduleTimeline,
    tick: store.tick,
    refundPayment: store.refundPayment,
    setRefundStatus: store.setRefundStatus,
    cancelMandate: (mandateId, input) => store.endMandate(mandateId, 'cancelled', input),
    expireMandate: (mandateId, input) => store.endMandate(mandateId, 'expired', input),
    payOut: store.payOut,
    createEvent: store.createEvent,
    onEvent(listener) {
      store.listeners.add(listener);
      return () => store.listeners.delete(listener);
    },
    fetchCount: (paymentId) => fetchCounts.get(paymentId) ?? 0,
    rateLimitNext(count, rateOptions = {}) {
      setFaults({
        rateLimitNext: count,
        ...(rateOptions.resetMs !== undefined && { rateLimitResetMs: rateOptions.resetMs }),
        ...(rateOptions.header !== undefined && { rateLimitHeader: rateOptions.header }),
      });
    },
    failNext(count, status = 500) {
      setFaults({ errorNext: count, errorStatus: status });
    },
    setLatency: (ms) => setFaults({ latencyMs: ms }),
    setDown: (mode) => setFaults({ down: mode }),
    setFaults,
    clearFaults: store.clearFaults,
    deliverWebhooks: webhooks.deliverWebhooks,
    setWebhookEndpoint: webhooks.setWebhookEndpoint,
    webhooksIdle: webhooks.webhooksIdle,
  };
}
