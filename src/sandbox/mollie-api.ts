/**
 * A fake Mollie API on a real HTTP port, speaking Mollie's wire format closely enough
 * that the official SDK parses it (hal+json everywhere, every required field present),
 * plus a scripting surface: TypeScript methods on the handle and the same verbs as a
 * JSON control API under /__sandbox so other processes can drive it.
 */
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { formatMinorUnits, parseDecimalAmount } from '../payments/money.js';
import {
  mollieTimestamp,
  randomMollieId,
  sendMollieClassicWebhook,
  sendMollieEventWebhook,
  type WebhookDeliveryResult,
  type WebhookSendOptions,
} from './mollie-webhook-sender.js';
import { createMollieSandboxAccounts, mountMollieAccountRoutes, type MollieSandboxAccounts } from './mollie-accounts.js';

export const SANDBOX_DEFAULT_API_KEY = 'test_sandbox';

export const SANDBOX_PAYMENT_STATUSES = ['open', 'pending', 'authorized', 'paid', 'canceled', 'expired', 'failed'] as const;
export type SandboxPaymentStatus = (typeof SANDBOX_PAYMENT_STATUSES)[number];
export const SANDBOX_REFUND_STATUSES = ['queued', 'pending', 'processing', 'refunded', 'failed', 'canceled'] as const;
export type SandboxRefundStatus = (typeof SANDBOX_REFUND_STATUSES)[number];

// Statuses after which Mollie calls a payment's classic webhook (docs/providers.md#mollie-classic-webhooks).
const WEBHOOK_STATUSES: ReadonlySet<string> = new Set(['authorized', 'paid', 'canceled', 'expired', 'failed']);
const WEBHOOK_REFUND_STATUSES: ReadonlySet<string> = new Set(['processing', 'refunded', 'failed']);
// Failed and canceled refunds return the money, so they do not count as refunded.
const COUNTED_REFUND_STATUSES: ReadonlySet<string> = new Set(['queued', 'pending', 'processing', 'refunded']);
const TIMESTAMP_FIELDS: Partial<Record<SandboxPaymentStatus, string>> = {
  authorized: 'authorizedAt',
  paid: 'paidAt',
  canceled: 'canceledAt',
  expired: 'expiredAt',
  failed: 'failedAt',
};

export interface SandboxAmount {
  currency: string;
  value: string;
}

export interface SandboxTimelineStep {
  /** Epoch ms at which the payment reaches `status`. */
  at: number;
  status: SandboxPaymentStatus;
}

export interface SandboxRefund {
  id: string;
  paymentId: string;
  status: SandboxRefundStatus;
  amount: SandboxAmount;
  description: string;
  createdAt: Date;
  seq: number;
}

export interface SandboxChargeback {
  id: string;
  paymentId: string;
  amount: SandboxAmount;
  createdAt: Date;
  reversedAt: Date | null;
  seq: number;
}

export interface SandboxPayment {
  id: string;
  /** The status set explicitly; a due timeline step overrides it (see `effectiveStatus`). */
  status: SandboxPaymentStatus;
  statusChangedAt: Date;
  timeline: SandboxTimelineStep[];
  amount: SandboxAmount;
  description: string;
  method: string | null;
  metadata: unknown;
  sequenceType: 'oneoff' | 'first' | 'recurring';
  mode: 'live' | 'test';
  profileId: string;
  createdAt: Date;
  webhookUrl: string | null;
  redirectUrl: string | null;
  customerId: string | null;
  mandateId: string | null;
  subscriptionId: string | null;
  settlementId: string | null;
  /** Method details; fake personal data so tests can check it is stripped. */
  details: Record<string, unknown> | null;
  refunds: SandboxRefund[];
  chargebacks: SandboxChargeback[];
  seq: number;
}

export interface SandboxFault {
  /** 429, 500, 502, 503, ... */
  status: number;
  /** How many of the next matching requests get this answer. */
  count: number;
  /** Sent as Retry-After (seconds) when given. */
  retryAfterS?: number;
  /** Only requests for this payment (GET /v2/payments/:id); otherwise every /v2 request. */
  paymentId?: string;
}

