/**
 * The Mollie sandbox's state and the rules it plays by, with no HTTP in it: payments with
 * their scripted timelines, refunds and chargebacks, the API keys it accepts, and the
 * fault, latency and request records the other modules keep in the same state object.
 * Whatever is per account (keys, and later which payments a key may see) belongs here.
 */
import { formatMinorUnits, parseDecimalAmount } from '../../money.js';
import { randomMollieId, type WebhookDeliveryResult } from '../mollie-webhook-sender.js';

export const SANDBOX_DEFAULT_API_KEY = 'test_sandbox';

export const SANDBOX_PAYMENT_STATUSES = ['open', 'pending', 'authorized', 'paid', 'canceled', 'expired', 'failed'] as const;
export type SandboxPaymentStatus = (typeof SANDBOX_PAYMENT_STATUSES)[number];
export const SANDBOX_REFUND_STATUSES = ['queued', 'pending', 'processing', 'refunded', 'failed', 'canceled'] as const;
export type SandboxRefundStatus = (typeof SANDBOX_REFUND_STATUSES)[number];

// Statuses after which Mollie calls a payment's classic webhook (docs/providers.md#mollie-classic-webhooks).
export const WEBHOOK_STATUSES: ReadonlySet<string> = new Set(['authorized', 'paid', 'canceled', 'expired', 'failed']);
const WEBHOOK_REFUND_STATUSES: ReadonlySet<string> = new Set(['processing', 'refunded', 'failed']);
// Failed and canceled refunds return the money, so they do not count as refunded.
const COUNTED_REFUND_STATUSES: ReadonlySet<string> = new Set(['queued', 'pending', 'processing', 'refunded']);

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
  /** The bearer the request carried (the sandbox's own test credentials; '' when none). */
  token: string;
}

/** The profile of payments created without an owner: every credential sees them. */
export const SHARED_PROFILE_ID = 'pfl_sandbox';

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
  /** Which bearer tokens asked GET /v2/payments/:id for each payment, in order (every request, not capped). */
  fetchedBy: Map<string, string[]>;
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
  /**
   * The payment's owner: only this API key (its profile), or an organization token of the
   * same organization, sees it; any other credential gets Mollie's 404. Without it the
   * payment is the sandbox's shared one (profile pfl_sandbox), visible to every credential.
   */
  apiKey?: string;
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

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super(message);
  }
}

export function toMinor(amount: SandboxAmount): number {
  return parseDecimalAmount(amount.value, amount.currency);
}

export function money(minor: number, currency: string): SandboxAmount {
  return { currency, value: formatMinorUnits(minor, currency) };
}

export function effectiveStatus(payment: SandboxPayment, now: number = Date.now()): { status: SandboxPaymentStatus; since: Date } {
  let current = { status: payment.status, since: payment.statusChangedAt };
  for (const step of payment.timeline) {
    if (step.at <= now) current = { status: step.status, since: new Date(step.at) };
  }
  return current;
}

export function refundedMinor(payment: SandboxPayment): number {
  return payment.refunds.filter((r) => COUNTED_REFUND_STATUSES.has(r.status)).reduce((sum, r) => sum + toMinor(r.amount), 0);
}

export function chargedBackMinor(payment: SandboxPayment): number {
  return payment.chargebacks.filter((c) => c.reversedAt === null).reduce((sum, c) => sum + toMinor(c.amount), 0);
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

/** What the store tells the webhook side: a change Mollie would notify, a new timeline to arm. */
export interface MollieStoreHooks {
  changed(payment: SandboxPayment): void;
  timelineSet(payment: SandboxPayment): void;
}

export interface SandboxCredentialView {
  kind: 'apiKey' | 'organizationToken' | 'oauth';
  profileId: string;
  organizationId: string;
}

export function createMollieStore(
  credentials: { accepts(token: string): boolean; get(token: string): SandboxCredentialView | undefined; list(): SandboxCredentialView[] },
  hooks: MollieStoreHooks,
) {
  const state: MollieSandboxState = {
    payments: new Map(),
    faults: [],
    latencyMs: 0,
    paymentLatencyMs: new Map(),
    down: null,
    requestCounts: new Map(),
    requests: [],
    fetchedBy: new Map(),
    deliveries: [],
  };
  let seq = 0;

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

  function ownerProfile(apiKey: string | undefined): string {
    if (apiKey === undefined) return SHARED_PROFILE_ID;
    const owner = credentials.get(apiKey);
    if (!owner || owner.kind !== 'apiKey') throw new SandboxError(`no sandbox API key ${apiKey} to own the payment`, 400);
    return owner.profileId;
  }

  /**
   * Whether the bearer may see the payment, as Mollie decides: an API key sees its own
   * profile's payments; an organization token sees its organization's profiles', a test
   * payment only when asked with testmode=true. Shared payments are everyone's.
   */
  function visibleTo(payment: SandboxPayment, token: string, testmode: boolean): boolean {
    const credential = credentials.get(token);
    if (!credential) return false;
    // Mollie asks testmode of every organization-level credential, OAuth tokens included;
    // the sandbox asks it of organization tokens only, so OAuth callers that predate the
    // rule (tests/helpers/oauth-token-worker.ts) keep working. The gateway's client sends
    // testmode for both kinds either way.
    if (credential.kind === 'organizationToken' && (payment.mode === 'test') !== testmode) return false;
    if (payment.profileId === SHARED_PROFILE_ID) return true;
    if (credential.kind === 'apiKey') return credential.profileId === payment.profileId;
    return credentials.list().some((other) => other.profileId === payment.profileId && other.organizationId === credential.organizationId);
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
      profileId: ownerProfile(input.apiKey),
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
    if (status !== before && WEBHOOK_STATUSES.has(status)) hooks.changed(payment);
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
    hooks.timelineSet(payment);
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
    if (WEBHOOK_REFUND_STATUSES.has(status)) hooks.changed(payment);
    return refund;
  }

  function setRefundStatus(refundId: string, status: SandboxRefundStatus): SandboxRefund {
    const refund = findRefund(refundId);
    const changed = refund.status !== status;
    refund.status = status;
    if (changed && WEBHOOK_REFUND_STATUSES.has(status)) hooks.changed(paymentOf(refund.paymentId));
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
    hooks.changed(payment);
    return chargeback;
  }

  function reverseChargeback(chargebackId: string): SandboxChargeback {
    const chargeback = findChargeback(chargebackId);
    if (chargeback.reversedAt === null) {
      chargeback.reversedAt = new Date();
      hooks.changed(paymentOf(chargeback.paymentId));
    }
    return chargeback;
  }

  /** Forget payments, faults, latency, down mode and counters. */
  function clear(): void {
    state.payments.clear();
    state.faults.length = 0;
    state.latencyMs = 0;
    state.paymentLatencyMs.clear();
    state.down = null;
    state.requestCounts.clear();
    state.requests.length = 0;
    state.fetchedBy.clear();
    state.deliveries.length = 0;
  }

  return {
    state,
    /** Whether a bearer token is one of the sandbox's live API keys or organization tokens. */
    acceptsKey: (key: string) => credentials.accepts(key),
    visibleTo,
    paymentOf,
    createPayment,
    setStatus,
    scheduleStatuses,
    addRefund,
    setRefundStatus,
    addChargeback,
    reverseChargeback,
    clear,
  };
}

export type MollieStore = ReturnType<typeof createMollieStore>;
