import { formatMinorUnits } from '../money.js';

/** `2025-11-22 11:22:03.123` (UTC): sortable, and precise enough to order a race. */
export function formatInstant(value: Date): string {
  return value.toISOString().replace('T', ' ').replace('Z', '');
}

/** A span for people: `840 ms`, `4.2 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`;
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  const seconds = Math.floor(abs / 1000);
  if (seconds < 3600) return `${sign}${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86_400) return `${sign}${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${sign}${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}

/** `5 s ago` or `in 2 min 3 s`. */
export function formatRelative(value: Date, now: Date): string {
  const delta = now.getTime() - value.getTime();
  return delta >= 0 ? `${formatDuration(delta)} ago` : `in ${formatDuration(-delta)}`;
}

export function formatMoney(minor: number, currency: string): string {
  try {
    return `${formatMinorUnits(minor, currency)} ${currency}`;
  } catch {
    return `${minor} (minor units) ${currency}`;
  }
}
