/**
 * The GoCardless sandbox's state and the rules it plays by, with no HTTP in it: payments
 * and their status moves, the event list, timelines, refunds, mandates, payouts, the
 * faults in force and the request log. Everything per account belongs here: today every
 * configured access token sees the same data (one creditor).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { GoCardlessPaymentStatus } from '../../providers/gocardless/mapping.js';
import type { GoCardlessEvent } from '../../providers/gocardless/webhook.js';
import type { WebhookBatchReport } from '../gocardless-webhook-sender.js';
import { LINK_FOR_RESOURCE, SCHEME_BY_CURRENCY, transitionDefaults, type EventDefaults } from './event-defaults.js';
import {
  createEventInputSchema,
  createPaymentInputSchema,
  mandateEndInputSchema,
  NO_FAULTS,
  faultsInputSchema,
  paymentStatusSchema,
  payoutInputSchema,
  refundInputSchema,
  refundStatusInputSchema,
  SandboxError,
  statusChangeOptionsSchema,
  timelineStepSchema,
  type CreateEventInput,
  type CreatePaymentInput,
  type GoCardlessSandboxState,
  type MandateEndInput,
  type RefundInput,
  type RefundStatusInput,
  type SandboxFaults,
  type SandboxRefund,
  type SandboxPayment,
  type SandboxRequestRecord,
  type StatusChangeOptions,
  type TimelineStep,
  type WebhookEndpointConfig,
} from './model.js';

export * from './model.js';


export interface GoCardlessStoreOptions {
  accessTokens: string[];
  eventOrder: 'newest_first' | 'oldest_first';
  rateLimitPerMinute: number;
  creditorId: string;
  webhookEndpoint: WebhookEndpointConfig | null;
}

/** What the store tells the webhook side: an event was appended while an endpoint is set. */
export interface GoCardlessStoreHooks {
  eventAppended(): void;
}

export function createGoCardlessStore(options: GoCardlessStoreOptions, hooks: GoCardlessStoreHooks) {
  const { accessTokens, creditorId } = options;


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
  const refunds = new Map<string, SandboxRefund>();
  const events: GoCardlessEvent[] = [];
  const eventIndex = new Map<string, number>();
  const attempted = new Set<string>();
  const fetchCounts = new Map<string, number>();
  const requests: SandboxRequestRecord[] = [];
  const webhookDeliveries: WebhookBatchReport[] = [];
  let faults: SandboxFaults = { ...NO_FAULTS };
  let webhookEndpoint: WebhookEndpointConfig | null = options.webhookEndpoint;
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
    if (webhookEndpoint) hooks.eventAppended();
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
    const createdAt = nextTimestamp().toISOString();
    refunds.set(refundId, {
      id: refundId,
      created_at: createdAt,
      amount: input.amount,
      currency: payment.currency,
      reference: input.reference ?? null,
      status: 'created',
      metadata: {},
      links: { payment: payment.id, mandate: payment.links.mandate },
    });
    const event = appendEvent({
      id: newId('EV'),
      created_at: createdAt,
      resource_type: 'refunds',
      action: 'created',
      links: { refund: refundId, payment: payment.id, mandate: payment.links.mandate },
      details: { origin: 'api', cause: 'refund_created', description: 'The refund has been created, and will be submitted in the next batch.', amount: input.amount, currency: payment.currency },
      metadata: {},
      resource_metadata: input.reference ? { reference: input.reference } : {},
    });
    return { refundId, event };
  }

  /** The event GoCardless sends when a refund reaches a status (none for the steps in between). */
  const REFUND_STATUS_EVENTS: Partial<Record<SandboxRefund['status'], { action: string; cause: string; description: string }>> = {
    paid: { action: 'paid', cause: 'refund_paid', description: 'The refund has been paid to your customer.' },
    bounced: { action: 'failed', cause: 'refund_failed', description: "The refund failed to be paid to the customer's bank account." },
    funds_returned: { action: 'funds_returned', cause: 'refund_funds_returned', description: 'The refund has had its funds returned.' },
    cancelled: { action: 'cancelled', cause: 'refund_cancelled', description: 'The refund was cancelled.' },
  };
  /** Statuses in which the money is back with the merchant: no longer counted in amount_refunded. */
  const RETURNED_REFUND_STATUSES: ReadonlySet<string> = new Set(['cancelled', 'bounced', 'funds_returned']);

  function setRefundStatus(refundId: string, rawInput: RefundStatusInput): { refund: SandboxRefund; event: GoCardlessEvent | null } {
    const input = refundStatusInputSchema.parse(rawInput);
    const refund = refunds.get(refundId);
    if (!refund) throw new SandboxError(404, `no sandbox refund ${refundId}`);
    const payment = requirePayment(refund.links.payment);
    const wasReturned = RETURNED_REFUND_STATUSES.has(refund.status);
    const returned = RETURNED_REFUND_STATUSES.has(input.status);
    if (!wasReturned && returned) payment.amount_refunded -= refund.amount;
    if (wasReturned && !returned) payment.amount_refunded += refund.amount;
    refund.status = input.status;
    const spec = REFUND_STATUS_EVENTS[input.status];
    const event =
      spec && input.emitEvent !== false
        ? appendEvent({
            id: newId('EV'),
            created_at: nextTimestamp().toISOString(),
            resource_type: 'refunds',
            action: spec.action,
            links: { refund: refund.id, payment: payment.id, mandate: payment.links.mandate },
            details: { origin: 'gocardless', cause: spec.cause, description: spec.description },
            metadata: {},
            resource_metadata: {},
          })
        : null;
    return { refund: structuredClone(refund), event };
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

  /** Counts a request in the fixed 60-second rate window and returns the window. */
  function countRequest(now: number): { startedAt: number; count: number } {
    if (now - rateWindow.startedAt >= 60_000) rateWindow = { startedAt: now, count: 0 };
    rateWindow.count += 1;
    return rateWindow;
  }

  function setFaults(partial: Partial<SandboxFaults>): void {
    faults = { ...faults, ...faultsInputSchema.parse(partial) };
  }

  function clearFaults(): void {
    faults = { ...NO_FAULTS };
  }

  function setWebhookEndpoint(config: WebhookEndpointConfig | null): void {
    webhookEndpoint = config;
  }

  function reset(): void {
    payments.clear();
    refunds.clear();
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
  function clearTimers(): void {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  }

  const view: GoCardlessSandboxState = {
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

  return {
    /** The read-only view the handle exposes as `state`. */
    view,
    accessTokens,
    eventOrder: options.eventOrder,
    rateLimitPerMinute: options.rateLimitPerMinute,
    payments,
    refunds,
    events,
    eventIndex,
    attempted,
    fetchCounts,
    requests,
    webhookDeliveries,
    listeners,
    get faults() {
      return faults;
    },
    get webhookEndpoint() {
      return webhookEndpoint;
    },
    get pendingStepCount() {
      return pendingSteps.length;
    },
    later,
    clearTimers,
    requirePayment,
    createPayment,
    setPaymentStatus,
    tick,
    scheduleTimeline,
    createEvent,
    refundPayment,
    setRefundStatus,
    endMandate,
    payOut,
    countRequest,
    setFaults,
    clearFaults,
    setWebhookEndpoint,
    reset,
  };
}

export type GoCardlessStore = ReturnType<typeof createGoCardlessStore>;
