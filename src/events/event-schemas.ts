/**
 * The outbound events' contract: one zod schema per event type's `data`, the catalogue
 * of types, and their JSON Schemas (z.toJSONSchema, draft 2020-12). The OpenAPI
 * document's `webhooks` section and schemas/events/*.json are generated from these
 * (`npm run contract`); tests validate the events the gateway really produces against
 * the committed JSON Schemas.
 *
 * Schemas describe what is there and do not forbid more: fields are only ever added,
 * so a consumer validating with them keeps working when a later version adds one.
 */
import { z } from 'zod';
import { PAYMENT_STATUSES, PROVIDERS } from '../providers/types.js';
import { FAILURE_REASONS } from './billing-facts.js';

const money = z
  .object({
    value: z.string().describe('Decimal string in the currency\'s precision, e.g. "49.95"'),
    currency: z.string().describe('ISO 4217 code'),
    minor: z.number().int().describe('Integer minor units (cents); never a float'),
  })
  .describe('An exact amount');

const provider = z.enum(PROVIDERS);
const status = z.enum(PAYMENT_STATUSES);
const isoDate = z.string().describe('ISO 8601, UTC');

export const paymentChangeData = z
  .object({
    provider,
    account: z.string(),
    paymentId: z.string().describe("The provider's payment id (tr_…, PM…)"),
    status: status.describe('Normalised status after the change'),
    previousStatus: status.nullable().describe('Before the change; null when the payment was first seen'),
    providerStatus: z.string().describe("The provider's own status, verbatim"),
    previousProviderStatus: z.string().nullable(),
    version: z.number().int().min(1).describe('Increases by one per change of the payment; discard events older than the version you hold'),
    amount: money,
    amountRefunded: money,
    amountChargedBack: money,
    mode: z.enum(['live', 'test']).nullable(),
    metadata: z.unknown().describe('As the merchant set it at the provider'),
    source: z.enum(['webhook', 'poll', 'sync', 'sweep', 'replay', 'track']).describe('Which trigger observed the change'),
    // Billing fields (added in API 1.0; absent on events written before them).
    description: z.string().nullable().optional().describe("The payment's description, as the merchant set it"),
    method: z.string().nullable().optional().describe('Mollie: the payment method (ideal, creditcard, directdebit, …); GoCardless: the scheme (bacs, sepa_core, …)'),
    sequenceType: z
      .enum(['oneoff', 'first', 'recurring'])
      .nullable()
      .optional()
      .describe("Mollie's sequenceType; GoCardless: `recurring` for a subscription's payment, else null"),
    failureReason: z
      .enum(FAILURE_REASONS)
      .nullable()
      .optional()
      .describe('Why it failed or was charged back, normalised across providers; null when it did not fail or no reason is known'),
    failureCode: z
      .string()
      .nullable()
      .optional()
      .describe("The provider's own code: Mollie `details.failureReason` (cards) or `details.bankReasonCode` (SEPA); GoCardless the event's `details.cause`"),
    failureMessage: z.string().nullable().optional().describe("The provider's own message (Mollie `failureMessage` / `bankReason`, GoCardless `details.description`)"),
    links: z
      .object({
        customer: z.string().nullable().describe('Mollie cst_…'),
        mandate: z.string().nullable().describe('Mollie mdt_…, GoCardless MD…'),
        subscription: z.string().nullable().describe('Mollie sub_…, GoCardless SB…'),
        order: z.string().nullable().describe('Mollie ord_…'),
        settlement: z.string().nullable().describe('Mollie stl_… (once settled)'),
        payout: z.string().nullable().describe('GoCardless PO… (once paid out)'),
        creditor: z.string().nullable().describe('GoCardless CR…'),
      })
      .optional()
      .describe('What the payment belongs to, where the provider says'),
  })
  .describe('The payment\'s whole state after one real change');

export const paymentStuckData = z.object({
  provider,
  account: z.string(),
  paymentId: z.string(),
  status,
  providerStatus: z.string(),
  method: z.string().nullable(),
  version: z.number().int().min(1).describe("The payment's current version"),
  amount: money,
  createdAt: isoDate,
  expectedFinalBy: isoDate,
  profile: z.string().describe('The polling profile whose expected end was passed'),
});

