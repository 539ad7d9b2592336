/**
 * A fake Mollie API on a real HTTP port, speaking Mollie's wire format closely enough
 * that the official SDK parses it (hal+json everywhere, every required field present),
 * plus a scripting surface: TypeScript methods on the handle and the same verbs as a
 * JSON control API under /__sandbox so other processes can drive it.
 *
 * The parts: state.ts (payments and the rules they follow), wire.ts (Mollie's shapes),
 * faults.ts (errors and latency on request), webhooks.ts (what the sandbox sends),
 * api-routes.ts (/v2) and control-routes.ts (/__sandbox).
 */
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import type { WebhookDeliveryResult, WebhookSendOptions } from '../mollie-webhook-sender.js';
import { mollieApiRoutes } from './api-routes.js';
import { mollieControlRoutes } from './control-routes.js';
import { createMollieFaults } from './faults.js';
import {
  createMollieStore,
  SANDBOX_DEFAULT_API_KEY,
  type AddChargebackInput,
  type AddRefundInput,
  type CreateSandboxPaymentInput,
  type MollieSandboxState,
  type SandboxChargeback,
  type SandboxDownMode,
  type SandboxFault,
  type SandboxPayment,
  type SandboxPaymentStatus,
  type SandboxRefund,
  type SandboxRefundStatus,
} from './state.js';
import { createMollieNotifier } from './webhooks.js';
import { createMollieSandboxAccounts, mountMollieAccountRoutes, type MollieSandboxAccounts } from './accounts.js';
import { createMollieSandboxOAuth, type MollieSandboxOAuth, type MollieSandboxOAuthOptions } from './oauth.js';
import { halResponse, mollieError, renderPayment } from './wire.js';

export interface MollieSandboxOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  hostname?: string;
  /** Accepted bearer tokens; default [SANDBOX_DEFAULT_API_KEY]. */
  apiKeys?: string[];
  /**
   * Send classic webhooks to a payment's webhookUrl when its status changes (including
   * due timeline steps), a refund reaches processing/refunded/failed, or a chargeback
   * arrives, like Mollie. Off by default so tests decide when webhooks happen.
   */
  autoWebhooks?: boolean | WebhookSendOptions;
  /** The OAuth app (client id and secret, access token lifetime); defaults in oauth.ts. */
  oauth?: MollieSandboxOAuthOptions;
}

export interface MollieSandbox {
  /** e.g. http://127.0.0.1:41234 — pass as the client's apiUrl (no /v2). */
  url: string;
  port: number;
  state: MollieSandboxState;
  /** API keys and organization tokens: add, revoke, and who each belongs to. */
  accounts: MollieSandboxAccounts;
  /** The OAuth app: authorize, token endpoint, revocation, refresh counts. */
  oauth: MollieSandboxOAuth;
  close(): Promise<void>;
  createPayment(input?: CreateSandboxPaymentInput): SandboxPayment;
  setStatus(paymentId: string, status: SandboxPaymentStatus): SandboxPayment;
  /** Replace the payment's timeline: each step applies once `atMs` has passed from now. */
  scheduleStatuses(paymentId: string, steps: Array<{ atMs: number; status: SandboxPaymentStatus }>): SandboxPayment;
  addRefund(paymentId: string, input?: AddRefundInput): SandboxRefund;
  setRefundStatus(refundId: string, status: SandboxRefundStatus): SandboxRefund;
  addChargeback(paymentId: string, input?: AddChargebackInput): SandboxChargeback;
  reverseChargeback(chargebackId: string): SandboxChargeback;
  failNext(fault: SandboxFault): void;
  /** Delay before answering: every /v2 request, or only GET /v2/payments/:id for one id. */
  setLatency(ms: number, paymentId?: string): void;
  setDown(mode: SandboxDownMode): void;
  requestCount(paymentId: string): number;
  /** The bearer tokens that asked GET /v2/payments/:id for the payment, in order. */
  fetchedBy(paymentId: string): string[];
  /** The payment exactly as GET /v2/payments/:id would return it now. */
  paymentJson(paymentId: string): Record<string, unknown>;
  /** Send the classic webhook (id=tr_...) to the payment's webhookUrl (or `url`) now. */
  notify(paymentId: string, options?: WebhookSendOptions & { url?: string }): Promise<WebhookDeliveryResult>;
  /** Send a signed next-gen event for the payment (type default payment.<status>). */
  notifyEvent(
    paymentId: string,
    options: WebhookSendOptions & { url?: string; secret: string; mode?: 'snapshot' | 'simple'; type?: string; prefixSignature?: boolean },
  ): Promise<WebhookDeliveryResult & { body: string }>;
  /** Forget payments, faults, latency, down mode and counters. */
  reset(): void;
}

