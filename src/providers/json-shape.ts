/**
 * Limits on a JSON body's shape, checked on the raw bytes BEFORE JSON.parse. A body can
 * be signed and still hostile (a leaked secret, a compromised sender) or just broken:
 * 1.9 million nested arrays in 3.8 MB parse into an object graph that exhausts the heap,
 * 5,000 levels overflow the stacks of the code that walks or stores it, and a 1 MB id
 * passes every check until Postgres refuses its index row. One linear pass over the
 * bytes, with constant memory, refuses all of them with a reason (a 400), so no such
 * body is parsed, stored or retried into a 5xx.
 */

export interface JsonShapeLimits {
  /** Deepest nesting of objects and arrays; the outer object is depth 1. */
  maxDepth: number;
  /** Longest string (or key), in bytes as sent, escapes included. */
  maxStringBytes: number;
}

/** Webhook bodies: GoCardless events nest 5 deep, Mollie's embedded payments about 6. */
export const WEBHOOK_JSON_LIMITS: JsonShapeLimits = { maxDepth: 32, maxStringBytes: 16 * 1024 };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Null when the bytes stay inside the limits, else why not. Syntax is not checked here
 * (JSON.parse does that next); only what could make parsing or storing the body costly.
 */
export function jsonShapeProblem(bytes: Uint8Array, limits: JsonShapeLimits = WEBHOOK_JSON_LIMITS): string | null {
  let depth = 0;
  let inString = false;
  let escaped = false;
  let stringStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (byte === BACKSLASH) escaped = true;
      else if (byte === QUOTE) inString = false;
      else if (i - stringStart > limits.maxStringBytes) {
        return `a string starting at byte ${stringStart} is longer than ${limits.maxStringBytes} bytes`;
      }
      continue;
    }
    if (byte === QUOTE) {
      inString = true;
      stringStart = i;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth++;
      if (depth > limits.maxDepth) return `nested deeper than ${limits.maxDepth} levels (at byte ${i})`;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return null;
}