export const gocardlessForwardedData = z.object({
  provider: z.literal('gocardless'),
  account: z.string(),
  eventId: z.string().describe("GoCardless's event id (EV…); forwarded once per id"),
  resourceType: z.string(),
  action: z.string(),
  resourceId: z.string().nullable().describe('The id in `links` named after the resource type'),
  event: z.record(z.string(), z.unknown()).describe("GoCardless's event, whole (links, details.cause, details.reason_code, …)"),
});

const pollerHealthBase = {
  provider,
  account: z.string(),
  consecutiveFailures: z.number().int().min(0),
  lastSuccessAt: isoDate.nullable(),
  lastFailureAt: isoDate.nullable(),
};

export const pollerDegradedData = z.object({
  scope: z.literal('account'),
  ...pollerHealthBase,
  since: isoDate,
  lastError: z.string().nullable(),
  reason: z.enum(['consecutive_failures', 'no_recent_success']),
});

/** A provider account's polling works again (`scope: "account"`), or the fleet polls again after a stall (`scope: "fleet"`). */
export const pollerRecoveredData = z.union([
  z.object({ scope: z.literal('account'), ...pollerHealthBase, degradedSince: isoDate, recoveredAt: isoDate }),
  z.object({ scope: z.literal('fleet'), stalledSince: isoDate, lastPassBefore: isoDate, recoveredAt: isoDate }),
]);

export const pollerStalledData = z.object({
  scope: z.literal('fleet'),
  since: isoDate,
  lastPassAt: isoDate,
  stalledAfterMs: z.number().int().min(0),
  due: z.number().int().min(0),
  oldestDueAt: isoDate.nullable(),
});

export const sinkDisabledData = z.object({
  sink: z.object({ id: z.string(), kind: z.string(), target: z.string() }),
  status: z.number().int(),
  reason: z.string(),
  disabledAt: isoDate,
});

export const sinkTestData = z.object({
  sink: z.object({ id: z.string(), kind: z.string(), target: z.string() }),
  requestedAt: isoDate,
  requestedBy: z.string().describe('Who asked: a console session or an API token, by fingerprint'),
});

export const accountBrokenData = z.object({
  provider,
  account: z.string().describe('The account name: the `:account` of `/webhooks/<provider>/:account`'),
  reason: z.string().describe('`unauthorized` (the provider refused the credentials: a revoked key, a revoked OAuth grant), `identity_changed` (they now belong to another provider-side identity), or another machine code'),
  detail: z.string().describe("The provider's message (never a secret)"),
  since: isoDate.describe('When the episode began'),
});

export const accountRecoveredData = z.object({
  provider,
  account: z.string(),
  brokenSince: isoDate.describe('When the episode that ended began'),
  recoveredAt: isoDate,
});

const bankConnectionBase = { connectionId: z.string(), reference: z.string() };

/** What every bank connection event carries, plus its own fields (see the README's bank-feed section). */
export const bankConnectionData = z.looseObject(bankConnectionBase);

export const bankTransactionData = z.looseObject({
  reference: z.string(),
  id: z.string().meta({ description: 'The transaction (`btx_…`)' }),
  connectionId: z.string(),
  accountId: z.string(),
  status: z.enum(['pending', 'booked', 'removed']),
  transactionId: z.string().nullable(),
  internalTransactionId: z.string().nullable(),
  bookingDate: z.string().nullable(),
  valueDate: z.string().nullable(),
  amount: z.object({ value: z.string(), currency: z.string() }),
  pendingOf: z.string().optional(),
});

export interface EventCatalogueEntry {
  /** The type, or for a family (`gocardless.<resource_type>.<action>`) its pattern. */
  type: string;
  /** Matches the concrete types this entry covers. */
  matches: (type: string) => boolean;
  data: z.ZodType;
  summary: string;
  description: string;
  /** Carries the payment's `version` in `data`. */
  versioned: boolean;
}

const paymentChange = (type: string, summary: string, description: string): EventCatalogueEntry => ({
  type,
  matches: (candidate) => candidate === type,
  data: paymentChangeData,
  summary,
  description,
  versioned: true,
});

