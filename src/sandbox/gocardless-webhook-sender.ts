/**
 * Sends webhooks the way GoCardless does (docs/providers.md#gocardless-webhook-request and
 * #gocardless-signature-responses-ordering), for tests, the local stack and replays:
 * - POST `{"events":[...],"meta":{"webhook_id":"WB..."}}`, at most 250 events a batch;
 * - headers Origin, User-Agent gocardless-webhook-service/1.2, Content-Type
 *   application/json and Webhook-Signature (hex HMAC-SHA256 of the exact body);
 * - anything but a 2xx within the timeout is a failure, redirects included (not followed);
 * - failures are retried on a schedule that is data: delays times a scale factor, so a
 *   test can replay GoCardless's minutes-to-hours schedule in milliseconds;
 * - optionally out of order and with duplicates, which GoCardless also does.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { signGoCardlessBody } from '../providers/gocardless/signature.js';

/** The largest batch GoCardless sends [S]. */
export const GOCARDLESS_MAX_BATCH_SIZE = 250;
export const GOCARDLESS_WEBHOOK_USER_AGENT = 'gocardless-webhook-service/1.2';
export const GOCARDLESS_SANDBOX_ORIGIN = 'https://api-sandbox.gocardless.com';

/**
 * "Up to 8 times at increasing intervals e.g. 1 minute, 2 minutes, 10 minutes etc."
 * (GoCardless support article). Only the first three delays are published; the
 * rest are an assumption [U] that keeps the curve increasing.
 */
export const GOCARDLESS_WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [
  60_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000,
];
/** By default the schedule runs 1000 times faster: 60 ms, 120 ms, 600 ms, ... (about 81 s in all). */
export const DEFAULT_WEBHOOK_RETRY_SCALE = 0.001;

export interface WebhookRetrySchedule {
  /** Delay before retry n (n = 1..length); its length is the number of retries. */
  delaysMs: readonly number[];
  /** Multiplies every delay. */
  scale?: number;
}

/** An event as sent: GoCardless's fields, passed through untouched. */
export type WebhookEventPayload = { id: string } & Record<string, unknown>;

export interface SendGoCardlessWebhooksOptions {
  url: string;
  secret: string;
  events: readonly WebhookEventPayload[];
  /** Events per webhook, 1..250 (default 250). */
  batchSize?: number;
  /** 'as_given' (default), 'reverse', or 'shuffle' (events across batches, using `random`). */
  order?: 'as_given' | 'reverse' | 'shuffle';
  /** Probability (0..1) that each event is sent again, in an extra webhook after the originals. */
  duplicateRate?: number;
  /** Events always sent twice (in an extra webhook), for deterministic duplicate tests. */
  duplicateEventIds?: readonly string[];
  /** Retry schedule; `false` sends each webhook once. */
  retry?: WebhookRetrySchedule | false;
  /** Webhooks in flight at once (default 1: one after another). */
  concurrency?: number;
  /** How long the receiver has to answer (GoCardless: 10 s). */
  timeoutMs?: number;
  origin?: string;
  /** Sign with this secret instead (a wrong signature on purpose). */
  signWith?: string;
  omitSignature?: boolean;
  /** Overrides the body after signing (tests a tampered body). */
  tamperBody?: (body: string) => string;
  random?: () => number;
  fetcher?: typeof fetch;
  /** Stops waiting between retries and aborts the request in flight. */
  signal?: AbortSignal;
  newWebhookId?: () => string;
  /** Called after every attempt, e.g. to log or to count. */
  onAttempt?: (report: WebhookAttemptReport, batch: { webhookId: string; eventIds: readonly string[] }) => void;
}

export interface WebhookAttemptReport {
  /** 0 for the first send, n for retry n. */
  attempt: number;
  /** HTTP status, or null when there was no response (network error, timeout). */
  status: number | null;
  error?: string;
  startedAt: Date;
  durationMs: number;
}

export interface WebhookBatchReport {
  webhookId: string;
  eventIds: string[];
  /** True for the extra webhooks that carry duplicates. */
  duplicate: boolean;
  body: string;
  attempts: WebhookAttemptReport[];
  delivered: boolean;
  /** The last attempt's status. */
  status: number | null;
}

export interface SendGoCardlessWebhooksReport {
  batches: WebhookBatchReport[];
  /** Every batch got a 2xx eventually. */
  delivered: boolean;
  durationMs: number;
}

/** Deterministic PRNG (mulberry32) so a shuffled or duplicated delivery can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function newGoCardlessWebhookId(): string {
  return `WB${randomBytes(8).toString('hex').toUpperCase().slice(0, 12)}`;
}

/** The scaled delays, in order: element n-1 is the wait before retry n. */
export function webhookRetryDelays(schedule: WebhookRetrySchedule | false | undefined): number[] {
  if (schedule === false) return [];
  const { delaysMs, scale = DEFAULT_WEBHOOK_RETRY_SCALE } = schedule ?? { delaysMs: GOCARDLESS_WEBHOOK_RETRY_DELAYS_MS };
  return delaysMs.map((delay) => Math.max(0, Math.round(delay * scale)));
}

export interface BuiltGoCardlessWebhook {
  webhookId: string;
  body: string;
  headers: Record<string, string>;
}

