/**
 * The gateway's events, typed, and checked against the JSON Schemas the gateway publishes
 * (schemas/*.json in this package: the same files as the gateway's schemas/events/).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

export interface Money {
  value: string;
  currency: string;
  minor: number;
}

export type PaymentStatus = 'open' | 'pending' | 'authorized' | 'paid' | 'canceled' | 'expired' | 'failed' | 'charged_back';
export type FailureReason =
  | 'insufficient_funds'
  | 'declined'
  | 'authentication_failed'
  | 'instrument_expired'
  | 'invalid_details'
  | 'account_closed'
  | 'mandate_invalid'
  | 'disputed'
  | 'suspected_fraud'
  | 'canceled_by_payer'
  | 'other';

export interface PaymentChangeData {
  provider: 'mollie' | 'gocardless';
  account: string;
  paymentId: string;
  status: PaymentStatus;
  previousStatus: PaymentStatus | null;
  providerStatus: string;
  previousProviderStatus: string | null;
  version: number;
  amount: Money;
  amountRefunded: Money;
  amountChargedBack: Money;
  mode: 'live' | 'test' | null;
  metadata: unknown;
  source: 'webhook' | 'poll' | 'sync' | 'sweep' | 'replay' | 'track';
  description?: string | null;
  method?: string | null;
  sequenceType?: 'oneoff' | 'first' | 'recurring' | null;
  failureReason?: FailureReason | null;
  failureCode?: string | null;
  failureMessage?: string | null;
  links?: Record<'customer' | 'mandate' | 'subscription' | 'order' | 'settlement' | 'payout' | 'creditor', string | null>;
}

export type PaymentChangeType =
  | `payment.${PaymentStatus}`
  | 'payment.refunded'
  | 'payment.refund_reversed'
  | 'payment.chargeback_reversed'
  | 'payment.updated';

interface Envelope<T extends string, D> {
  id: string;
  type: T;
  timestamp: string;
  data: D;
}

export type PaymentChangeEvent = Envelope<PaymentChangeType, PaymentChangeData>;
export type PaymentStuckEvent = Envelope<'payment.stuck', { provider: string; account: string; paymentId: string; status: PaymentStatus; providerStatus: string; method: string | null; version: number; amount: Money; createdAt: string; expectedFinalBy: string; profile: string }>;
export type GoCardlessForwardedEvent = Envelope<`gocardless.${string}`, { provider: 'gocardless'; account: string; eventId: string; resourceType: string; action: string; resourceId: string | null; event: Record<string, unknown> }>;
/** `data.scope` tells a provider account's polling (`account`) from the whole fleet's (`fleet`, stalled and recovered only). */
export type PollerHealthEvent = Envelope<'gateway.poller.degraded' | 'gateway.poller.recovered' | 'gateway.poller.stalled', { scope: 'account' | 'fleet' } & Record<string, unknown>>;
/** A stored account's connection broke (the provider refuses its credentials) / works again; once per episode. */
export type AccountBrokenEvent = Envelope<'gateway.account.broken', { provider: 'mollie' | 'gocardless'; account: string; reason: string; detail: string; since: string }>;
export type AccountRecoveredEvent = Envelope<'gateway.account.recovered', { provider: 'mollie' | 'gocardless'; account: string; brokenSince: string; recoveredAt: string }>;
export type SinkDisabledEvent = Envelope<'gateway.sink.disabled', { sink: { id: string; kind: string; target: string }; status: number; reason: string; disabledAt: string }>;
/** An operator's test of one sink (the console's or the API's "send a test event"). */
export type SinkTestEvent = Envelope<'gateway.test', { sink: { id: string; kind: string; target: string }; requestedAt: string; requestedBy: string }>;
export type BankConnectionEvent = Envelope<
  'bank.connection.linked' | 'bank.connection.expiring' | 'bank.connection.expired' | 'bank.connection.broken' | 'bank.connection.recovered',
  { connectionId: string; reference: string } & Record<string, unknown>
>;
export type BankTransactionEvent = Envelope<
  'bank.transaction.pending' | 'bank.transaction.booked' | 'bank.transaction.removed',
  { id: string; connectionId: string; accountId: string; reference: string; status: 'pending' | 'booked' | 'removed'; amount: Money; pendingOf?: string } & Record<string, unknown>
>;

/** Every event type this package knows; narrow on `type`. */
export type GatewayEvent = PaymentChangeEvent | PaymentStuckEvent | GoCardlessForwardedEvent | PollerHealthEvent | AccountBrokenEvent | AccountRecoveredEvent | SinkDisabledEvent | SinkTestEvent | BankConnectionEvent | BankTransactionEvent;

export class EventParseError extends Error {
  override readonly name = 'EventParseError';
  constructor(
    readonly code: 'not_json' | 'unknown_type' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

const SCHEMA_DIR = new URL('../schemas/', import.meta.url);
const ajv = new Ajv2020({ strict: false, allErrors: true });
const validators = new Map<string, ValidateFunction>();
for (const file of readdirSync(SCHEMA_DIR).filter((name) => name.endsWith('.json'))) {
  validators.set(file.slice(0, -'.json'.length), ajv.compile(JSON.parse(readFileSync(new URL(file, SCHEMA_DIR), 'utf8'))));
}

function validatorFor(type: string): ValidateFunction | undefined {
  return validators.get(type) ?? (/^gocardless\.[a-z_]+\.[a-z_]+$/.test(type) ? validators.get('gocardless.resource_type.action') : undefined);
}

/** Whether events of this type carry the payment's `version` (and so can be stale). */
export function isPaymentChange(event: GatewayEvent): event is PaymentChangeEvent {
  return event.type.startsWith('payment.') && event.type !== 'payment.stuck';
}

/** Parses and validates one event (a JSON string or an already parsed value). */
export function parseEvent(input: string | unknown): GatewayEvent {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw new EventParseError('not_json', 'the event is not JSON');
    }
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') throw new EventParseError('invalid', 'the event has no type');
  const validate = validatorFor(type);
  if (!validate) throw new EventParseError('unknown_type', `unknown event type ${JSON.stringify(type)}`);
  if (!validate(value)) throw new EventParseError('invalid', `${type}: ${ajv.errorsText(validate.errors)}`);
  return value as GatewayEvent;
}
