import pino, { type Logger } from 'pino';

/** Keys whose values may carry secrets; replaced before a line is written. */
const SENSITIVE_KEYS: ReadonlySet<string> = new Set(['authorization', 'apiKey', 'accessToken', 'secret', 'password']);
export const REDACTED = '[redacted]';

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hasOwn(value: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(value, key);
}

/** `value` with its sensitive keys (and `headers.authorization`) replaced; `value` itself when it has none. */
function censorNested(value: Fields): Fields {
  let changes: Fields | null = null;
  for (const key in value) {
    if (!hasOwn(value, key) || !SENSITIVE_KEYS.has(key)) continue;
    (changes ??= {})[key] = REDACTED;
  }
  const headers = value.headers;
  if (isObject(headers) && hasOwn(headers, 'authorization')) (changes ??= {}).headers = { ...headers, authorization: REDACTED };
  if (changes === null) return value;
  if (!(value instanceof Error)) return { ...value, ...changes };
  // A spread would lose an error's class, message and stack: copy it property by property.
  const copy = Object.create(Object.getPrototypeOf(value) as object) as Fields;
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(value));
  for (const [key, replacement] of Object.entries(changes)) {
    Object.defineProperty(copy, key, { value: replacement, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/**
 * Replaces secrets in a log line's fields, at the top level and one level down (plus
 * `headers.authorization` one level down), the same places the gateway's fields can
 * carry them. Copies only what it changes: a line without secrets (every request's
 * line) is passed through untouched, allocating nothing. pino's `redact` option does the
 * same job by cloning every nested value of every line through a path matcher, which
 * at webhook rates was ~9% of all the gateway's allocation (bench/RESULTS.md).
 */
export function censorSecrets(fields: Fields): Fields {
  let out: Fields | null = null;
  for (const key in fields) {
    if (!hasOwn(fields, key)) continue;
    const value = fields[key];
    let next = value;
    if (SENSITIVE_KEYS.has(key)) next = REDACTED;
    else if (isObject(value)) next = censorNested(value);
    if (next === value) continue;
    out ??= { ...fields };
    out[key] = next;
  }
  return out ?? fields;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const logger = pino({ level, base: undefined, formatters: { log: censorSecrets } }, destination);
  // pino applies no formatter to a child's bindings, so they pass through censorSecrets on
  // the way in. Children inherit this method from the root, so grandchildren do too.
  const child = logger.child as unknown as (this: Logger, bindings: Fields, options?: pino.ChildLoggerOptions) => Logger;
  logger.child = function censoredChild(this: Logger, bindings: Fields, options?: pino.ChildLoggerOptions) {
    return child.call(this, censorSecrets(bindings), options);
  } as unknown as Logger['child'];
  return logger;
}

export type { Logger };