export async function startMollieSandbox(options: MollieSandboxOptions = {}): Promise<MollieSandbox> {
  const autoWebhooks: WebhookSendOptions | null =
    options.autoWebhooks === true ? {} : options.autoWebhooks ? options.autoWebhooks : null;
  const site = { baseUrl: '' };
  const accounts = createMollieSandboxAccounts(options.apiKeys ?? [SANDBOX_DEFAULT_API_KEY]);
  const store = createMollieStore(accounts, {
    changed: (payment) => notifier.autoNotify(payment),
    timelineSet: (payment) => notifier.armTimeline(payment),
  });
  const { state } = store;
  const faults = createMollieFaults(state);
  const paymentJson = (paymentId: string) => renderPayment(store.paymentOf(paymentId), site.baseUrl);
  const notifier = createMollieNotifier({ paymentOf: store.paymentOf, paymentJson, deliveries: state.deliveries, autoWebhooks });

  function reset(): void {
    notifier.clearTimers();
    store.clear();
  }

  const app = new Hono<{ Bindings: HttpBindings }>();
  app.route('/', mollieApiRoutes(store, faults, site));
  mountMollieAccountRoutes(app, accounts, { hal: halResponse, error: mollieError, baseUrl: () => site.baseUrl });
  const oauth = createMollieSandboxOAuth(accounts, options.oauth);
  oauth.mount(app, { error: mollieError });
  app.route('/__sandbox', mollieControlRoutes({ store, faults, notifier, site, paymentJson, reset }));

  app.notFound((c) => (c.req.path.startsWith('/__sandbox') ? c.json({ error: `no control route ${c.req.method} ${c.req.path}` }, 404) : mollieError(404, `No route ${c.req.method} ${c.req.path}`)));
  app.onError((error) => mollieError(500, error.message));

  // overrideGlobalObjects: false, or @hono/node-server swaps the process-wide Request and
  // Response classes, which would leak into everything else running in a test process.
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const started = serve(
      { fetch: app.fetch, port: options.port ?? 0, hostname: options.hostname ?? '127.0.0.1', overrideGlobalObjects: false },
      () => resolve(started),
    );
    started.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  site.baseUrl = `http://${host}:${address.port}`;
  let closing: Promise<void> | null = null;
  function close(): Promise<void> {
    closing ??= (async () => {
      notifier.stop();
      faults.wakeAll();
      await notifier.settled();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
    })();
    return closing;
  }

  return {
    url: site.baseUrl,
    port: address.port,
    state,
    accounts,
    oauth: oauth.handle,
    close,
    createPayment: store.createPayment,
    setStatus: store.setStatus,
    scheduleStatuses: store.scheduleStatuses,
    addRefund: store.addRefund,
    setRefundStatus: store.setRefundStatus,
    addChargeback: store.addChargeback,
    reverseChargeback: store.reverseChargeback,
    failNext: faults.failNext,
    setLatency: faults.setLatency,
    setDown: (mode) => {
      state.down = mode;
    },
    requestCount: (paymentId) => state.requestCounts.get(paymentId) ?? 0,
    fetchedBy: (paymentId) => [...(state.fetchedBy.get(paymentId) ?? [])],
    paymentJson,
    notify: notifier.notify,
    notifyEvent: notifier.notifyEvent,
    reset,
  };
}
