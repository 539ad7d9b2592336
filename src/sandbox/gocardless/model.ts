/**
 * The GoCardless sandbox's shapes: its payments, faults, request log and state view, the
 * inputs of its verbs (the zod schemas double as the control API's body schemas), and
 * its error.
 */
import { z } from 'zod';
import { GOCARDLESS_PAYMENT_STATUSES, GOCARDLESS_REFUND_STATUSES, type GoCardlessPaymentStatus, type GoCardlessRefundStatus } from '../../providers/gocardless/mapping.js';
import type { GoCardlessEvent } from '../../providers/gocardless/webhook.js';
import type { SendGoCardlessWebhooksOptions, WebhookBatchReport } from '../gocardless-webhook-sender.js';

export const DEFAULT_SANDBOX_ACCESS_TOKEN = 'sandbox_gocardless_access_token';
export const DEFAULT_SANDBOX_WEBHOOK_SECRET = 'sandbox_gocardless_webhook_secret';
/** [S] docs/providers.md#gocardless-api-polling-and-recovery: 1,000 requests a minute. */
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 1000;
export const MAX_LOGGED_REQUESTS = 2000;

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

export const paymentStatusSchema = z.enum(GOCARDLESS_PAYMENT_STATUSES);

/** A refund as `GET /refunds` answers it. */
export interface SandboxRefund {
  id: string;
  created_at: string;
  amount: number;
  currency: string;
  reference: string | null;
  status: GoCardlessRefundStatus;
  metadata: Record<string, string>;
  links: { payment: string; mandate: string };
}

export const refundStatusSchema = z.enum(GOCARDLESS_REFUND_STATUSES);

export const refundStatusInputSchema = z.object({
  status: refundStatusSchema,
  /** Append the matching refund event (default true; GoCardless sends none for pending_submission and submitted). */
  emitEvent: z.boolean().optional(),
});
export type RefundStatusInput = z.infer<typeof refundStatusInputSchema>;

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

export const NO_FAULTS: SandboxFaults = {
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

export const webhookOptionsSchema = z.object({
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
export const deliverInputSchema = webhookOptionsSchema.extend({
  url: z.string().url().optional(),
  eventIds: z.array(z.string()).optional(),
  all: z.boolean().optional(),
});
export const endpointInputSchema = webhookOptionsSchema.extend({
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

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