/** 'error': every /v2 request answers 503; 'reset': the connection is dropped without an answer. */
export type SandboxDownMode = 'error' | 'reset' | null;

export interface SandboxRequestRecord {
  method: string;
  path: string;
  status: number;
  at: Date;
}

export interface MollieSandboxState {
  payments: Map<string, SandboxPayment>;
  faults: Array<SandboxFault & { remaining: number }>;
  latencyMs: number;
  paymentLatencyMs: Map<string, number>;
  down: SandboxDownMode;
  /** GET /v2/payments/:id requests received per id, whatever they were answered. */
  requestCounts: Map<string, number>;
  /** The last 1000 /v2 requests. */
  requests: SandboxRequestRecord[];
  /** Webhooks the sandbox sent itself (autoWebhooks or notify). */
  deliveries: Array<{ paymentId: string; url: string; kind: 'classic' | 'event'; result: WebhookDeliveryResult }>;
}

export interface CreateSandboxPaymentInput {
  id?: string;
  status?: SandboxPaymentStatus;
  amount?: SandboxAmount;
  description?: string;
  method?: string | null;
  metadata?: unknown;
  sequenceType?: 'oneoff' | 'first' | 'recurring';
  mode?: 'live' | 'test';
  createdAt?: Date | string;
  webhookUrl?: string | null;
  redirectUrl?: string | null;
  customerId?: string | null;
  mandateId?: string | null;
  subscriptionId?: string | null;
  settlementId?: string | null;
  details?: Record<string, unknown> | null;
  /** Status changes relative to now; see `scheduleStatuses`. */
  timeline?: Array<{ atMs: number; status: SandboxPaymentStatus }>;
}

export interface AddRefundInput {
  id?: string;
  status?: SandboxRefundStatus;
  /** Default: the full remaining amount. */
  amount?: SandboxAmount;
  description?: string;
  createdAt?: Date | string;
}

export interface AddChargebackInput {
  id?: string;
  /** Default: the payment amount. */
  amount?: SandboxAmount;
  reversed?: boolean;
  createdAt?: Date | string;
}

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
}

export interface MollieSandbox {
  /** e.g. http://127.0.0.1:41234 — pass as the client's apiUrl (no /v2). */
  url: string;
  port: number;
  state: MollieSandboxState;
  /** API keys and organization tokens: add, revoke, and who each belongs to. */
  accounts: MollieSandboxAccounts;
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

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------
// Wire rendering

const HAL = 'application/hal+json';
const DOCS = { href: 'https://docs.mollie.com/overview/handling-errors', type: 'text/html' };

const ERROR_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized Request',
  403: 'Forbidden',
  404: 'Not Found',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};
const ERROR_DETAILS: Record<number, string> = {
  401: 'Missing authentication, or failed to authenticate',
  429: 'You have exceeded the rate limit. Please slow down your requests.',
  500: 'An internal server error occurred while processing your request',
  503: 'The service is temporarily unavailable. Please try again later.',
};

function halResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': HAL, ...headers } });
}

export function mollieErrorBody(status: number, detail?: string, field?: string): Record<string, unknown> {
  return {
    status,
    title: ERROR_TITLES[status] ?? 'Error',
    detail: detail ?? ERROR_DETAILS[status] ?? 'An error occurred',
    ...(field ? { field } : {}),
    _links: { documentation: DOCS },
  };
}

function mollieError(status: number, detail?: string, field?: string, headers?: Record<string, string>): Response {
  return halResponse(status, mollieErrorBody(status, detail, field), headers);
}

function link(href: string, type = HAL) {
  return { href, type };
}

function toMinor(amount: SandboxAmount): number {
  return parseDecimalAmount(amount.value, amount.currency);
}

function money(minor: number, currency: string): SandboxAmount {
  return { currency, value: formatMinorUnits(minor, currency) };
}

