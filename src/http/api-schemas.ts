/**
 * The zod schemas of the HTTP API's shapes. Routes validate requests with them and the
 * OpenAPI document (GET /openapi.json) is generated from the same objects, so the two
 * cannot drift. `.meta({ id })` makes a schema a named component of the document.
 */
import { z } from 'zod';
import { PAYMENT_STATUSES, PROVIDERS } from '../providers/types.js';

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Machine-readable code, e.g. `bad_request`, `not_found`, `payment_busy`' }),
      message: z.string(),
      retryable: z.boolean().meta({ description: 'Whether the same request can succeed later (5xx ones carry `Retry-After`)' }),
      requestId: z.string().optional().meta({ description: 'Also in the `x-request-id` response header' }),
      details: z.unknown().optional().meta({ description: 'For validation errors: `[{path, message}]`' }),
    }),
  })
  .meta({ id: 'Error', description: 'Every error, on every route' });

export const Money = z
  .object({
    value: z.string().meta({ description: 'Decimal string in the currency\'s precision, e.g. "49.95"' }),
    currency: z.string().meta({ description: 'ISO 4217 code' }),
    minor: z.number().int().meta({ description: 'Integer minor units (cents); never a float' }),
  })
  .meta({ id: 'Money' });

export const ProviderName = z.enum(PROVIDERS).meta({ id: 'Provider' });
export const PaymentStatus = z
  .enum(PAYMENT_STATUSES)
  .meta({ id: 'PaymentStatus', description: 'Normalised status, the same for every provider' });

const isoDate = z.string().meta({ format: 'date-time' });

export const Payment = z
  .object({
    provider: ProviderName,
    id: z.string().meta({ description: "The provider's payment id (tr_…, PM…)" }),
    account: z.string(),
    status: PaymentStatus,
    providerStatus: z.string().meta({ description: "The provider's own status, verbatim" }),
    amount: Money,
    amountRefunded: Money,
    amountChargedBack: Money,
    mode: z.string().nullable().meta({ description: '`live` or `test`; null when unknown' }),
    method: z.string().nullable(),
    metadata: z.unknown().meta({ description: 'As the merchant set it at the provider' }),
    version: z.number().int().meta({ description: 'Increases by one per real change' }),
    createdAt: isoDate,
    updatedAt: isoDate,
    lastSyncedAt: isoDate.nullable(),
    providerCreatedAt: isoDate.nullable(),
    nextPollAt: isoDate.nullable(),
  })
  .meta({ id: 'Payment' });

export const OutboundEventEnvelope = z
  .object({
    id: z.string().meta({ description: 'evt_…; stable across retries and channels: de-duplicate on it' }),
    type: z.string().meta({ description: 'See the webhooks section for every type and its `data`' }),
    timestamp: isoDate,
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'Event', description: 'An outbound event; its `data` per type is described in the document\'s `webhooks` section' });

export const DeadLetter = z
  .object({
    id: z.number().int(),
    eventId: z.string(),
    type: z.string(),
    sink: z.object({ id: z.string(), kind: z.string(), target: z.string(), disabled: z.boolean() }),
    provider: z.string().nullable(),
    paymentId: z.string().nullable(),
    version: z.number().int().nullable(),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    lastAttemptAt: isoDate.nullable(),
    deadLetteredAt: isoDate,
    event: OutboundEventEnvelope,
  })
  .meta({ id: 'DeadLetter' });

export const EventSink = z
  .object({
    id: z.string().meta({ description: 'snk_…' }),
    kind: z.string(),
    target: z.string().meta({ description: 'URL without credentials or query, or the stream name' }),
    disabledAt: isoDate.nullable(),
    disabledReason: z.string().nullable(),
    pending: z.number().int(),
    deadLetters: z.number().int(),
  })
  .meta({ id: 'EventSink' });

/** `{data, nextCursor}`: nextCursor is null when there is no next page (the event feed's never is). */
export function pageOf<T extends z.ZodType>(item: T, nextCursor: z.ZodType = z.string().nullable()) {
  return z.object({ data: z.array(item), nextCursor });
}

export const PAYMENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const SINK_ID = /^snk_[0-9a-f]{16}$/;
