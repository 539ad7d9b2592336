import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from './body-limit.js';
import { AppError, toErrorResponse } from './errors.js';

/**
 * A bound on the request bodies anonymous callers can make the gateway hold at once.
 * The webhook routes read a whole body before they can check its signature, so without
 * it a few hundred sockets that each announce a large body and trickle it (or stop one
 * byte short) hold gigabytes until the server's request timeout. One per process (per
 * isolate on Workers): every unauthenticated body reserves its size here before a byte
 * of it is read, and gives it back when its request is done.
 */
export interface BodyBudget {
  /** Reserves `bytes`; null when that would pass the budget (the caller refuses the request). */
  reserve(bytes: number): (() => void) | null;
  readonly inFlight: number;
  readonly limit: number;
}

export function createBodyBudget(limit: number): BodyBudget {
  let inFlight = 0;
  return {
    reserve(bytes) {
      if (inFlight + bytes > limit) return null;
      inFlight += bytes;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        inFlight -= bytes;
      };
    },
    get inFlight() {
      return inFlight;
    },
    limit,
  };
}

export interface BodyGuardOptions {
  budget: BodyBudget;
  /** This route's largest legitimate body. */
  maxBytes: number;
  /** How long the whole body may take to arrive once the headers are in. */
  timeoutMs: number;
  /** The answer to a body over maxBytes (routes count it their own way). */
  onTooLarge: (c: Context) => Response | Promise<Response>;
  /** Called with the outcome of each refusal, for metrics. */
  onRefused?: (reason: 'busy' | 'body_timeout') => void;
}

/** Seconds a refused caller is told to wait: about as long as a held body can last. */
function retryAfterSeconds(timeoutMs: number): string {
  return String(Math.max(1, Math.ceil(timeoutMs / 1000)));
}

/**
 * Reserve → read within the timeout → handle → release. The size is reserved from the
 * declared Content-Length (a chunked body reserves the route's maximum), so a refusal
 * costs nothing but the headers; the body is read here, under a deadline, into hono's
 * body cache, where the handler's own `c.req.arrayBuffer()` finds it. A refused or timed
 * out request is answered with `Connection: close`: @hono/node-server then drains the
 * unread rest briefly and closes the socket, so nothing stays held.
 */
export function bodyGuard(options: BodyGuardOptions): MiddlewareHandler {
  const limit = bodyLimit({ maxSize: options.maxBytes, onError: options.onTooLarge });
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD' || c.req.method === 'OPTIONS') return next();
    const length = c.req.header('content-length');
    const chunked = length === undefined || c.req.header('transfer-encoding') !== undefined;
    const declared = chunked ? options.maxBytes : Number(length);
    if (!Number.isFinite(declared) || declared > options.maxBytes) return options.onTooLarge(c);

    const release = options.budget.reserve(declared);
    if (!release) {
      options.onRefused?.('busy');
      c.header('Retry-After', retryAfterSeconds(options.timeoutMs));
      c.header('Connection', 'close');
      return toErrorResponse(
        new AppError('busy', 'too many request bodies in flight; retry after the Retry-After delay', true),
        c,
      );
    }
    try {
      return await limit(c, async () => {
        await readBodyWithin(c, options);
        await next();
      });
    } finally {
      release();
    }
  };
}

async function readBodyWithin(c: Context, options: BodyGuardOptions): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.timeoutMs)));
  const read = c.req.arrayBuffer();
  try {
    const outcome = await Promise.race([read, timedOut]);
    if (outcome === 'timeout') {
      // The pending read is left to fail when the socket closes; nothing waits on it.
      read.catch(() => {});
      options.onRefused?.('body_timeout');
      c.header('Connection', 'close');
      throw new AppError('body_timeout', `the request body did not arrive within ${options.timeoutMs} ms`);
    }
  } finally {
    clearTimeout(timer);
  }
}
