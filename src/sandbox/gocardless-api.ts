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
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { GOCARDLESS_API_VERSION } from '../providers/gocardless/client.js';
import { GOCARDLESS_PAYMENT_STATUSES, type GoCardlessPaymentStatus } from '../providers/gocardless/mapping.js';
import type { GoCardlessEvent } from '../providers/gocardless/webhook.js';
import { createGoCardlessSandboxCreditors, mountGoCardlessCreditorRoutes, type GoCardlessSandboxCreditors } from './gocardless-creditors.js';
import {
  GOCARDLESS_SANDBOX_ORIGIN,
  sendGoCardlessWebhooks,
  type SendGoCardlessWebhooksOptions,
  type SendGoCardlessWebhooksReport,
  type WebhookBatchReport,
} from './gocardless-webhook-sender.js';

export const DEFAULT_SANDBOX_ACCESS_TOKEN = 'sandbox_gocardless_access_token';
export const DEFAULT_SANDBOX_WEBHOOK_SECRET = 'sandbox_gocardless_webhook_secret';
/** [S] docs/providers.md#gocardless-api-polling-and-recovery: 1,000 requests a minute. */
const DEFAULT_RATE_LIMIT_PER_MINUTE = 1000;
const MAX_LOGGED_REQUESTS = 2000;

// ---------------------------------------------------------------------------
// Types and inputs (the zod schemas double as the control API's body schemas)
// ---------------------------------------------------------------------------

export interface SandboxPayment {
  id: string;
  created_at: string;
  charge_date: string;
  amount: number;
  amount_refunded: number;
  currency: string;
  description: string | null;
  reference: string | null;
  status: GoCardlessPaymentStatus;
  scheme: string;
  metadata: Record<string, string>;
  retry_if_possible: boolean;
  faster_ach: boolean;
  fx: { fx_currency: string; fx_amount: number | null; exchange_rate: string | null; estimated_exchange_rate: string | null };
  links: { mandate: string; creditor: string; payout?: string; subscription?: string };
}

const paymentStatusSchema = z.enum(GOCARDLESS_PAYMENT_STATUSES);

export const createPaymentInputSchema = z.object({
  id: z.string().regex(/^PM[0-9A-Za-z]+$/, 'payment ids start with PM').optional(),
  amount: z.number().int().positive().optional(),
  currency: z.string().regex(/^[A-Z]{3}$/).optional(),
  status: paymentStatusSchema.optional(),
  scheme: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  mandate: z.string().optional(),
  subscription: z.string().optional(),
  chargeDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
  description: z.string().nullable().optional(),
  reference: z.string().nullable().optional(),
  /** Append the `created` event (default true). */
  emitEvent: z.boolean().optional(),
});
export type CreatePaymentInput = z.infer<typeof createPaymentInputSchema>;

export const statusChangeOptionsSchema = z.object({
  /** Defaults follow the transition: submitted, confirmed, paid_out, failed, charged_back, chargeback_cancelled, resubmission_requested, ... */
  action: z.string().min(1).optional(),
  cause: z.string().min(1).optional(),
  origin: z.enum(['bank', 'api', 'gocardless', 'customer', 'payer']).optional(),
  description: z.string().optional(),
  reasonCode: z.string().optional(),
  willAttemptRetry: z.boolean().optional(),
  notRetriedReason: z.enum(['failure_filter_applied', 'other']).optional(),
  parentEvent: z.string().optional(),
  payoutId: z.string().optional(),
  /** Extra `details` fields, merged last. */
  details: z.record(z.string(), z.unknown()).optional(),
  /** Append the event (default true); false changes the status silently, like a missed webhook. */
  emitEvent: z.boolean().optional(),
});
export type StatusChangeOptions = z.infer<typeof statusChangeOptionsSchema>;

export const timelineStepSchema = statusChangeOptionsSchema.extend({
  /** Milliseconds after the timeline was scheduled. */
  afterMs: z.number().int().nonnegative(),
  status: paymentStatusSchema,
});
export type TimelineStep = z.infer<typeof timelineStepSchema>;

export const createEventInputSchema = z.object({
  resourceType: z.string().min(1),
  action: z.string().min(1),
  /** Ids of the resources involved; when omitted, a fresh id of the resource type is made up. */
  links: z.record(z.string(), z.string()).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  resourceMetadata: z.record(z.string(), z.unknown()).optional(),
});
export type CreateEventInput = z.infer<typeof createEventInputSchema>;

export const refundInputSchema = z.object({
  amount: z.number().int().positive(),
  reference: z.string().optional(),
});
export type RefundInput = z.infer<typeof refundInputSchema>;

export const mandateEndInputSchema = z.object({
  cause: z.string().optional(),
  origin: z.enum(['bank', 'api', 'gocardless', 'customer', 'payer']).optional(),
  /** Cancel the mandate's payments that were not submitted yet, as GoCardless does (default true). */
  cancelPayments: z.boolean().optional(),
});
export type MandateEndInput = z.infer<typeof mandateEndInputSchema>;