export function effectiveStatus(payment: SandboxPayment, now: number = Date.now()): { status: SandboxPaymentStatus; since: Date } {
  let current = { status: payment.status, since: payment.statusChangedAt };
  for (const step of payment.timeline) {
    if (step.at <= now) current = { status: step.status, since: new Date(step.at) };
  }
  return current;
}

function refundedMinor(payment: SandboxPayment): number {
  return payment.refunds.filter((r) => COUNTED_REFUND_STATUSES.has(r.status)).reduce((sum, r) => sum + toMinor(r.amount), 0);
}

function chargedBackMinor(payment: SandboxPayment): number {
  return payment.chargebacks.filter((c) => c.reversedAt === null).reduce((sum, c) => sum + toMinor(c.amount), 0);
}

function renderPayment(payment: SandboxPayment, baseUrl: string, now = Date.now()): Record<string, unknown> {
  const { status, since } = effectiveStatus(payment, now);
  const currency = payment.amount.currency;
  const total = toMinor(payment.amount);
  const refunded = refundedMinor(payment);
  const chargedBack = chargedBackMinor(payment);
  const timestampField = TIMESTAMP_FIELDS[status];
  const wire: Record<string, unknown> = {
    resource: 'payment',
    id: payment.id,
    mode: payment.mode,
    createdAt: mollieTimestamp(payment.createdAt),
    amount: payment.amount,
    description: payment.description,
    method: payment.method,
    metadata: payment.metadata,
    status,
    profileId: payment.profileId,
    sequenceType: payment.sequenceType,
  };
  if (status === 'open') {
    wire.isCancelable = false;
    wire.expiresAt = mollieTimestamp(new Date(payment.createdAt.getTime() + 15 * 60_000));
  }
  if (timestampField) wire[timestampField] = mollieTimestamp(since);
  // Mollie shows refund amounts once refunds are possible, i.e. on a paid payment.
  if (status === 'paid' || payment.refunds.length > 0) {
    wire.amountRefunded = money(refunded, currency);
    wire.amountRemaining = money(Math.max(0, total - refunded - chargedBack), currency);
  }
  if (chargedBack > 0) wire.amountChargedBack = money(chargedBack, currency);
  for (const field of ['redirectUrl', 'webhookUrl', 'customerId', 'mandateId', 'subscriptionId', 'settlementId'] as const) {
    if (payment[field] !== null) wire[field] = payment[field];
  }
  if (payment.details && status !== 'open') wire.details = payment.details;
  const self = `${baseUrl}/v2/payments/${payment.id}`;
  wire._links = {
    self: link(self),
    dashboard: link(`https://my.mollie.com/dashboard/org_sandbox/payments/${payment.id}`, 'text/html'),
    ...(status === 'open' ? { checkout: link(`${baseUrl}/__sandbox/checkout/${payment.id}`, 'text/html') } : {}),
    ...(payment.refunds.length ? { refunds: link(`${self}/refunds`) } : {}),
    ...(payment.chargebacks.length ? { chargebacks: link(`${self}/chargebacks`) } : {}),
    documentation: link('https://docs.mollie.com/reference/get-payment', 'text/html'),
  };
  return wire;
}

function renderRefund(refund: SandboxRefund, payment: SandboxPayment, baseUrl: string): Record<string, unknown> {
  return {
    resource: 'refund',
    id: refund.id,
    mode: payment.mode,
    description: refund.description,
    amount: refund.amount,
    metadata: null,
    paymentId: refund.paymentId,
    status: refund.status,
    createdAt: mollieTimestamp(refund.createdAt),
    _links: {
      self: link(`${baseUrl}/v2/payments/${refund.paymentId}/refunds/${refund.id}`),
      payment: link(`${baseUrl}/v2/payments/${refund.paymentId}`),
    },
  };
}