export const EVENT_CATALOGUE: readonly EventCatalogueEntry[] = [
  ...PAYMENT_STATUSES.map((name) =>
    paymentChange(`payment.${name}`, `The payment became ${name}`, `The normalised status changed to \`${name}\` (or the payment was first seen in it).`),
  ),
  paymentChange('payment.refunded', 'The refunded amount went up', '`amountRefunded` grew; `status` may stay `paid`.'),
  paymentChange('payment.refund_reversed', 'The refunded amount went down', 'A refund was reversed at the provider.'),
  paymentChange('payment.chargeback_reversed', 'The charged-back amount went down', 'A chargeback was reversed (GoCardless `chargeback_cancelled`).'),
  paymentChange('payment.updated', 'Another tracked field changed', 'Only the provider\'s own status or the amount changed, e.g. GoCardless `confirmed` → `paid_out`.'),
  {
    type: 'payment.stuck',
    matches: (candidate) => candidate === 'payment.stuck',
    data: paymentStuckData,
    summary: 'A payment is not final well past its expected end',
    description: 'Sent once per payment by the poller.',
    versioned: false,
  },
  {
    type: 'gocardless.{resource_type}.{action}',
    matches: (candidate) => /^gocardless\.[a-z_]+\.[a-z_]+$/.test(candidate),
    data: gocardlessForwardedData,
    summary: 'A GoCardless event about anything but a payment, forwarded',
    description: 'One per GoCardless event id, e.g. `gocardless.mandates.cancelled`, `gocardless.refunds.paid`, `gocardless.payouts.paid`. `timestamp` is the event\'s `created_at`.',
    versioned: false,
  },
  {
    type: 'gateway.poller.degraded',
    matches: (candidate) => candidate === 'gateway.poller.degraded',
    data: pollerDegradedData,
    summary: 'Polling of a provider account started failing',
    description: 'Once per episode.',
    versioned: false,
  },
  {
    type: 'gateway.poller.recovered',
    matches: (candidate) => candidate === 'gateway.poller.recovered',
    data: pollerRecoveredData,
    summary: 'Polling works again: a provider account, or the fleet after a stall',
    description: 'Once per degraded (account) or stalled (fleet) episode; `data.scope` tells which.',
    versioned: false,
  },
  {
    type: 'gateway.poller.stalled',
    matches: (candidate) => candidate === 'gateway.poller.stalled',
    data: pollerStalledData,
    summary: 'No process has completed a poller pass while payments are due',
    description: 'Fleet-wide, once per episode, after `POLLER_STALLED_AFTER_MS` without a completed pass.',
    versioned: false,
  },
  {
    type: 'gateway.account.broken',
    matches: (candidate) => candidate === 'gateway.account.broken',
    data: accountBrokenData,
    summary: "A stored account's connection broke: the provider refuses its credentials",
    description: 'Once per episode, from whichever call saw the refusal first (the periodic check, a fetch, a poll, the sweep, the recovery). A provider outage is not a broken account.',
    versioned: false,
  },
  {
    type: 'gateway.account.recovered',
    matches: (candidate) => candidate === 'gateway.account.recovered',
    data: accountRecoveredData,
    summary: 'A broken account works again',
    description: 'Once per broken episode: new credentials (PATCH) or the provider accepting the stored ones again.',
    versioned: false,
  },
  {
    type: 'bank.connection.linked',
    matches: (candidate) => candidate === 'bank.connection.linked',
    data: bankConnectionData,
    summary: 'The end user gave consent; the accounts are known',
    description: 'Once per connection.',
    versioned: false,
  },
  {
    type: 'bank.connection.expiring',
    matches: (candidate) => candidate === 'bank.connection.expiring',
    data: bankConnectionData,
    summary: 'The consent ends soon',
    description: 'Once per `BANK_EXPIRY_WARNING_DAYS` entry.',
    versioned: false,
  },
  {
    type: 'bank.connection.expired',
    matches: (candidate) => candidate === 'bank.connection.expired',
    data: bankConnectionData,
    summary: 'The consent ended; the connection is no longer synced',
    description: 'Once per connection.',
    versioned: false,
  },
  {
    type: 'bank.connection.broken',
    matches: (candidate) => candidate === 'bank.connection.broken',
    data: bankConnectionData,
    summary: 'A bank connection stopped working',
    description: 'Rejected or suspended requisition, an account in ERROR, SUSPENDED or EXPIRED, or access refused; once per episode.',
    versioned: false,
  },
  {
    type: 'bank.connection.recovered',
    matches: (candidate) => candidate === 'bank.connection.recovered',
    data: bankConnectionData,
    summary: 'A broken bank connection works again',
    description: 'Once per broken episode.',
    versioned: false,
  },
  {
    type: 'bank.transaction.pending',
    matches: (candidate) => candidate === 'bank.transaction.pending',
    data: bankTransactionData,
    summary: 'A bank transaction was first seen pending',
    description: 'Once per pending transaction.',
    versioned: false,
  },
  {
    type: 'bank.transaction.booked',
    matches: (candidate) => candidate === 'bank.transaction.booked',
    data: bankTransactionData,
    summary: 'A bank transaction was booked',
    description: 'A new one, or the pending one it settles (`pendingOf`); once per transaction.',
    versioned: false,
  },
  {
    type: 'bank.transaction.removed',
    matches: (candidate) => candidate === 'bank.transaction.removed',
    data: bankTransactionData,
    summary: 'A pending bank transaction vanished past the grace',
    description: 'Once per transaction.',
    versioned: false,
  },
  {
    type: 'gateway.sink.disabled',
    matches: (candidate) => candidate === 'gateway.sink.disabled',
    data: sinkDisabledData,
    summary: 'A sink answered 410 Gone and is disabled until an operator enables it',
    description: 'Once per disablement; sent to the other sinks and the pull API.',
    versioned: false,
  },
  {
    type: 'gateway.test',
    matches: (candidate) => candidate === 'gateway.test',
    data: sinkTestData,
    summary: 'An operator checks one sink',
    description: 'Sent to that sink alone (not to the others, not in the pull API), when an operator asks; acknowledge it like any event.',
    versioned: false,
  },
];

