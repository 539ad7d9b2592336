/**
 * Mollie's wire format: hal+json bodies for payments, refunds, chargebacks, errors and
 * lists with Mollie's cursor semantics. Pure functions of the state and the base URL.
 */
import { mollieTimestamp } from '../mollie-webhook-sender.js';
import {
  chargedBackMinor,
  effectiveStatus,
  money,
  refundedMinor,
  toMinor,
  type SandboxChargeback,
  type SandboxPayment,
  type SandboxPaymentStatus,
  type SandboxRefund,
} from './state.js';

const TIMESTAMP_FIELDS: Partial<Record<SandboxPaymentStatus, string>> = {
  authorized: 'authorizedAt',
  paid: 'paidAt',
  canceled: 'canceledAt',
  expired: 'expiredAt',
  failed: 'failedAt',
};

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

export function halResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
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

export function mollieError(status: number, detail?: string, field?: string, headers?: Record<string, string>): Response {
  return halResponse(status, mollieErrorBody(status, detail, field), headers);
}

function link(href: string, type = HAL) {
  return { href, type };
}

export function renderPayment(payment: SandboxPayment, baseUrl: string, now = Date.now()): Record<string, unknown> {
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

export function renderRefund(refund: SandboxRefund, payment: SandboxPayment, baseUrl: string): Record<string, unknown> {
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

export function renderChargeback(chargeback: SandboxChargeback, baseUrl: string): Record<string, unknown> {
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

interface Listed {
  id: string;
  createdAt: Date;
  seq: number;
}

type ListPage<T> = { ok: true; items: T[]; next: T | null } | { ok: false; response: Response };

export function pageOf<T extends Listed>(all: T[], query: URLSearchParams): ListPage<T> {
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

export function listBody(
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