function renderChargeback(chargeback: SandboxChargeback, baseUrl: string): Record<string, unknown> {
  return {
    resource: 'chargeback',
    id: chargeback.id,
    amount: chargeback.amount,
    reason: { code: 'AC01', description: 'Account identifier incorrect (i.e. invalid IBAN)' },
    paymentId: chargeback.paymentId,
    createdAt: mollieTimestamp(chargeback.createdAt),
    reversedAt: chargeback.reversedAt ? mollieTimestamp(chargeback.reversedAt) : null,
    _links: {
      self: link(`${baseUrl}/v2/payments/${chargeback.paymentId}/chargebacks/${chargeback.id}`),
      payment: link(`${baseUrl}/v2/payments/${chargeback.paymentId}`),
    },
  };
}

function fakeDetails(method: string | null): Record<string, unknown> | null {
  switch (method) {
    case null:
      return null;
    case 'creditcard':
      return { cardHolder: 'T. TEST', cardNumber: '6787', cardFingerprint: 'fp_sandbox', cardCountryCode: 'NL', cardLabel: 'Visa' };
    default:
      return { consumerName: 'T. TEST', consumerAccount: 'NL53INGB0654422370', consumerBic: 'INGBNL2A' };
  }
}

// ---------------------------------------------------------------------------
// Lists with Mollie's cursor semantics

interface Listed {
  id: string;
  createdAt: Date;
  seq: number;
}

type ListPage<T> = { ok: true; items: T[]; next: T | null } | { ok: false; response: Response };

function pageOf<T extends Listed>(all: T[], query: URLSearchParams): ListPage<T> {
  const limitText = query.get('limit');
  const limit = limitText === null || limitText === '' ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 250) {
    return { ok: false, response: mollieError(400, 'The limit must be between 1 and 250', 'limit') };
  }
  const sort = query.get('sort') ?? 'desc';
  if (sort !== 'asc' && sort !== 'desc') {
    return { ok: false, response: mollieError(400, 'The sort must be asc or desc', 'sort') };
  }
  const direction = sort === 'asc' ? 1 : -1;
  const sorted = [...all].sort(
    (a, b) => direction * (a.createdAt.getTime() - b.createdAt.getTime() || a.seq - b.seq),
  );
  const from = query.get('from');
  let start = 0;
  if (from) {
    start = sorted.findIndex((item) => item.id === from);
    if (start < 0) return { ok: false, response: mollieError(400, 'Invalid cursor value', 'from') };
  }
  return { ok: true, items: sorted.slice(start, start + limit), next: sorted[start + limit] ?? null };
}

function listBody(
  key: string,
  items: unknown[],
  next: Listed | null,
  baseUrl: string,
  path: string,
  query: URLSearchParams,
): Record<string, unknown> {
  const nextQuery = new URLSearchParams(query);
  if (next) nextQuery.set('from', next.id);
  const selfQuery = query.toString();
  return {
    count: items.length,
    _embedded: { [key]: items },
    _links: {
      self: link(`${baseUrl}${path}${selfQuery ? `?${selfQuery}` : ''}`),
      previous: null,
      next: next ? link(`${baseUrl}${path}?${nextQuery.toString()}`) : null,
      documentation: link(`https://docs.mollie.com/reference/list-${key}`, 'text/html'),
    },
  };
}

// ---------------------------------------------------------------------------
// Control API input schemas

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

function toDate(value: Date | string | undefined, fallback: Date): Date {
  if (value === undefined) return fallback;
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new SandboxError(`invalid date ${JSON.stringify(value)}`);
  return date;
}

function validAmount(amount: SandboxAmount): SandboxAmount {
  try {
    toMinor(amount);
  } catch (error) {
    throw new SandboxError((error as Error).message);
  }
  return { currency: amount.currency, value: amount.value };
}

// ---------------------------------------------------------------------------

