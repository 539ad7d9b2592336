/**
 * Parsing of a GoCardless webhook body (docs/providers.md#gocardless-webhook-request):
 * `{"events":[...], "meta":{"webhook_id":"WB..."}}`. Pure: call it only after the signature over the
 * raw bytes has been verified (signature.ts). Unknown fields are kept so the raw
 * events can be stored and forwarded as GoCardless sent them.
 */
import { z } from 'zod';
import { jsonShapeProblem } from '../json-shape.js';

/**
 * `metadata` and `resource_metadata` are JSON objects. Some re-serialisers (PHP)
 * turn an empty object into `[]`; that is accepted as `{}` rather than rejecting
 * the whole batch, because a rejected batch is retried by GoCardless forever.
 */
const jsonObject = z.preprocess(
  (value) => (Array.isArray(value) && value.length === 0 ? {} : value),
  z.record(z.string(), z.unknown()),
);

/** GoCardless ids are ~14 characters; a bound keeps every stored id (and its index row) small. */
const MAX_ID_LENGTH = 128;

const requiredString = (field: string) =>
  z
    .string({ error: `missing "${field}" (expected a non-empty string)` })
    .min(1, `"${field}" is empty`)
    .max(MAX_ID_LENGTH, `"${field}" is longer than ${MAX_ID_LENGTH} characters`);

export const goCardlessEventSchema = z.looseObject({
  id: requiredString('id'),
  created_at: requiredString('created_at'),
  resource_type: requiredString('resource_type'),
  action: requiredString('action'),
  /** Ids of the resources involved; only the relevant keys are present. */
  links: z
    .record(z.string().max(MAX_ID_LENGTH), z.string().max(MAX_ID_LENGTH, `a link id is longer than ${MAX_ID_LENGTH} characters`), {
      error: '"links" must be an object of string ids',
    })
    .default({}),
  details: z
    .looseObject({
      origin: z.string().optional(),
      cause: z.string().optional(),
      description: z.string().optional(),
      scheme: z.string().nullable().optional(),
      reason_code: z.string().nullable().optional(),
      will_attempt_retry: z.boolean().optional(),
      not_retried_reason: z.string().nullable().optional(),
    })
    .default({}),
  metadata: jsonObject.default({}),
  resource_metadata: jsonObject.optional(),
});

/** One GoCardless event, with any fields this schema does not name kept as sent. */
export type GoCardlessEvent = z.infer<typeof goCardlessEventSchema>;

const batchSchema = z.looseObject({
  events: z.array(z.unknown(), { error: 'missing "events" array' }),
  meta: z.looseObject({ webhook_id: z.string().optional() }).optional(),
});

export type ParsedGoCardlessBatch =
  | { ok: true; events: GoCardlessEvent[]; webhookId?: string }
  | { ok: false; message: string };

function describeIssues(prefix: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('');
      return `${prefix}${path}: ${issue.message}`;
    })
    .join('; ');
}

/** U+0000 and unpaired surrogates: JSON can carry them as escapes, Postgres text and jsonb cannot. */
// eslint-disable-next-line no-control-regex -- matching U+0000 is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Where in a parsed body a string (or key) holds text Postgres refuses, or null. Every
 * event is stored (receipt, outbox), so such a batch could only fail later, as a 500 or
 * a receipt that never settles; refusing it up front says why. Iterative: bodies can
 * nest deeper than the call stack.
 */
function unstorableTextAt(root: unknown): string | null {
  // Each entry keeps its parent, so a path is spelled out only for the culprit.
  interface Entry { value: unknown; key: string | number | null; parent: Entry | null }
  const pathOf = (entry: Entry): string => {
    const parts: string[] = [];
    for (let at: Entry | null = entry; at && at.key !== null; at = at.parent) parts.push(typeof at.key === 'number' ? `[${at.key}]` : `.${at.key}`);
    return `webhook body${parts.reverse().join('')}`;
  };
  const stack: Entry[] = [{ value: root, key: null, parent: null }];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    const { value } = entry;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) return pathOf(entry);
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => stack.push({ value: item, key: index, parent: entry }));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (UNSTORABLE.test(key)) return `${pathOf(entry)} (a key)`;
        stack.push({ value: item, key, parent: entry });
      }
    }
  }
  return null;
}

/**
 * Every event must be well-formed or the batch is refused: the caller answers
 * 4xx, GoCardless retries, and nothing half-understood is acknowledged.
 */
export function parseGoCardlessBatch(raw: Uint8Array | string): ParsedGoCardlessBatch {
  let text: string;
  try {
    text = typeof raw === 'string' ? raw : new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return { ok: false, message: 'webhook body is not valid UTF-8' };
  }

  // Depth and string lengths first, on the bytes: a hostile body never reaches JSON.parse.
  const shape = jsonShapeProblem(typeof raw === 'string' ? new TextEncoder().encode(raw) : raw);
  if (shape !== null) return { ok: false, message: `webhook body refused before parsing: ${shape}` };

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `webhook body is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, message: 'webhook body must be a JSON object with an "events" array' };
  }
  const unstorable = unstorableTextAt(json);
  if (unstorable !== null) {
    return { ok: false, message: `${unstorable} holds text that cannot be stored (a \\u0000 or an unpaired surrogate)` };
  }

  const batch = batchSchema.safeParse(json);
  if (!batch.success) return { ok: false, message: describeIssues('webhook body', batch.error) };

  const events: GoCardlessEvent[] = [];
  const problems: string[] = [];
  batch.data.events.forEach((candidate, index) => {
    if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
      problems.push(`events[${index}]: expected an object`);
      return;
    }
    const parsed = goCardlessEventSchema.safeParse(candidate);
    if (parsed.success) {
      events.push(parsed.data);
      return;
    }
    const id = (candidate as { id?: unknown }).id;
    const label = typeof id === 'string' && id !== '' ? `events[${index}] (${id})` : `events[${index}]`;
    problems.push(describeIssues(label, parsed.error));
  });
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };

  const webhookId = batch.data.meta?.webhook_id;
  return webhookId === undefined ? { ok: true, events } : { ok: true, events, webhookId };
}

/**
 * Webhooks and event pages arrive in no guaranteed order
 * (docs/providers.md#gocardless-signature-responses-ordering): sort by `created_at`, then
 * by id so equal timestamps still sort the same way every time. Returns a new array.
 */
export function sortGoCardlessEvents<T extends Pick<GoCardlessEvent, 'id' | 'created_at'>>(events: readonly T[]): T[] {
  return [...events].sort((a, b) => {
    const byTime = Date.parse(a.created_at) - Date.parse(b.created_at);
    if (byTime !== 0 && !Number.isNaN(byTime)) return byTime;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}
