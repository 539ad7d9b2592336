/**
 * When to poll a payment that is not final yet, and when it has been open for too long.
 * The schedule is data (POLL_SCHEDULE); the functions below are pure: time and
 * randomness come in as arguments, so every case is a unit test.
 *
 * Each payment gets a profile, picked by provider, then provider status, then method:
 * - `firstMs`, `factor`, `maxMs`: the delay after the n-th poll that found nothing new is
 *   min(maxMs, firstMs * factor^n), with ±`jitter` so polls of payments created together
 *   spread out instead of arriving at the provider in bursts.
 * - `lifeMs`: how long the provider normally needs to make such a payment final, from
 *   its creation (GoCardless: from the later of creation and charge date). A deadline the
 *   provider states itself (Mollie's `expiresAt`, `captureBefore`) replaces it.
 * - `graceMs`: past the expected end plus this, the payment is stuck and is escalated once.
 * Just before the expected end the next poll is pulled in to land right after it, so an
 * expiry is seen within `firstMs` even when the backoff had grown long.
 */
import { isFinal } from '../payments/status-rules.js';
import type { ProviderName } from '../providers/types.js';

export interface PollProfile {
  /** Shown in logs and the README table. */
  label: string;
  firstMs: number;
  factor: number;
  maxMs: number;
  lifeMs: number;
  graceMs: number;
}

export interface ProviderPollRules {
  /** Checked first: some statuses (Mollie `authorized`, every GoCardless status) set the pace whatever the method. */
  byStatus: Readonly<Record<string, PollProfile>>;
  byMethod: Readonly<Record<string, PollProfile>>;
  fallback: PollProfile;
}