export const payoutInputSchema = z.object({
  paymentIds: z.array(z.string()).min(1),
  payoutId: z.string().optional(),
});

export interface SandboxFaults {
  /** The next N API requests answer 429. */
  rateLimitNext: number;
  /** How far ahead `ratelimit-reset` points on those 429s. */
  rateLimitResetMs: number;
  /** Which header carries the reset on forced 429s. */
  rateLimitHeader: 'ratelimit-reset' | 'retry-after' | 'both';
  /** The next N API requests answer `errorStatus`. */
  errorNext: number;
  errorStatus: number;
  /** Added before every API answer. */
  latencyMs: number;
  /** 'reset': connections are dropped without an answer; 'unavailable': 503 with an HTML page, as a proxy would. */
  down: false | 'reset' | 'unavailable';
}

export const faultsInputSchema = z.object({
  rateLimitNext: z.number().int().nonnegative().optional(),
  rateLimitResetMs: z.number().int().nonnegative().optional(),
  rateLimitHeader: z.enum(['ratelimit-reset', 'retry-after', 'both']).optional(),
  errorNext: z.number().int().nonnegative().optional(),
  errorStatus: z.number().int().min(400).max(599).optional(),
  latencyMs: z.number().int().nonnegative().optional(),
  down: z.union([z.literal(false), z.literal('reset'), z.literal('unavailable')]).optional(),
});

const NO_FAULTS: SandboxFaults = {
  rateLimitNext: 0,
  rateLimitResetMs: 1000,
  rateLimitHeader: 'ratelimit-reset',
  errorNext: 0,
  errorStatus: 500,
  latencyMs: 0,
  down: false,
};

/** Sender options the sandbox passes through (url, secret and events are its own). */
export type SandboxWebhookOptions = Pick<
  SendGoCardlessWebhooksOptions,
  'batchSize' | 'order' | 'duplicateRate' | 'duplicateEventIds' | 'retry' | 'concurrency' | 'timeoutMs' | 'signWith' | 'omitSignature' | 'random' | 'fetcher'
>;

export interface DeliverWebhooksInput extends SandboxWebhookOptions {
  /** Defaults to the configured endpoint's url. */
  url?: string;
  /** Exactly these events (again, even if sent before). Default: events never sent yet. */
  eventIds?: string[];
  /** Every event so far, sent or not. */
  all?: boolean;
}

export interface WebhookEndpointConfig extends SandboxWebhookOptions {
  url: string;
  /** New events are gathered this long before a webhook goes out (default 10 ms), so bursts batch up. */
  debounceMs?: number;
}

const webhookOptionsSchema = z.object({
  batchSize: z.number().int().min(1).max(250).optional(),
  order: z.enum(['as_given', 'reverse', 'shuffle']).optional(),
  duplicateRate: z.number().min(0).max(1).optional(),
  duplicateEventIds: z.array(z.string()).optional(),
  retry: z.union([z.literal(false), z.object({ delaysMs: z.array(z.number().nonnegative()), scale: z.number().nonnegative().optional() })]).optional(),
  concurrency: z.number().int().min(1).optional(),
  timeoutMs: z.number().int().positive().optional(),
  signWith: z.string().optional(),
  omitSignature: z.boolean().optional(),
});
const deliverInputSchema = webhookOptionsSchema.extend({
  url: z.string().url().optional(),
  eventIds: z.array(z.string()).optional(),
  all: z.boolean().optional(),
});
const endpointInputSchema = webhookOptionsSchema.extend({
  url: z.string().url(),
  debounceMs: z.number().int().nonnegative().optional(),
});

export interface SandboxRequestRecord {
  at: string;
  method: string;
  path: string;
  status: number | null;
  /** Which of the configured tokens was presented (its index), null if none matched. */
  tokenIndex: number | null;
  version: string | null;
}

export interface GoCardlessSandboxState {
  readonly payments: ReadonlyMap<string, SandboxPayment>;
  /** Every event, oldest first. */
  readonly events: readonly GoCardlessEvent[];
  /** `GET /payments/:id` requests per id, whatever they were answered with. */
  readonly fetchCounts: ReadonlyMap<string, number>;
  readonly requests: readonly SandboxRequestRecord[];
  readonly faults: Readonly<SandboxFaults>;
  readonly webhookDeliveries: readonly WebhookBatchReport[];
  readonly webhookEndpoint: Readonly<WebhookEndpointConfig> | null;
  readonly pendingTimelineSteps: number;
}

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

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------
// Payment event defaults per transition
// ---------------------------------------------------------------------------

interface EventDefaults {
  action: string;
  cause: string;
  origin: string;
  description: string;
  fromBank?: boolean;
}