export async function startMollieSandbox(options: MollieSandboxOptions = {}): Promise<MollieSandbox> {
  const accounts = createMollieSandboxAccounts(options.apiKeys ?? [SANDBOX_DEFAULT_API_KEY]);
  const autoWebhooks: WebhookSendOptions | null =
    options.autoWebhooks === true ? {} : options.autoWebhooks ? options.autoWebhooks : null;
  const state: MollieSandboxState = {
    payments: new Map(),
    faults: [],
    latencyMs: 0,
    paymentLatencyMs: new Map(),
    down: null,
    requestCounts: new Map(),
    requests: [],
    deliveries: [],
  };
  let seq = 0;
  let baseUrl = '';
  const lifetime = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const pendingSleeps = new Set<() => void>();
  const background = new Set<Promise<unknown>>();

  function sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        pendingSleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      pendingSleeps.add(wake);
    });
  }

  function paymentOf(id: string): SandboxPayment {
    const payment = state.payments.get(id);
    if (!payment) throw new SandboxError(`no sandbox payment ${id}`, 404);
    return payment;
  }

  function findRefund(id: string): SandboxRefund {
    for (const payment of state.payments.values()) {
      const refund = payment.refunds.find((r) => r.id === id);
      if (refund) return refund;
    }
    throw new SandboxError(`no sandbox refund ${id}`, 404);
  }

  function findChargeback(id: string): SandboxChargeback {
    for (const payment of state.payments.values()) {
      const chargeback = payment.chargebacks.find((c) => c.id === id);
      if (chargeback) return chargeback;
    }
    throw new SandboxError(`no sandbox chargeback ${id}`, 404);
  }

  function idTaken(id: string): boolean {
    if (state.payments.has(id)) return true;
    for (const payment of state.payments.values()) {
      if (payment.refunds.some((r) => r.id === id) || payment.chargebacks.some((c) => c.id === id)) return true;
    }
    return false;
  }

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
    state.deliveries.push({ paymentId, url, kind: 'classic', result });
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

  function createPayment(input: CreateSandboxPaymentInput = {}): SandboxPayment {
    const id = input.id ?? randomMollieId('tr');
    if (idTaken(id)) throw new SandboxError(`sandbox id ${id} already exists`, 409);
    const now = new Date();
    const method = input.method ?? null;
    const payment: SandboxPayment = {
      id,
      status: input.status ?? 'open',
      statusChangedAt: now,
      timeline: [],
      amount: validAmount(input.amount ?? { currency: 'EUR', value: '10.00' }),
      description: input.description ?? `Sandbox payment ${id}`,
      method,
      metadata: input.metadata ?? null,
      sequenceType: input.sequenceType ?? 'oneoff',
      mode: input.mode ?? 'test',
      profileId: 'pfl_sandbox',
      createdAt: toDate(input.createdAt, now),
      webhookUrl: input.webhookUrl ?? null,
      redirectUrl: input.redirectUrl ?? null,
      customerId: input.customerId ?? null,
      mandateId: input.mandateId ?? null,
      subscriptionId: input.subscriptionId ?? null,
      settlementId: input.settlementId ?? null,
      details: input.details === undefined ? fakeDetails(method) : input.details,
      refunds: [],
      chargebacks: [],
      seq: ++seq,
    };
    state.payments.set(id, payment);
    if (input.timeline) scheduleStatuses(id, input.timeline);
    return payment;
  }

  function setStatus(paymentId: string, status: SandboxPaymentStatus): SandboxPayment {
    const payment = paymentOf(paymentId);
    const before = effectiveStatus(payment).status;
    // An explicit status wins over any scripted future.
    payment.timeline = [];
    payment.status = status;
    payment.statusChangedAt = new Date();
    if (status !== before && WEBHOOK_STATUSES.has(status)) autoNotify(payment);
    return payment;
  }

  function scheduleStatuses(paymentId: string, steps: Array<{ atMs: number; status: SandboxPaymentStatus }>): SandboxPayment {
    const payment = paymentOf(paymentId);
    const now = Date.now();
    // Freeze what is current now, so past steps of an older timeline are not lost.
    const current = effectiveStatus(payment, now);
    payment.status = current.status;
    payment.statusChangedAt = current.since;
    payment.timeline = steps.map((step) => ({ at: now + step.atMs, status: step.status })).sort((a, b) => a.at - b.at);
    armTimeline(payment);
    return payment;
  }

  function addRefund(paymentId: string, input: AddRefundInput = {}): SandboxRefund {
    const payment = paymentOf(paymentId);
    const id = input.id ?? randomMollieId('re');
    if (idTaken(id)) throw new SandboxError(`sandbox id ${id} already exists`, 409);
    const currency = payment.amount.currency;
    const remaining = toMinor(payment.amount) - refundedMinor(payment) - chargedBackMinor(payment);
    const amount = validAmount(input.amount ?? money(Math.max(0, remaining), currency));
    if (amount.currency !== currency) throw new SandboxError(`refund currency ${amount.currency} differs from the payment's ${currency}`);
    const status = input.status ?? 'pending';
    if (COUNTED_REFUND_STATUSES.has(status) && toMinor(amount) > remaining) {
      throw new SandboxError(`refund of ${amount.value} ${currency} exceeds the remaining ${formatMinorUnits(remaining, currency)}`);
    }
    const refund: SandboxRefund = {
      id,
      paymentId,
      status,
      amount,
      description: input.description ?? `Refund of ${paymentId}`,
      createdAt: toDate(input.createdAt, new Date()),
      seq: ++seq,
    };
    payment.refunds.push(refund);
    if (WEBHOOK_REFUND_STATUSES.has(status)) autoNotify(payment);
    return refund;
  }

  function setRefundStatus(refundId: string, status: SandboxRefundStatus): SandboxRefund {
    const refund = findRefund(refundId);
    const changed = refund.status !== status;
    refund.status = status;
    if (changed && WEBHOOK_REFUND_STATUSES.has(status)) autoNotify(paymentOf(refund.paymentId));
    return refund;
  }

  function addChargeback(paymentId: string, input: AddChargebackInput = {}): SandboxChargeback {
    const payment = paymentOf(paymentId);
    const id = input.id ?? randomMollieId('chb');
    if (idTaken(id)) throw new SandboxError(`sandbox id ${id} already exists`, 409);
    const amount = validAmount(input.amount ?? payment.amount);
    if (amount.currency !== payment.amount.currency) {
      throw new SandboxError(`chargeback currency ${amount.currency} differs from the payment's ${payment.amount.currency}`);
    }
    const createdAt = toDate(input.createdAt, new Date());
    const chargeback: SandboxChargeback = {
      id,
      paymentId,
      amount,
      createdAt,
      reversedAt: input.reversed ? new Date() : null,
      seq: ++seq,
    };
    payment.chargebacks.push(chargeback);
    autoNotify(payment);
    return chargeback;
  }

  function reverseChargeback(chargebackId: string): SandboxChargeback {
    const chargeback = findChargeback(chargebackId);
    if (chargeback.reversedAt === null) {
      chargeback.reversedAt = new Date();
      autoNotify(paymentOf(chargeback.paymentId));
    }
    return chargeback;
  }

  function failNext(fault: SandboxFault): void {
    if (!Number.isInteger(fault.count) || fault.count < 1) throw new SandboxError('fault count must be a positive integer');
    state.faults.push({ ...fault, remaining: fault.count });
  }

  function setLatency(ms: number, paymentId?: string): void {
    if (paymentId === undefined) state.latencyMs = ms;
    else if (ms > 0) state.paymentLatencyMs.set(paymentId, ms);
    else state.paymentLatencyMs.delete(paymentId);
  }

  function paymentJson(paymentId: string): Record<string, unknown> {
    return renderPayment(paymentOf(paymentId), baseUrl);
  }

  async function notifyEvent(
    paymentId: string,
    eventOptions: WebhookSendOptions & { url?: string; secret: string; mode?: 'snapshot' | 'simple'; type?: string; prefixSignature?: boolean },
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
    state.deliveries.push({ paymentId, url, kind: 'event', result });
    return result;
  }

  function takeFault(paymentId: string | undefined): SandboxFault | null {
    const index = state.faults.findIndex((f) => f.paymentId === undefined || f.paymentId === paymentId);
    if (index < 0) return null;
    const fault = state.faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) state.faults.splice(index, 1);
    return fault;
  }

  function reset(): void {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    state.payments.clear();
    state.faults.length = 0;
    state.latencyMs = 0;
    state.paymentLatencyMs.clear();
    state.down = null;
    state.requestCounts.clear();
    state.requests.length = 0;
    state.deliveries.length = 0;
  }

  // -------------------------------------------------------------------------
  // The fake API

  const app = new Hono<{ Bindings: HttpBindings }>();
  const PAYMENT_PATH = /^\/v2\/payments\/([^/]+)$/;

  app.use('/v2/*', async (c, next) => {
    const path = c.req.path;
    const paymentId = c.req.method === 'GET' ? PAYMENT_PATH.exec(path)?.[1] : undefined;
    if (paymentId) state.requestCounts.set(paymentId, (state.requestCounts.get(paymentId) ?? 0) + 1);

    await sleep(state.latencyMs + (paymentId ? (state.paymentLatencyMs.get(paymentId) ?? 0) : 0));

    if (state.down === 'reset') {
      // No answer at all: the client sees a dropped connection.
      c.env.incoming.socket.destroy();
      return new Response(null, { status: 503 });
    }
    let response: Response | null = null;
    if (state.down === 'error') response = mollieError(503);
    if (!response) {
      const auth = c.req.header('authorization') ?? '';
      const key = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
      if (!key || !accounts.accepts(key)) response = mollieError(401);
    }
    if (!response) {
      const fault = takeFault(paymentId);
      if (fault) {
        const headers: Record<string, string> = fault.retryAfterS !== undefined ? { 'Retry-After': String(fault.retryAfterS) } : {};
        response = mollieError(fault.status, undefined, undefined, headers);
      }
    }
    const record = (status: number) => {
      state.requests.push({ method: c.req.method, path, status, at: new Date() });
      if (state.requests.length > 1000) state.requests.splice(0, state.requests.length - 1000);
    };
    if (response) {
      record(response.status);
      return response;
    }
    await next();
    record(c.res.status);
  });

  app.get('/v2/payments', (c) => {
    const query = new URL(c.req.url).searchParams;
    const page = pageOf([...state.payments.values()], query);
    if (!page.ok) return page.response;
    const now = Date.now();
    return halResponse(
      200,
      listBody('payments', page.items.map((p) => renderPayment(p, baseUrl, now)), page.next, baseUrl, '/v2/payments', query),
    );
  });

  app.get('/v2/payments/:id', (c) => {
    const payment = state.payments.get(c.req.param('id'));
    if (!payment) return mollieError(404, `No payment exists with token ${c.req.param('id')}.`);
    const body = renderPayment(payment, baseUrl);
    // `?embed=refunds,chargebacks`: Mollie adds the sub-resources under `_embedded`.
    const embed = new Set((c.req.query('embed') ?? '').split(',').filter(Boolean));
    const embedded: Record<string, unknown[]> = {};
    if (embed.has('refunds')) embedded.refunds = payment.refunds.map((r) => renderRefund(r, payment, baseUrl));
    if (embed.has('chargebacks')) embedded.chargebacks = payment.chargebacks.map((cb) => renderChargeback(cb, baseUrl));
    return halResponse(200, Object.keys(embedded).length > 0 ? { ...body, _embedded: embedded } : body);
  });

  // One payment's refunds and chargebacks, as lists in Mollie's shape (cursor with `from`).
  const subResourceList = (key: 'refunds' | 'chargebacks') => (c: Context) => {
    const payment = state.payments.get(c.req.param('id')!);
    if (!payment) return mollieError(404, `No payment exists with token ${c.req.param('id')}.`);
    const query = new URL(c.req.url).searchParams;
    const page = key === 'refunds' ? pageOf(payment.refunds, query) : pageOf(payment.chargebacks, query);
    if (!page.ok) return page.response;
    const items = page.items.map((item) => ('status' in item ? renderRefund(item, payment, baseUrl) : renderChargeback(item, baseUrl)));
    return halResponse(200, listBody(key, items, page.next, baseUrl, `/v2/payments/${payment.id}/${key}`, query));
  };
  app.get('/v2/payments/:id/refunds', subResourceList('refunds'));
  app.get('/v2/payments/:id/chargebacks', subResourceList('chargebacks'));

  app.get('/v2/refunds', (c) => {
    const query = new URL(c.req.url).searchParams;
    const all = [...state.payments.values()].flatMap((p) => p.refunds);
    const page = pageOf(all, query);
    if (!page.ok) return page.response;
    const items = page.items.map((r) => renderRefund(r, paymentOf(r.paymentId), baseUrl));
    return halResponse(200, listBody('refunds', items, page.next, baseUrl, '/v2/refunds', query));
  });

  app.get('/v2/chargebacks', (c) => {
    const query = new URL(c.req.url).searchParams;
    const all = [...state.payments.values()].flatMap((p) => p.chargebacks);
    const page = pageOf(all, query);
    if (!page.ok) return page.response;
    const items = page.items.map((cb) => renderChargeback(cb, baseUrl));
    return halResponse(200, listBody('chargebacks', items, page.next, baseUrl, '/v2/chargebacks', query));
  });

  mountMollieAccountRoutes(app, accounts, { hal: halResponse, error: mollieError, baseUrl: () => baseUrl });

  // -------------------------------------------------------------------------
  // The control API: JSON in, JSON out, no auth (it is a sandbox).

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
    return c.json(renderPayment(payment, baseUrl), 201);
  });
  control.get('/payments/:id', (c) => c.json({ payment: paymentJson(c.req.param('id')), requestCount: state.requestCounts.get(c.req.param('id')) ?? 0 }));
  control.post('/payments/:id/status', async (c) => {
    const { status } = await jsonBody(c, z.object({ status: statusSchema }));
    return c.json(renderPayment(setStatus(c.req.param('id'), status), baseUrl));
  });
  control.post('/payments/:id/timeline', async (c) => {
    const { steps } = await jsonBody(c, z.object({ steps: timelineSchema }));
    return c.json(renderPayment(scheduleStatuses(c.req.param('id'), steps), baseUrl));
  });
  control.post('/payments/:id/refunds', async (c) => {
    const refund = addRefund(c.req.param('id'), await jsonBody(c, refundSchema));
    return c.json(renderRefund(refund, paymentOf(refund.paymentId), baseUrl), 201);
  });
  control.post('/refunds/:id/status', async (c) => {
    const { status } = await jsonBody(c, z.object({ status: refundStatusSchema }));
    const refund = setRefundStatus(c.req.param('id'), status);
    return c.json(renderRefund(refund, paymentOf(refund.paymentId), baseUrl));
  });
  control.post('/payments/:id/chargebacks', async (c) => {
    const chargeback = addChargeback(c.req.param('id'), await jsonBody(c, chargebackSchema));
    return c.json(renderChargeback(chargeback, baseUrl), 201);
  });
  control.post('/chargebacks/:id/reverse', (c) => c.json(renderChargeback(reverseChargeback(c.req.param('id')), baseUrl)));
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
  app.route('/__sandbox', control);

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
  baseUrl = `http://${host}:${address.port}`;

  let closing: Promise<void> | null = null;
  function close(): Promise<void> {
    closing ??= (async () => {
      lifetime.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const wake of [...pendingSleeps]) wake();
      await Promise.allSettled([...background]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
    })();
    return closing;
  }

  return {
    url: baseUrl,
    port: address.port,
    state,
    accounts,
    close,
    createPayment,
    setStatus,
    scheduleStatuses,
    addRefund,
    setRefundStatus,
    addChargeback,
    reverseChargeback,
    failNext,
    setLatency,
    setDown: (mode) => {
      state.down = mode;
    },
    requestCount: (paymentId) => state.requestCounts.get(paymentId) ?? 0,
    paymentJson,
    notify,
    notifyEvent,
    reset,
  };
}
