/** What to log or store for a caught value: an Error's message, anything else as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A transport failure with its system code: "fetch failed (ECONNREFUSED)" rather than a bare "fetch failed". */
export function describeTransportFailure(error: unknown): string {
  let message = errorMessage(error);
  let cause: unknown = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; cause && depth < 3; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return `${message} (${code})`;
    if (cause instanceof Error && cause.message) message = `${message}: ${cause.message}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return message;
}