/** The exact request GoCardless would send for these events. */
export function buildGoCardlessWebhook(
  events: readonly WebhookEventPayload[],
  secret: string,
  options: { webhookId?: string; origin?: string; signWith?: string; omitSignature?: boolean; tamperBody?: (body: string) => string } = {},
): BuiltGoCardlessWebhook {
  const webhookId = options.webhookId ?? newGoCardlessWebhookId();
  const signedBody = JSON.stringify({ events, meta: { webhook_id: webhookId } });
  const headers: Record<string, string> = {
    Origin: options.origin ?? GOCARDLESS_SANDBOX_ORIGIN,
    'User-Agent': GOCARDLESS_WEBHOOK_USER_AGENT,
    'Content-Type': 'application/json',
  };
  if (!options.omitSignature) headers['Webhook-Signature'] = signGoCardlessBody(signedBody, options.signWith ?? secret);
  const body = options.tamperBody ? options.tamperBody(signedBody) : signedBody;
  return { webhookId, body, headers };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

async function attemptOnce(
  fetcher: typeof fetch,
  url: string,
  request: BuiltGoCardlessWebhook,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ status: number | null; error?: string }> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const response = await fetcher(url, { method: 'POST', headers: request.headers, body: request.body, redirect: 'manual', signal: combined });
    // Drain so the connection can be reused; the content is not GoCardless's concern.
    await response.arrayBuffer().catch(() => undefined);
    return { status: response.status };
  } catch (error) {
    if (timeout.aborted && !signal?.aborted) return { status: null, error: `no response within ${timeoutMs} ms` };
    const message = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    return { status: null, error: message };
  }
}

/**
 * Sends the events in batches and retries each failed batch on the schedule.
 * Resolves when every batch was delivered or ran out of retries (or `signal` aborted).
 */
export async function sendGoCardlessWebhooks(options: SendGoCardlessWebhooksOptions): Promise<SendGoCardlessWebhooksReport> {
  const startedAt = Date.now();
  const batchSize = options.batchSize ?? GOCARDLESS_MAX_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > GOCARDLESS_MAX_BATCH_SIZE) {
    throw new RangeError(`batchSize must be an integer from 1 to ${GOCARDLESS_MAX_BATCH_SIZE}, got ${batchSize}`);
  }
  const duplicateRate = options.duplicateRate ?? 0;
  if (!(duplicateRate >= 0 && duplicateRate <= 1)) throw new RangeError(`duplicateRate must be within 0..1, got ${duplicateRate}`);
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
  const random = options.random ?? Math.random;
  const fetcher: typeof fetch = options.fetcher ?? ((input, init) => globalThis.fetch(input, init));
  const delays = webhookRetryDelays(options.retry);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const newId = options.newWebhookId ?? newGoCardlessWebhookId;

  const ordered = [...options.events];
  if (options.order === 'reverse') ordered.reverse();
  else if (options.order === 'shuffle') shuffle(ordered, random);

  const alwaysDuplicate = new Set(options.duplicateEventIds ?? []);
  const duplicates = ordered.filter((event) => alwaysDuplicate.has(event.id) || (duplicateRate > 0 && random() < duplicateRate));
  if (options.order === 'shuffle') shuffle(duplicates, random);

  const plans = [
    ...chunk(ordered, batchSize).map((events) => ({ events, duplicate: false })),
    ...chunk(duplicates, batchSize).map((events) => ({ events, duplicate: true })),
  ];
  const jobs = plans.map(({ events, duplicate }) => {
    const request = buildGoCardlessWebhook(events, options.secret, {
      webhookId: newId(),
      ...(options.origin !== undefined && { origin: options.origin }),
      ...(options.signWith !== undefined && { signWith: options.signWith }),
      ...(options.omitSignature !== undefined && { omitSignature: options.omitSignature }),
      ...(options.tamperBody !== undefined && { tamperBody: options.tamperBody }),
    });
    const report: WebhookBatchReport = {
      webhookId: request.webhookId,
      eventIds: events.map((event) => event.id),
      duplicate,
      body: request.body,
      attempts: [],
      delivered: false,
      status: null,
    };
    return { request, report };
  });

  async function deliver(request: BuiltGoCardlessWebhook, report: WebhookBatchReport): Promise<void> {
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (attempt > 0) {
        try {
          await sleep(delays[attempt - 1]!, undefined, options.signal ? { signal: options.signal } : undefined);
        } catch {
          return; // aborted while waiting
        }
      }
      if (options.signal?.aborted) return;
      const attemptStarted = new Date();
      const outcome = await attemptOnce(fetcher, options.url, request, timeoutMs, options.signal);
      const attemptReport: WebhookAttemptReport = {
        attempt,
        status: outcome.status,
        ...(outcome.error !== undefined && { error: outcome.error }),
        startedAt: attemptStarted,
        durationMs: Date.now() - attemptStarted.getTime(),
      };
      report.attempts.push(attemptReport);
      report.status = outcome.status;
      options.onAttempt?.(attemptReport, { webhookId: report.webhookId, eventIds: report.eventIds });
      if (outcome.status !== null && outcome.status >= 200 && outcome.status < 300) {
        report.delivered = true;
        return;
      }
    }
  }

  // A shared cursor over the jobs: at most `concurrency` webhooks are in flight.
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, jobs.length) }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      await deliver(job.request, job.report);
    }
  });
  await Promise.all(workers);

  const batches = jobs.map((job) => job.report);
  return { batches, delivered: batches.every((batch) => batch.delivered), durationMs: Date.now() - startedAt };
}
