/**
 * Pure parsing of what arrives at POST /webhooks/mollie. Two shapes share the route:
 * classic form posts (`id=tr_...`, no signature, no status: the id is only a hint to
 * fetch) and next-gen JSON events (signed; verify the signature over the raw bytes
 * BEFORE calling this). Nothing here trusts the body beyond its shape.
 */
import { z } from 'zod';
import { jsonShapeProblem } from '../json-shape.js';

const RESOURCE_ID = /^[a-z]+_[A-Za-z0-9]+$/;
const MAX_ID_LENGTH = 64;
// Mollie's schema only says ^event_.+$; printable ASCII keeps the dedupe key safe to log and index.
const EVENT_ID = /^event_[\x21-\x7e]+$/;
const MAX_EVENT_ID_LENGTH = 128;

const resourceIdSchema = z
  .string()
  .max(MAX_ID_LENGTH, { error: `must be at most ${MAX_ID_LENGTH} characters` })
  .regex(RESOURCE_ID, { error: 'must look like a Mollie id such as tr_5B8cwPMGnU6qLbRvo7qEZo' });

/** The body of a next-gen webhook: an event object, like GET /v2/events/{id} returns. */
const eventBodySchema = z.object({
  resource: z.literal('event', { error: 'must be "event"' }),
  id: z
    .string({ error: 'is required' })
    .max(MAX_EVENT_ID_LENGTH, { error: `must be at most ${MAX_EVENT_ID_LENGTH} characters` })
    .regex(EVENT_ID, { error: 'must look like event_...' }),
  type: z.string({ error: 'is required' }).min(1, { error: 'must not be empty' }).max(100),
  entityId: resourceIdSchema,
  createdAt: z.string().optional(),
  // Snapshot mode embeds the entity; simple mode leaves `_embedded` absent or null.
  _embedded: z.object({ entity: z.unknown().optional() }).nullable().optional(),
});

export const mollieWebhookSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('classic'), id: resourceIdSchema }),
  z.object({
    kind: z.literal('event'),
    eventId: z.string(),
    type: z.string(),
    entityId: resourceIdSchema,
    entity: z.unknown().optional(),
  }),
  z.object({ kind: z.literal('invalid'), message: z.string() }),
]);
export type MollieWebhook = z.infer<typeof mollieWebhookSchema>;

export type MollieIdKind = 'payment' | 'refund' | 'chargeback' | 'other';

export function idPrefixKind(id: string): MollieIdKind {
  if (id.startsWith('tr_')) return 'payment';
  if (id.startsWith('re_')) return 'refund';
  if (id.startsWith('chb_')) return 'chargeback';
  return 'other';
}

function invalid(message: string): MollieWebhook {
  return { kind: 'invalid', message };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join('.')} ${issue.message}` : issue.message))
    .join('; ');
}

function mediaTypeOf(contentType: string | undefined | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || /^application\/[\w.-]+\+json$/.test(mediaType);
}

function parseClassic(text: string): MollieWebhook {
  const ids = new URLSearchParams(text).getAll('id');
  if (ids.length === 0 || ids.every((id) => id === '')) return invalid('form body has no id parameter (expected id=tr_...)');
  if (ids.length > 1) return invalid('form body has more than one id parameter');
  const parsed = resourceIdSchema.safeParse(ids[0]);
  if (!parsed.success) return invalid(`id ${describeIssues(parsed.error)}`);
  return { kind: 'classic', id: parsed.data };
}

function parseEvent(text: string, rawBody: Uint8Array): MollieWebhook {
  // Depth and string lengths first, on the bytes: a hostile body never reaches JSON.parse.
  const shape = jsonShapeProblem(rawBody);
  if (shape !== null) return invalid(`JSON body refused before parsing: ${shape}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return invalid(`body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return invalid('JSON body must be an object (a Mollie event)');
  }
  const parsed = eventBodySchema.safeParse(json);
  if (!parsed.success) return invalid(`JSON body is not a Mollie event: ${describeIssues(parsed.error)}`);
  const event = parsed.data;
  const entity = event._embedded?.entity;
  return {
    kind: 'event',
    eventId: event.id,
    type: event.type,
    entityId: event.entityId,
    ...(entity !== undefined && entity !== null ? { entity } : {}),
  };
}

/**
 * Classify and validate a delivery. Never throws: anything malformed comes back as
 * `{kind: 'invalid', message}` with a message fit for a 4xx body or a log line.
 */
export function parseMollieWebhook(contentType: string | undefined | null, rawBody: Uint8Array): MollieWebhook {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(rawBody);
  } catch {
    return invalid('body is not valid UTF-8');
  }
  if (text.trim() === '') return invalid('body is empty (expected id=tr_... or a JSON event)');

  let mediaType = mediaTypeOf(contentType);
  if (mediaType === '') {
    // Mollie always sends a content type; tolerate its absence by looking at the body.
    mediaType = text.trimStart().startsWith('{') ? 'application/json' : 'application/x-www-form-urlencoded';
  }
  if (mediaType === 'application/x-www-form-urlencoded') return parseClassic(text);
  if (isJsonMediaType(mediaType)) return parseEvent(text, rawBody);
  return invalid(
    `unsupported content type ${JSON.stringify(mediaType)}: expected application/x-www-form-urlencoded (classic) or application/json (event)`,
  );
}