export function catalogueEntryFor(type: string): EventCatalogueEntry | undefined {
  return EVENT_CATALOGUE.find((entry) => entry.matches(type));
}

/** The component / file name of a type's schema: `payment.paid` → `PaymentPaidEvent`. */
export function eventSchemaName(type: string): string {
  const words = type.replace(/[{}]/g, '').split(/[._]/).filter(Boolean);
  return `${words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join('')}Event`;
}

/** The file under schemas/events/ holding a type's JSON Schema. */
export function eventSchemaFile(type: string): string {
  return `${type.replace(/[{}]/g, '')}.json`;
}

export function eventEnvelope(entry: EventCatalogueEntry) {
  return z
    .object({
      id: z.string().regex(/^evt_[0-9a-f]{32}$/).describe('Stable on every retry and channel: de-duplicate on it'),
      type: entry.type.includes('{') ? z.string().regex(/^gocardless\.[a-z_]+\.[a-z_]+$/) : z.literal(entry.type),
      timestamp: isoDate.describe('When the change happened'),
      data: entry.data,
    })
    .describe(`${entry.summary}. ${entry.description}`);
}

/**
 * A type's whole event (envelope and `data`) as JSON Schema, draft 2020-12. Published
 * open (more fields are allowed: fields are only ever added); `closed` forbids any
 * field the schema does not name, which is how the tests catch an undocumented one.
 */
export function eventJsonSchema(type: string, options: { closed?: boolean } = {}): Record<string, unknown> {
  const entry = EVENT_CATALOGUE.find((candidate) => candidate.type === type);
  if (!entry) throw new Error(`no event type ${type} in the catalogue`);
  const schema = z.toJSONSchema(eventEnvelope(entry), {
    target: 'draft-2020-12',
    unrepresentable: 'any',
    io: options.closed ? 'output' : 'input',
  }) as Record<string, unknown>;
  return { ...schema, title: eventSchemaName(type) };
}
