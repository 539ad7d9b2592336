/**
 * `GET /v2/payments/:id` without the SDK: the one Mollie call on a webhook's hot path.
 *
 * The SDK validates every answer against its full generated schema (zod v3, unions tried
 * branch by branch) and copies each request and response once more on the way; on a
 * webhook that was most of the gateway's CPU spent on Mollie (bench/RESULTS.md has the
 * A/B). Here the body is checked for exactly the fields the mapping reads, and the rest
 * is kept as Mollie sent it for `mollieRawWithoutPersonalData`'s allow-list.
 *
 * The outcomes are the SDK path's, by construction and by test
 * (tests/unit/mollie-direct-get.test.ts maps every payload both ways):
 * - 200 → the payment; 404/410 → not found;
 * - 429 → `rate_limited` at once, with its Retry-After (never retried here);
 * - 401/403 → `unauthorized`; other 4xx, a non-JSON or off-schema body → `bad_response`;
 * - 5xx and connection failures → retried on the same backoff as the SDK's
 *   (MOLLIE_DEFAULT_RETRY), then `unavailable`; a timed-out attempt → `timeout`.
 * Every other Mollie call (lists, refunds, chargebacks, identity) stays on the SDK.
 */
import { z } from 'zod';
import { sleep } from '../../abortable-sleep.js';
import { callDeadline } from '../../call-deadline.js';
import { describeTransportFailure } from '../../primitives/error-message.js';
import { parseRetryAfter } from '../../primitives/retry-after.js';
import type { PlainGet, PlainResponse } from '../plain-get.js';
import { ProviderError } from '../types.js';
import type { MolliePayment } from './mapping.js';

export interface MollieBackoff {
  initialInterval: number;
  maxInterval: number;
  exponent: number;
  maxElapsedTime: number;
}

export interface DirectPaymentGetConfig {
  /** Origin of the API, without /v2. */
  serverURL: string;
  /** The transport: `fetch` anywhere, Node's own http on Node (src/providers/plain-get*.ts). */
  get: PlainGet;
  /** Per attempt. */
  timeoutMs: number;
  /** Null: one attempt only. */
  backoff: MollieBackoff | null;
  random?: () => number;
}

export type DirectGetResult = { kind: 'found'; payment: MolliePayment } | { kind: 'not_found' };

const money = z.object({ value: z.string(), currency: z.string() });

/** What the mapping reads; every other field passes through untouched. */
const paymentBody = z.looseObject({
  id: z.string(),
  mode: z.string(),
  status: z.string(),
  amount: money,
  amountRefunded: money.optional(),
  amountChargedBack: money.optional(),
  method: z.string().nullable().optional(),
  metadata: z.unknown().optional(),
  createdAt: z.string(),
});

const fail = (code: ProviderError['code'], message: string, retryable: boolean, retryAfterMs?: number, cause?: unknown) =>
  new ProviderError('mollie', code, message, retryable, retryAfterMs, cause === undefined ? undefined : { cause });

/** Mollie's problem+json `title: detail`, or the status text. */
function problemDetail(body: string, statusText: string): string {
  try {
    const problem = JSON.parse(body) as { title?: unknown; detail?: unknown };
    if (typeof problem.detail === 'string') return `${String(problem.title ?? '')}: ${problem.detail}`.replace(/^: /, '');
  } catch {
    // not JSON: the status line says what there is to say
  }
  return statusText || 'no detail';
}

/** A failure worth another attempt: a 5xx answer or no answer at all. */
class Retryable extends Error {
  constructor(readonly failure: ProviderError) {
    super(failure.message);
  }
}

export function createDirectPaymentGet(config: DirectPaymentGetConfig) {
  const base = `${config.serverURL}/v2/payments/`;
  const random = config.random ?? Math.random;

  async function attempt(bearer: string, paymentId: string, signal: AbortSignal | undefined): Promise<DirectGetResult> {
    const deadline = callDeadline(config.timeoutMs, signal);
    let response: PlainResponse;
    try {
      response = await config.get(base + paymentId, { authorization: `Bearer ${bearer}`, accept: 'application/hal+json' }, deadline.signal);
    } catch (error) {
      if (signal?.aborted) throw fail('timeout', 'Mollie request aborted by the caller', true, undefined, signal.reason);
      if (deadline.timedOut) throw new Retryable(fail('timeout', 'Mollie request timed out', true));
      // The cause is a transport error (it holds no request headers): safe to keep.
      throw new Retryable(fail('unavailable', `cannot reach Mollie: ${describeTransportFailure(error)}`, true, undefined, error));
    } finally {
      deadline.end();
    }
    const { status, body } = response;
    if (status === 200) {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw fail('bad_response', 'Mollie response did not match the expected schema: the body is not JSON', false);
      }
      const parsed = paymentBody.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw fail('bad_response', `Mollie response did not match the expected schema: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`, false);
      }
      return { kind: 'found', payment: parsed.data as unknown as MolliePayment };
    }
    if (status === 404 || status === 410) return { kind: 'not_found' };
    const detail = problemDetail(body, response.statusText);
    if (status === 429) throw fail('rate_limited', `Mollie rate limit: ${detail}`, true, parseRetryAfter(response.header('retry-after'), Date.now()));
    if (status === 401 || status === 403) throw fail('unauthorized', `Mollie rejected the API key (${status}): ${detail}`, false);
    if (status === 408) throw fail('timeout', `Mollie answered 408: ${detail}`, true);
    if (status >= 500) throw new Retryable(fail('unavailable', `Mollie answered ${status}: ${detail}`, true));
    throw fail('bad_response', `unexpected Mollie response ${status}: ${detail}`, false);
  }

  /** The payment, or not found; throws ProviderError. */
  return async function getPayment(bearer: string, paymentId: string, signal?: AbortSignal): Promise<DirectGetResult> {
    const backoff = config.backoff;
    const start = Date.now();
    for (let retries = 0; ; retries++) {
      try {
        return await attempt(bearer, paymentId, signal);
      } catch (error) {
        if (!(error instanceof Retryable)) throw error;
        // The SDK's schedule: retry until maxElapsedTime has passed, then give up.
        if (!backoff || Date.now() - start > backoff.maxElapsedTime) throw error.failure;
        const wait = Math.min(backoff.initialInterval * Math.pow(retries, backoff.exponent) + random() * 1000, backoff.maxInterval);
        await sleep(wait, signal);
        if (signal?.aborted) throw fail('timeout', 'Mollie request aborted by the caller', true, undefined, signal.reason);
      }
    }
  };
}