function transitionDefaults(from: GoCardlessPaymentStatus, to: GoCardlessPaymentStatus): EventDefaults {
  switch (to) {
    case 'pending_customer_approval':
      return { action: 'created', cause: 'payment_created', origin: 'api', description: 'Payment created via the API.' };
    case 'pending_submission':
      if (from === 'failed' || from === 'charged_back' || from === 'cancelled') {
        return { action: 'resubmission_requested', cause: 'payment_retried', origin: 'api', description: 'An attempt to retry the payment was requested.' };
      }
      if (from === 'pending_customer_approval') {
        return { action: 'customer_approval_granted', cause: 'customer_approval_granted', origin: 'customer', description: 'The customer granted approval for this payment.' };
      }
      return { action: 'created', cause: 'payment_created', origin: 'api', description: 'Payment created via the API.' };
    case 'submitted':
      return { action: 'submitted', cause: 'payment_submitted', origin: 'gocardless', description: 'Payment submitted to the banks. As a result, it can no longer be cancelled.' };
    case 'confirmed':
    case 'paid_out':
      if (from === 'charged_back') {
        return { action: 'chargeback_cancelled', cause: 'payment_chargeback_cancelled', origin: 'bank', description: "The customer's bank has cancelled the chargeback request.", fromBank: true };
      }
      return to === 'confirmed'
        ? { action: 'confirmed', cause: 'payment_confirmed', origin: 'gocardless', description: 'Enough time has passed since the payment was submitted for the banks to return an error, so this payment is now confirmed.' }
        : { action: 'paid_out', cause: 'payment_paid_out', origin: 'gocardless', description: 'The payment has been paid out by GoCardless.' };
    case 'cancelled':
      return { action: 'cancelled', cause: 'payment_cancelled', origin: 'api', description: 'The payment was cancelled.' };
    case 'customer_approval_denied':
      return { action: 'customer_approval_denied', cause: 'customer_approval_denied', origin: 'customer', description: 'The customer denied approval for this payment.' };
    case 'failed':
      return { action: 'failed', cause: 'insufficient_funds', origin: 'bank', description: "The customer's account had insufficient funds to make this payment.", fromBank: true };
    case 'charged_back':
      return { action: 'charged_back', cause: 'authorisation_disputed', origin: 'bank', description: 'The customer has disputed that the amount taken from their account was authorised.', fromBank: true };
    default: {
      const unreachable: never = to;
      throw new SandboxError(400, `unknown status ${String(unreachable)}`);
    }
  }
}

const SCHEME_BY_CURRENCY: Record<string, string> = {
  GBP: 'bacs', EUR: 'sepa_core', USD: 'ach', SEK: 'autogiro', DKK: 'betalingsservice', AUD: 'becs', NZD: 'becs_nz', CAD: 'pad',
};

/** Invented ids for `createEvent` when no links are given. */
const LINK_FOR_RESOURCE: Record<string, [string, string]> = {
  payments: ['payment', 'PM'],
  mandates: ['mandate', 'MD'],
  subscriptions: ['subscription', 'SB'],
  refunds: ['refund', 'RF'],
  payouts: ['payout', 'PO'],
  billing_requests: ['billing_request', 'BRQ'],
  customers: ['customer', 'CU'],
  creditors: ['creditor', 'CR'],
  instalment_schedules: ['instalment_schedule', 'IS'],
};

/** Single-resource filters of `GET /events` (docs/providers.md#gocardless-api-polling-and-recovery). */
const EVENT_LINK_FILTERS = [
  'payment', 'mandate', 'refund', 'payout', 'subscription', 'billing_request', 'creditor', 'customer',
  'instalment_schedule', 'parent_event', 'payer_authorisation', 'scheme_identifier', 'export',
] as const;

// ---------------------------------------------------------------------------
// The sandbox
// ---------------------------------------------------------------------------

type SandboxEnv = { Bindings: HttpBindings; Variables: { rateLimitHeaders: Record<string, string> | null; requestRecord: SandboxRequestRecord | null } };

