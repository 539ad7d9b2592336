/**
 * A Retry-After header (RFC 9110 §10.2.3) as milliseconds from `nowMs`: delay-seconds
 * (digits only) or an HTTP date, a date already past being 0. Anything else (absent,
 * "-5", "1.5", "soon") is no hint at all: undefined, so the caller's own schedule
 * applies. No cap here: each caller caps what it honours (sinks at a day, provider
 * pauses at their own maximum).
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names its weekday and month; anything without a letter (e.g. "-5",
  // which Date.parse reads as a year) is not one.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