export interface PollSchedule {
  /** Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: number;
  /** No delay is shorter than this, jitter included. */
  minDelayMs: number;
  /**
   * After a failed poll (provider down, key revoked) the payment's delay is capped
   * here, so the poller notices a recovery (and counts failures toward "degraded")
   * within minutes even for payments whose normal pace is hours.
   */
  failureMaxMs: number;
  /** A payment whose lock another trigger holds is looked at again after this. */
  busyRetryMs: number;
  providers: Readonly<Record<ProviderName, ProviderPollRules>>;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function profile(label: string, p: Omit<PollProfile, 'label' | 'factor'> & { factor?: number }): PollProfile {
  return { label, factor: 2, ...p };
}

function each(methods: string[], value: PollProfile): Record<string, PollProfile> {
  return Object.fromEntries(methods.map((method) => [method, value]));
}

// Mollie's expiry times by method: docs/providers.md#mollie-expiry-times-by-method (status-changes.rst, 2024).
const MOLLIE_15_MIN = profile('mollie 15 min (iDEAL, paysafecard)', { firstMs: 30 * SECOND, maxMs: 3 * MINUTE, lifeMs: 15 * MINUTE, graceMs: 30 * MINUTE });
const MOLLIE_30_MIN = profile('mollie 30 min (card, Giropay)', { firstMs: MINUTE, maxMs: 5 * MINUTE, lifeMs: 30 * MINUTE, graceMs: 30 * MINUTE });
const MOLLIE_45_MIN = profile('mollie 45 min (MyBank, Twint)', { firstMs: MINUTE, maxMs: 10 * MINUTE, lifeMs: 45 * MINUTE, graceMs: 30 * MINUTE });
const MOLLIE_1_H = profile('mollie 1 h (Bancontact, Belfius, EPS, KBC, Przelewy24)', { firstMs: 2 * MINUTE, maxMs: 10 * MINUTE, lifeMs: HOUR, graceMs: HOUR });
const MOLLIE_2_H = profile('mollie 2 h (SOFORT, vouchers)', { firstMs: 2 * MINUTE, maxMs: 15 * MINUTE, lifeMs: 2 * HOUR, graceMs: HOUR });
const MOLLIE_48_H = profile('mollie 48 h (Klarna, in3)', { firstMs: 5 * MINUTE, maxMs: HOUR, lifeMs: 48 * HOUR, graceMs: 12 * HOUR });
const MOLLIE_72_H = profile('mollie 72 h (PayPal)', { firstMs: 5 * MINUTE, maxMs: HOUR, lifeMs: 72 * HOUR, graceMs: 12 * HOUR });
const MOLLIE_BANK_TRANSFER = profile('mollie 12 (+2) days (bank transfer)', { firstMs: HOUR, maxMs: 12 * HOUR, lifeMs: 14 * DAY, graceMs: 2 * DAY });
// [U] SEPA Direct Debit via Mollie: pending for about five business days, can still fail after.
const MOLLIE_DIRECT_DEBIT = profile('mollie SEPA Direct Debit [U]', { firstMs: HOUR, maxMs: 12 * HOUR, lifeMs: 10 * DAY, graceMs: 4 * DAY });
// [U] An authorization waits for the merchant's capture; Mollie states captureBefore when it knows.
const MOLLIE_AUTHORIZED = profile('mollie authorized, awaiting capture [U]', { firstMs: 15 * MINUTE, maxMs: 6 * HOUR, lifeMs: 28 * DAY, graceMs: DAY });
// No method chosen yet (or one not listed): Mollie's expiresAt, when present, gives the real end.
const MOLLIE_OTHER = profile('mollie other or no method', { firstMs: MINUTE, maxMs: 30 * MINUTE, lifeMs: 72 * HOUR, graceMs: 12 * HOUR });

// [U] GoCardless Direct Debit timings (typical SEPA/Bacs cycles; no published figures found:
// docs/providers.md#gocardless-payment-statuses-and-events): webhooks report every transition,
// so polling is the slow backstop.
const GC_APPROVAL = profile('gocardless pending_customer_approval [U]', { firstMs: 15 * MINUTE, maxMs: 6 * HOUR, lifeMs: 7 * DAY, graceMs: DAY });
const GC_PENDING_SUBMISSION = profile('gocardless pending_submission (until the charge date) [U]', { firstMs: HOUR, maxMs: 12 * HOUR, lifeMs: DAY, graceMs: 2 * DAY });
const GC_SUBMITTED = profile('gocardless submitted [U]', { firstMs: HOUR, maxMs: 6 * HOUR, lifeMs: 5 * DAY, graceMs: 2 * DAY });
const GC_CONFIRMED = profile('gocardless confirmed, awaiting payout [U]', { firstMs: 2 * HOUR, maxMs: 12 * HOUR, lifeMs: 10 * DAY, graceMs: 4 * DAY });
const GC_OTHER = profile('gocardless other [U]', { firstMs: HOUR, maxMs: 12 * HOUR, lifeMs: 14 * DAY, graceMs: 2 * DAY });

export const POLL_SCHEDULE: PollSchedule = {
  jitter: 0.2,
  minDelayMs: SECOND,
  failureMaxMs: 5 * MINUTE,
  busyRetryMs: 5 * SECOND,
  providers: {
    mollie: {
      byStatus: { authorized: MOLLIE_AUTHORIZED },
      byMethod: {
        ...each(['ideal', 'paysafecard'], MOLLIE_15_MIN),
        ...each(['creditcard', 'giropay', 'applepay', 'googlepay'], MOLLIE_30_MIN),
        ...each(['mybank', 'twint'], MOLLIE_45_MIN),
        ...each(['bancontact', 'belfius', 'eps', 'kbc', 'przelewy24'], MOLLIE_1_H),
        ...each(['sofort', 'voucher'], MOLLIE_2_H),
        ...each(['klarna', 'klarnapaylater', 'klarnapaynow', 'klarnasliceit', 'in3'], MOLLIE_48_H),
        ...each(['paypal'], MOLLIE_72_H),
        ...each(['banktransfer'], MOLLIE_BANK_TRANSFER),
        ...each(['directdebit'], MOLLIE_DIRECT_DEBIT),
      },
      fallback: MOLLIE_OTHER,
    },
    gocardless: {
      byStatus: {
        pending_customer_approval: GC_APPROVAL,
        pending_submission: GC_PENDING_SUBMISSION,
        submitted: GC_SUBMITTED,
        confirmed: GC_CONFIRMED,
      },
      byMethod: {},
      fallback: GC_OTHER,
    },
  },
};

export interface PaymentPace {
  provider: ProviderName;
  providerStatus: string;
  method: string | null;
}

/** What the stored payment says about its own timing. */
export interface PaymentTiming {
  /** The provider's creation time, or when the gateway first saw the payment. */
  createdAt: Date;
  /** A deadline the provider stated (Mollie `expiresAt` / `captureBefore`). */
  expiresAt?: Date | null;
  /** GoCardless `charge_date`: nothing settles before it. */
  chargeDate?: Date | null;
}

export function profileFor(schedule: PollSchedule, pace: PaymentPace): PollProfile {
  const rules = schedule.providers[pace.provider];
  return rules.byStatus[pace.providerStatus] ?? (pace.method ? rules.byMethod[pace.method] : undefined) ?? rules.fallback;
}

/** The backoff delay after `attempts` polls that found nothing new (0: right after a change). */
export function backoffDelayMs(schedule: PollSchedule, p: PollProfile, attempts: number, random: number): number {
  const base = Math.min(p.maxMs, p.firstMs * p.factor ** Math.max(0, attempts));
  const jittered = base * (1 - schedule.jitter + 2 * schedule.jitter * clamp01(random));
  return Math.max(schedule.minDelayMs, Math.round(jittered));
}

/** When the provider is expected to have made the payment final. */
export function expectedFinalBy(schedule: PollSchedule, pace: PaymentPace, timing: PaymentTiming): Date {
  if (timing.expiresAt) return timing.expiresAt;
  const anchor = Math.max(timing.createdAt.getTime(), timing.chargeDate?.getTime() ?? 0);
  return new Date(anchor + profileFor(schedule, pace).lifeMs);
}

/** Past its expected end plus the grace: time to tell someone. Never for a final payment. */
export function isStuck(schedule: PollSchedule, pace: PaymentPace, timing: PaymentTiming, now: Date): boolean {
  if (isFinal(pace.provider, pace.providerStatus)) return false;
  const end = expectedFinalBy(schedule, pace, timing).getTime();
  return now.getTime() >= end + profileFor(schedule, pace).graceMs;
}

export interface NextPollInput extends PaymentPace {
  /** Polls in a row that found nothing new (0 right after a change). */
  attempts: number;
  now: Date;
  /** Without timing the expiry alignment is skipped (the write hook knows only the snapshot). */
  timing?: PaymentTiming;
  /** The last poll failed: cap the delay at `failureMaxMs`, and retry even a final payment. */
  failed?: boolean;
}

/**
 * When to poll next; null once the payment is final (nothing left to wait for), unless
 * the poll failed: a final payment is polled when a webhook asked for another look
 * (a refund on a paid payment), and that look has not happened yet.
 * `random` is a number in [0, 1) (Math.random in production, fixed in tests).
 */
export function nextPollAt(schedule: PollSchedule, input: NextPollInput, random: number): Date | null {
  if (!input.failed && isFinal(input.provider, input.providerStatus)) return null;
  const p = profileFor(schedule, input);
  let delay = backoffDelayMs(schedule, p, input.attempts, random);
  if (input.failed) delay = Math.min(delay, Math.max(schedule.minDelayMs, schedule.failureMaxMs));
  const now = input.now.getTime();
  if (input.timing) {
    // Land just after the expected end rather than a long backoff past it.
    const end = expectedFinalBy(schedule, input, input.timing).getTime();
    const afterEnd = end + Math.min(p.firstMs, delay);
    if (end > now && afterEnd < now + delay) delay = afterEnd - now;
  }
  return new Date(now + Math.max(schedule.minDelayMs, delay));
}

/**
 * The `schedulePoll` hook of SyncDeps: every write of a non-final payment schedules its
 * first poll from the new state (attempts 0).
 */
export function createSchedulePoll(options: { schedule?: PollSchedule; now?: () => Date; random?: () => number } = {}) {
  const schedule = options.schedule ?? POLL_SCHEDULE;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  return (pace: PaymentPace): Date | null => nextPollAt(schedule, { ...pace, attempts: 0, now: now() }, random());
}

/** The timing hints a stored snapshot carries, read defensively (the snapshot is the provider's JSON). */
export function timingFromSnapshot(
  provider: ProviderName,
  providerStatus: string,
  createdAt: Date,
  snapshot: { expiresAt?: unknown; captureBefore?: unknown; charge_date?: unknown } | null,
): PaymentTiming {
  switch (provider) {
    case 'mollie': {
      const stated = providerStatus === 'authorized' ? snapshot?.captureBefore : snapshot?.expiresAt;
      return { createdAt, expiresAt: parseDate(stated) };
    }
    case 'gocardless':
      return { createdAt, chargeDate: parseDate(snapshot?.charge_date) };
    default: {
      const unreachable: never = provider;
      throw new Error(`unknown provider ${String(unreachable)}`);
    }
  }
}

function parseDate(value: unknown): Date | null {
  if (typeof value !== 'string' || value === '') return null;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : new Date(at);
}

function clamp01(value: number): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0.5;
}