export async function startGoCardlessSandbox(options: GoCardlessSandboxOptions = {}): Promise<GoCardlessSandbox> {
  const accessTokens = options.accessTokens && options.accessTokens.length > 0 ? [...options.accessTokens] : [DEFAULT_SANDBOX_ACCESS_TOKEN];
  const webhookSecret = options.webhookSecret ?? DEFAULT_SANDBOX_WEBHOOK_SECRET;
  const eventOrder = options.eventOrder ?? 'newest_first';
  const rateLimitPerMinute = options.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE;
  const creditorId = options.creditorId ?? 'CR000SANDBOX01';
  const creditors = createGoCardlessSandboxCreditors(accessTokens, creditorId);
  const origin = options.origin ?? GOCARDLESS_SANDBOX_ORIGIN;
  const lifetime = new AbortController();

  // Ids look like GoCardless's (prefix + 12 upper-case characters); the per-instance
  // tag keeps two sandboxes in one test run from minting the same id.
  const instanceTag = randomBytes(3).toString('hex').toUpperCase();
  let idCounter = 0;
  const newId = (prefix: string) => `${prefix}${instanceTag}${(++idCounter).toString(36).toUpperCase().padStart(6, '0')}`;

  let lastTimestamp = 0;
  /** Strictly increasing, so created_at order is append order and never ties. */
  const nextTimestamp = () => {
    lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
    return new Date(lastTimestamp);
  };

  const payments = new Map<string, SandboxPayment>();
  const events: GoCardlessEvent[] = [];
  const eventIndex = new Map<string, number>();
  const attempted = new Set<string>();
  const fetchCounts = new Map<string, number>();
  const requests: SandboxRequestRecord[] = [];
  const webhookDeliveries: WebhookBatchReport[] = [];
  let faults: SandboxFaults = { ...NO_FAULTS };
  let webhookEndpoint: WebhookEndpointConfig | null = options.webhookEndpoint ?? null;
  const listeners = new Set<(event: GoCardlessEvent) => void>();
  const timers = new Set<NodeJS.Timeout>();
  interface PendingStep { dueAt: number; seq: number; paymentId: string; step: TimelineStep }
  let pendingSteps: PendingStep[] = [];
  let stepSeq = 0;
  let rateWindow = { startedAt: 0, count: 0 };

  function later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    timers.add(timer);
  }

  function appendEvent(event: GoCardlessEvent): GoCardlessEvent {
    eventIndex.set(event.id, events.length);
    events.push(event);
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // A test's listener failing must not break the sandbox.
      }
    }
    if (webhookEndpoint) scheduleAutoDelivery();
    return event;
  }

  function requirePayment(id: string): SandboxPayment {
    const payment = payments.get(id);
    if (!payment) throw new SandboxError(404, `no sandbox payment ${id}`);
    return payment;
  }

  function paymentEvent(payment: SandboxPayment, defaults: EventDefaults, options: StatusChangeOptions): GoCardlessEvent {
    const details: Record<string, unknown> = {
      origin: options.origin ?? defaults.origin,
      cause: options.cause ?? defaults.cause,
      description: options.description ?? defaults.description,
    };
    if (defaults.fromBank || details.origin === 'bank') {
      details.scheme = payment.scheme;
      details.reason_code = options.reasonCode ?? (defaults.action === 'failed' ? 'AM04' : 'MD06');
    } else if (options.reasonCode !== undefined) {
      details.reason_code = options.reasonCode;
    }
    if ((options.action ?? defaults.action) === 'failed') {
      details.will_attempt_retry = options.willAttemptRetry ?? false;
      if (!details.will_attempt_retry) details.not_retried_reason = options.notRetriedReason ?? 'other';
    }
    Object.assign(details, options.details);
    const links: Record<string, string> = { payment: payment.id };
    if (options.parentEvent) links.parent_event = options.parentEvent;
    if (payment.links.payout && (options.action ?? defaults.action) === 'paid_out') links.payout = payment.links.payout;
    return appendEvent({
      id: newId('EV'),
      created_at: nextTimestamp().toISOString(),
      resource_type: 'payments',
      action: options.action ?? defaults.action,
      links,
      details,
      metadata: {},
      resource_metadata: { ...payment.metadata },
    });
  }

  function createPayment(input: CreatePaymentInput = {}): SandboxPayment {
    const parsed = createPaymentInputSchema.parse(input);
    const id = parsed.id ?? newId('PM');
    if (payments.has(id)) throw new SandboxError(409, `sandbox payment ${id} already exists`);
    const currency = parsed.currency ?? 'GBP';
    const createdAt = nextTimestamp();
    const payment: SandboxPayment = {
      id,
      created_at: createdAt.toISOString(),
      charge_date: parsed.chargeDate ?? new Date(createdAt.getTime() + 3 * 86_400_000).toISOString().slice(0, 10),
      amount: parsed.amount ?? 1000,
      amount_refunded: 0,
      currency,
      description: parsed.description ?? null,
      reference: parsed.reference ?? null,
      status: parsed.status ?? 'pending_submission',
      scheme: parsed.scheme ?? SCHEME_BY_CURRENCY[currency] ?? 'sepa_core',
      metadata: { ...parsed.metadata },
      retry_if_possible: true,
      faster_ach: false,
      fx: { fx_currency: currency, fx_amount: null, exchange_rate: null, estimated_exchange_rate: null },
      links: {
        mandate: parsed.mandate ?? newId('MD'),
        creditor: creditorId,
        ...(parsed.subscription !== undefined && { subscription: parsed.subscription }),
      },
    };
    payments.set(id, payment);
    if (parsed.emitEvent !== false) {
      paymentEvent(payment, { action: 'created', cause: 'payment_created', origin: 'api', description: 'Payment created via the API.' }, {});
    }
    return structuredClone(payment);
  }

  function setPaymentStatus(id: string, status: GoCardlessPaymentStatus, rawOptions: StatusChangeOptions = {}) {
    const options = statusChangeOptionsSchema.parse(rawOptions);
    paymentStatusSchema.parse(status);
    const payment = requirePayment(id);
    const defaults = transitionDefaults(payment.status, status);
    payment.status = status;
    if (status === 'paid_out') payment.links.payout = options.payoutId ?? payment.links.payout ?? newId('PO');
    const event = options.emitEvent === false ? null : paymentEvent(payment, defaults, options);
    return { payment: structuredClone(payment), event };
  }

  function tick(): void {
    const now = Date.now();
    const due = pendingSteps.filter((pending) => pending.dueAt <= now).sort((a, b) => a.dueAt - b.dueAt || a.seq - b.seq);
    pendingSteps = pendingSteps.filter((pending) => pending.dueAt > now);
    for (const { paymentId, step } of due) {
      if (!payments.has(paymentId)) continue; // reset() since it was scheduled
      const { afterMs: _afterMs, status, ...stepOptions } = step;
      setPaymentStatus(paymentId, status, stepOptions);
    }
  }

  /**
   * A step's timer. It can fire a millisecond before Date.now() reaches the step's dueAt,
   * and the step would then wait for a timer that has already gone: so it arms one more
   * for the earliest step left. (Not in tick() itself: every API call ticks.)
   */
  function timedTick(): void {
    tick();
    if (pendingSteps.length > 0) later(Math.max(1, Math.min(...pendingSteps.map((pending) => pending.dueAt)) - Date.now()), timedTick);
  }

  function scheduleTimeline(id: string, rawSteps: TimelineStep[]): { dueAt: Date[] } {
    requirePayment(id);
    const steps = z.array(timelineStepSchema).parse(rawSteps);
    const start = Date.now();
    const dueAt: Date[] = [];
    for (const step of steps) {
      const pending = { dueAt: start + step.afterMs, seq: ++stepSeq, paymentId: id, step };
      pendingSteps.push(pending);
      dueAt.push(new Date(pending.dueAt));
      later(step.afterMs, timedTick);
    }
    return { dueAt };
  }

  function createEvent(rawInput: CreateEventInput): GoCardlessEvent {
    const input = createEventInputSchema.parse(rawInput);
    let links = input.links;
    if (!links) {
      const known = LINK_FOR_RESOURCE[input.resourceType];
      links = known ? { [known[0]]: newId(known[1]) } : {};
    }
    const linkedPayment = links.payment ? payments.get(links.payment) : undefined;
    const resourceMetadata = input.resourceMetadata ?? (input.resourceType === 'payments' && linkedPayment ? { ...linkedPayment.metadata } : {});
    return appendEvent({
      id: newId('EV'),
      created_at: nextTimestamp().toISOString(),
      resource_type: input.resourceType,
      action: input.action,
      links: { ...links },
      details: { origin: 'api', cause: `${input.resourceType.replace(/s$/, '')}_${input.action}`, description: `Sandbox ${input.resourceType} ${input.action}.`, ...input.details },
      metadata: { ...input.metadata },
      resource_metadata: resourceMetadata,
    });
  }

  function refundPayment(id: string, rawInput: RefundInput): { refundId: string; event: GoCardlessEvent } {
    const input = refundInputSchema.parse(rawInput);
    const payment = requirePayment(id);
    if (payment.amount_refunded + input.amount > payment.amount) {
      throw new SandboxError(422, `refund of ${input.amount} exceeds the ${payment.amount - payment.amount_refunded} left on ${id}`);
    }
    payment.amount_refunded += input.amount;
    const refundId = newId('RF');
    const event = appendEvent({
      id: newId('EV'),
      created_at: nextTimestamp().toISOString(),
      resource_type: 'refunds',
      action: 'created',
      links: { refund: refundId, payment: payment.id, mandate: payment.links.mandate },
      details: { origin: 'api', cause: 'refund_created', description: 'The refund has been created, and will be submitted in the next batch.', amount: input.amount, currency: payment.currency },
      metadata: {},
      resource_metadata: input.reference ? { reference: input.reference } : {},
    });
    return { refundId, event };
  }

  function endMandate(mandateId: string, action: 'cancelled' | 'expired', rawInput: MandateEndInput = {}): GoCardlessEvent[] {
    const input = mandateEndInputSchema.parse(rawInput);
    const mandateEvent = appendEvent({
      id: newId('EV'),
      created_at: nextTimestamp().toISOString(),
      resource_type: 'mandates',
      action,
      links: { mandate: mandateId },
      details:
        action === 'cancelled'
          ? { origin: input.origin ?? 'bank', cause: input.cause ?? 'bank_account_closed', description: 'The mandate was cancelled at a bank branch.' }
          : { origin: input.origin ?? 'gocardless', cause: input.cause ?? 'mandate_expired', description: 'The mandate expired because no payments were collected against it for a dormancy period.' },
      metadata: {},
      resource_metadata: {},
    });
    const produced = [mandateEvent];
    if (input.cancelPayments !== false) {
      for (const payment of payments.values()) {
        if (payment.links.mandate !== mandateId) continue;
        if (payment.status !== 'pending_submission' && payment.status !== 'pending_customer_approval') continue;
        const { event } = setPaymentStatus(payment.id, 'cancelled', {
          cause: action === 'cancelled' ? 'mandate_cancelled' : 'mandate_expired',
          origin: mandateEvent.details.origin as StatusChangeOptions['origin'],
          description: `The mandate for this payment was ${action}.`,
          parentEvent: mandateEvent.id,
        });
        if (event) produced.push(event);
      }
    }
    return produced;
  }

  function payOut(paymentIds: string[], payoutId?: string): { payoutId: string; events: GoCardlessEvent[] } {
    const input = payoutInputSchema.parse({ paymentIds, payoutId });
    const payoutPayments = input.paymentIds.map(requirePayment);
    const id = input.payoutId ?? newId('PO');
    const payoutEvent = appendEvent({
      id: newId('EV'),
      created_at: nextTimestamp().toISOString(),
      resource_type: 'payouts',
      action: 'paid',
      links: { payout: id },
      details: { origin: 'gocardless', cause: 'payout_paid', description: 'GoCardless has transferred the payout to the creditor\'s bank account.' },
      metadata: {},
      resource_metadata: {},
    });
    const produced = [payoutEvent];
    for (const payment of payoutPayments) {
      if (payment.status !== 'confirmed') continue;
      const { event } = setPaymentStatus(payment.id, 'paid_out', { payoutId: id, parentEvent: payoutEvent.id });
      if (event) produced.push(event);
    }
    return { payoutId: id, events: produced };
  }

  // -- webhooks ---------------------------------------------------------------

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
    if (deliveryScheduled || !webhookEndpoint) return;
    deliveryScheduled = true;
    later(webhookEndpoint.debounceMs ?? 10, () => {
      deliveryScheduled = false;
      const endpoint = webhookEndpoint;
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
    const url = explicitUrl ?? webhookEndpoint?.url;
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

  // -- HTTP -------------------------------------------------------------------

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

  const newRequestId = () => randomBytes(12).toString('hex').toUpperCase();

  /**
   * GoCardless's error envelope (docs/providers.md#gocardless-api-polling-and-recovery;
   * gocardless-nodejs issue #196 for missing_version_header).
   */
  const gcError = (status: number, type: string, reason: string, message: string, extra: Record<string, unknown> = {}) =>
    json(status, {
      error: {
        message,
        documentation_url: `https://developer.gocardless.com/api-reference#${reason}`,
        type,
        request_id: newRequestId(),
        code: status,
        errors: [{ reason, message, ...extra }],
      },
    });

  const httpDate = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000).toUTCString();

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
  app.use('*', async (c, next) => {
    if (c.req.path.startsWith('/__sandbox')) return next();
    const record: SandboxRequestRecord = {
      at: new Date().toISOString(),
      method: c.req.method,
      path: c.req.path + new URL(c.req.url).search,
      status: null,
      tokenIndex: null,
      version: c.req.header('gocardless-version') ?? null,
    };
    requests.push(record);
    if (requests.length > MAX_LOGGED_REQUESTS) requests.splice(0, requests.length - MAX_LOGGED_REQUESTS);
    const paymentMatch = /^\/payments\/([^/]+)$/.exec(c.req.path);
    if (paymentMatch && c.req.method === 'GET') {
      let id = paymentMatch[1]!;
      try {
        id = decodeURIComponent(id);
      } catch {
        // counted under the raw segment
      }
      fetchCounts.set(id, (fetchCounts.get(id) ?? 0) + 1);
    }

    if (faults.latencyMs > 0) {
      try {
        await sleep(faults.latencyMs, undefined, { signal: lifetime.signal });
      } catch {
        // closing
      }
    }
    tick();

    if (faults.down === 'reset') {
      c.env.incoming.socket.destroy();
      return RESPONSE_ALREADY_SENT;
    }

    const now = Date.now();
    if (now - rateWindow.startedAt >= 60_000) rateWindow = { startedAt: now, count: 0 };
    rateWindow.count += 1;
    const rateLimitHeaders: Record<string, string> = {
      'ratelimit-limit': String(rateLimitPerMinute),
      'ratelimit-remaining': String(Math.max(0, rateLimitPerMinute - rateWindow.count)),
      'ratelimit-reset': httpDate(rateWindow.startedAt + 60_000),
    };

    let response: Response | undefined;
    if (faults.down === 'unavailable') {
      response = new Response('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>', { status: 503, headers: { 'content-type': 'text/html' } });
    } else if (faults.errorNext > 0) {
      faults.errorNext -= 1;
      response = gcError(faults.errorStatus, 'gocardless', 'internal_server_error', 'Uh-oh! Something went wrong. We have been notified and will look into it.');
    } else if (faults.rateLimitNext > 0) {
      faults.rateLimitNext -= 1;
      const resetAt = now + faults.rateLimitResetMs;
      rateLimitHeaders['ratelimit-remaining'] = '0';
      if (faults.rateLimitHeader === 'retry-after') delete rateLimitHeaders['ratelimit-reset'];
      else rateLimitHeaders['ratelimit-reset'] = httpDate(resetAt);
      if (faults.rateLimitHeader !== 'ratelimit-reset') rateLimitHeaders['retry-after'] = String(Math.ceil(faults.rateLimitResetMs / 1000));
      response = gcError(429, 'invalid_api_usage', 'rate_limit_exceeded', 'Rate limit exceeded');
    } else {
      const authorization = c.req.header('authorization');
      const token = authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
      const tokenIndex = token === undefined ? -1 : accessTokens.indexOf(token);
      if (!authorization) {
        response = gcError(401, 'invalid_api_usage', 'missing_authorization_header', 'Authorization header missing');
      } else if (tokenIndex < 0) {
        response = gcError(401, 'invalid_api_usage', 'access_token_not_found', 'Access token not found');
      } else {
        record.tokenIndex = tokenIndex;
        if (record.version === null) {
          response = gcError(400, 'invalid_api_usage', 'missing_version_header', "Missing 'GoCardless-Version' header");
        } else if (record.version !== GOCARDLESS_API_VERSION) {
          // [U] the real reason code for an unknown version.
          response = gcError(400, 'invalid_api_usage', 'version_not_found', `Version ${JSON.stringify(record.version)} not found; this sandbox speaks ${GOCARDLESS_API_VERSION}`);
        } else if (rateWindow.count > rateLimitPerMinute) {
          rateLimitHeaders['ratelimit-remaining'] = '0';
          response = gcError(429, 'invalid_api_usage', 'rate_limit_exceeded', 'Rate limit exceeded');
        }
      }
    }

    if (!response) {
      await next();
      response = c.res;
    }
    for (const [name, value] of Object.entries(rateLimitHeaders)) response.headers.set(name, value);
    if (record.version !== null) response.headers.set('gocardless-version', record.version);
    record.status = response.status;
    c.res = response;
    return c.res;
  });

  mountGoCardlessCreditorRoutes(app, creditors, json);

  app.get('/payments/:id', (c) => {
    const payment = payments.get(c.req.param('id'));
    if (!payment) return gcError(404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    return json(200, { payments: payment });
  });

  app.get('/events/:id', (c) => {
    const index = eventIndex.get(c.req.param('id'));
    if (index === undefined) return gcError(404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    return json(200, { events: events[index] });
  });

  app.get('/events', (c) => {
    const query = new URL(c.req.url).searchParams;
    const invalid = (message: string, field?: string) =>
      gcError(400, 'invalid_api_usage', 'invalid_parameters', message, field ? { field } : {});

    const limitParam = query.get('limit');
    const limit = limitParam === null ? 50 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) return invalid('limit must be an integer from 1 to 500', 'limit');
    const after = query.get('after');
    const before = query.get('before');
    if (after !== null && before !== null) return invalid('after and before cannot be combined');

    const resourceType = query.get('resource_type');
    const action = query.get('action');
    const linkFilters = EVENT_LINK_FILTERS.flatMap((key) => {
      const value = query.get(key);
      return value === null ? [] : [[key, value] as const];
    });
    if (resourceType !== null && linkFilters.length > 0) {
      return invalid(`resource_type cannot be combined with the ${linkFilters[0]![0]} filter`, 'resource_type');
    }
    const include = query.get('include');
    if (include !== null && resourceType === null) return invalid('include must be used together with resource_type', 'include');

    const bounds: Array<[string, (eventMs: number, boundMs: number) => boolean]> = [
      ['gt', (e, b) => e > b],
      ['gte', (e, b) => e >= b],
      ['lt', (e, b) => e < b],
      ['lte', (e, b) => e <= b],
    ];
    const timeFilters: Array<(eventMs: number) => boolean> = [];
    for (const [bound, compare] of bounds) {
      const value = query.get(`created_at[${bound}]`);
      if (value === null) continue;
      const boundMs = Date.parse(value);
      if (Number.isNaN(boundMs)) return invalid(`created_at[${bound}] is not a valid date-time`, `created_at[${bound}]`);
      timeFilters.push((eventMs) => compare(eventMs, boundMs));
    }

    // Positions in the full list (in the configured order) make cursors stable
    // while new events arrive, whatever the filters.
    const ordered = eventOrder === 'newest_first' ? [...events].reverse() : [...events];
    const position = new Map(ordered.map((event, index) => [event.id, index]));
    const matches = ordered.filter(
      (event) =>
        (resourceType === null || event.resource_type === resourceType) &&
        (action === null || event.action === action) &&
        linkFilters.every(([key, value]) => event.links[key] === value) &&
        timeFilters.every((test) => test(Date.parse(event.created_at))),
    );

    let page: GoCardlessEvent[];
    let startIndex: number;
    if (after !== null || before !== null) {
      const cursor = (after ?? before)!;
      const cursorPosition = position.get(cursor);
      if (cursorPosition === undefined) return invalid(`cursor ${cursor} does not match any event`, after !== null ? 'after' : 'before');
      if (after !== null) {
        startIndex = matches.findIndex((event) => position.get(event.id)! > cursorPosition);
        if (startIndex < 0) startIndex = matches.length;
        page = matches.slice(startIndex, startIndex + limit);
      } else {
        let endIndex = matches.findIndex((event) => position.get(event.id)! >= cursorPosition);
        if (endIndex < 0) endIndex = matches.length;
        startIndex = Math.max(0, endIndex - limit);
        page = matches.slice(startIndex, endIndex);
      }
    } else {
      startIndex = 0;
      page = matches.slice(0, limit);
    }
    const endIndex = startIndex + page.length;

    const body: Record<string, unknown> = {
      events: page,
      meta: {
        cursors: {
          before: page.length > 0 && startIndex > 0 ? page[0]!.id : null,
          after: page.length > 0 && endIndex < matches.length ? page[page.length - 1]!.id : null,
        },
        limit,
      },
    };
    if (include === 'payment') {
      const linked = [...new Set(page.map((event) => event.links.payment).filter((id): id is string => id !== undefined))]
        .map((id) => payments.get(id))
        .filter((payment): payment is SandboxPayment => payment !== undefined);
      body.linked = { payments: linked };
    }
    return json(200, body);
  });

  // -- control API ------------------------------------------------------------

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
    faults,
    webhook_endpoint: webhookEndpoint ? { ...webhookEndpoint, random: undefined, fetcher: undefined } : null,
    webhook_deliveries: webhookDeliveries.length,
    pending_timeline_steps: pendingSteps.length,
    requests: requests.length,
  });

  app.get('/__sandbox/state', () => json(200, stateSnapshot()));
  app.post('/__sandbox/reset', () => {
    reset();
    return json(200, stateSnapshot());
  });
  app.post('/__sandbox/tick', () => {
    tick();
    return json(200, { pending_timeline_steps: pendingSteps.length });
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
  app.get('/__sandbox/faults', () => json(200, { faults }));
  app.put('/__sandbox/faults', async (c) => {
    setFaults(faultsInputSchema.parse(await readJson(c)));
    return json(200, { faults });
  });
  app.delete('/__sandbox/faults', () => {
    clearFaults();
    return json(200, { faults });
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

  app.notFound((c) =>
    c.req.path.startsWith('/__sandbox')
      ? json(404, { error: `no sandbox control route ${c.req.method} ${c.req.path}` })
      : gcError(404, 'invalid_api_usage', 'path_not_found', `No route matches ${c.req.method} ${c.req.path}`),
  );

  // -- lifecycle --------------------------------------------------------------

  function setFaults(partial: Partial<SandboxFaults>): void {
    faults = { ...faults, ...faultsInputSchema.parse(partial) };
  }

  function clearFaults(): void {
    faults = { ...NO_FAULTS };
  }

  function setWebhookEndpoint(config: WebhookEndpointConfig | null): void {
    webhookEndpoint = config;
    if (config) scheduleAutoDelivery();
  }

  function reset(): void {
    payments.clear();
    events.length = 0;
    eventIndex.clear();
    attempted.clear();
    fetchCounts.clear();
    requests.length = 0;
    webhookDeliveries.length = 0;
    pendingSteps = [];
    faults = { ...NO_FAULTS };
    webhookEndpoint = null;
    rateWindow = { startedAt: 0, count: 0 };
  }

  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: options.hostname ?? '127.0.0.1' }, () => resolve(started as Server));
    started.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.hostname ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const state: GoCardlessSandboxState = {
    payments,
    events,
    fetchCounts,
    requests,
    get faults() {
      return faults;
    },
    webhookDeliveries,
    get webhookEndpoint() {
      return webhookEndpoint;
    },
    get pendingTimelineSteps() {
      return pendingSteps.length;
    },
  };

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    accessToken: accessTokens[0]!,
    webhookSecret,
    state,
    creditors,
    close() {
      closed ??= new Promise<void>((resolve) => {
        lifetime.abort();
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        // Keep-alive connections from fetch would otherwise hold close() open.
        server.closeAllConnections();
      });
      return closed;
    },
    reset,
    createPayment,
    getPayment: (id) => {
      const payment = payments.get(id);
      return payment ? structuredClone(payment) : undefined;
    },
    setPaymentStatus,
    scheduleTimeline,
    tick,
    refundPayment,
    cancelMandate: (mandateId, input) => endMandate(mandateId, 'cancelled', input),
    expireMandate: (mandateId, input) => endMandate(mandateId, 'expired', input),
    payOut,
    createEvent,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
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
    clearFaults,
    deliverWebhooks,
    setWebhookEndpoint,
    webhooksIdle,
  };
}
