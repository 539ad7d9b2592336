import { describe, expect, it } from 'vitest';
import { healthTransition, type AccountHealth } from '../../src/poller/health.js';
import { createTokenBucket } from '../../src/poller/rate-limiter.js';
import {
  POLL_SCHEDULE,
  backoffDelayMs,
  createSchedulePoll,
  expectedFinalBy,
  isStuck,
  nextPollAt,
  profileFor,
  timingFromSnapshot,
  type PaymentPace,
} from '../../src/poller/schedule.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const T0 = new Date('2026-03-02T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const MID = 0.5; // no jitter: the factor is exactly 1
const ideal: PaymentPace = { provider: 'mollie', providerStatus: 'open', method: 'ideal' };

describe('the poll schedule (data)', () => {
  it('follows Mollie expiry by method (docs/providers.md#mollie-expiry-times-by-method)', () => {
    const life = (method: string | null, providerStatus = 'open') => profileFor(POLL_SCHEDULE, { provider: 'mollie', providerStatus, method }).lifeMs;
    expect(life('ideal')).toBe(15 * M);
    expect(life('paysafecard')).toBe(15 * M);
    expect(life('creditcard')).toBe(30 * M);
    expect(life('giropay')).toBe(30 * M);
    expect(life('twint')).toBe(45 * M);
    expect(life('bancontact')).toBe(H);
    expect(life('przelewy24')).toBe(H);
    expect(life('sofort')).toBe(2 * H);
    expect(life('klarnapaylater')).toBe(48 * H);
    expect(life('in3')).toBe(48 * H);
    expect(life('paypal')).toBe(72 * H);
    expect(life('banktransfer')).toBe(14 * D);
    expect(life('directdebit')).toBeGreaterThan(5 * D);
    // Status first: an authorized card payment waits for capture, not for the card expiry.
    expect(life('creditcard', 'authorized')).toBeGreaterThan(7 * D);
    expect(profileFor(POLL_SCHEDULE, { provider: 'mollie', providerStatus: 'open', method: null })).toBe(POLL_SCHEDULE.providers.mollie.fallback);
    expect(profileFor(POLL_SCHEDULE, { provider: 'mollie', providerStatus: 'open', method: 'newfangled' })).toBe(POLL_SCHEDULE.providers.mollie.fallback);
  });

  it('paces GoCardless by status, slowly (webhooks report every transition)', () => {
    const first = (providerStatus: string) => profileFor(POLL_SCHEDULE, { provider: 'gocardless', providerStatus, method: 'sepa_core' }).firstMs;
    expect(first('pending_submission')).toBeGreaterThanOrEqual(H);
    expect(first('submitted')).toBeGreaterThanOrEqual(H);
    expect(first('confirmed')).toBeGreaterThanOrEqual(H);
  });

  it('backs off exponentially up to a ceiling', () => {
    const p = profileFor(POLL_SCHEDULE, ideal);
    const delays = [0, 1, 2, 3, 4, 10, 50].map((n) => backoffDelayMs(POLL_SCHEDULE, p, n, MID));
    expect(delays).toEqual([30 * S, 60 * S, 120 * S, 3 * M, 3 * M, 3 * M, 3 * M]);
  });

  it('jitters each delay within ±20%, never below the floor', () => {
    const p = profileFor(POLL_SCHEDULE, ideal);
    expect(backoffDelayMs(POLL_SCHEDULE, p, 0, 0)).toBe(24 * S);
    expect(backoffDelayMs(POLL_SCHEDULE, p, 0, 0.999999)).toBeLessThanOrEqual(36 * S);
    expect(backoffDelayMs(POLL_SCHEDULE, p, 0, 0.999999)).toBeGreaterThan(35 * S);
    const tiny = { ...p, firstMs: 10, maxMs: 10 };
    expect(backoffDelayMs(POLL_SCHEDULE, tiny, 0, 0)).toBe(POLL_SCHEDULE.minDelayMs);
    // Garbage randomness cannot make a delay negative or NaN.
    expect(backoffDelayMs(POLL_SCHEDULE, p, 0, Number.NaN)).toBe(30 * S);
    expect(backoffDelayMs(POLL_SCHEDULE, p, 0, -5)).toBe(24 * S);
  });

  it('stops polling a final payment, per provider', () => {
    expect(nextPollAt(POLL_SCHEDULE, { ...ideal, providerStatus: 'paid', attempts: 0, now: T0 }, MID)).toBeNull();
    expect(nextPollAt(POLL_SCHEDULE, { ...ideal, providerStatus: 'expired', attempts: 3, now: T0 }, MID)).toBeNull();
    expect(nextPollAt(POLL_SCHEDULE, { provider: 'gocardless', providerStatus: 'cancelled', method: null, attempts: 0, now: T0 }, MID)).toBeNull();
    // confirmed is not final at GoCardless: a late failure or a payout can still come.
    expect(nextPollAt(POLL_SCHEDULE, { provider: 'gocardless', providerStatus: 'confirmed', method: null, attempts: 0, now: T0 }, MID)).not.toBeNull();
  });

  it('pulls the next poll in to land just after the expected end', () => {
    const timing = { createdAt: T0 };
    // Created at T0; at T0+14min the backoff (3 min) would overshoot the 15 min expiry.
    const next = nextPollAt(POLL_SCHEDULE, { ...ideal, attempts: 6, now: at(14 * M), timing }, MID)!;
    expect(next.getTime()).toBe(at(15 * M + 30 * S).getTime());
    // Mollie's own expiresAt beats the table.
    const stated = nextPollAt(POLL_SCHEDULE, { ...ideal, attempts: 6, now: at(M), timing: { createdAt: T0, expiresAt: at(2 * M) } }, MID)!;
    expect(stated.getTime()).toBe(at(2 * M + 30 * S).getTime());
    // Past the end, plain backoff.
    const later = nextPollAt(POLL_SCHEDULE, { ...ideal, attempts: 6, now: at(20 * M), timing }, MID)!;
    expect(later.getTime()).toBe(at(23 * M).getTime());
  });

  it('caps the delay after a failure, and retries even a final payment a webhook asked about', () => {
    const bank: PaymentPace = { provider: 'mollie', providerStatus: 'open', method: 'banktransfer' };
    const normal = nextPollAt(POLL_SCHEDULE, { ...bank, attempts: 5, now: T0 }, MID)!;
    expect(normal.getTime() - T0.getTime()).toBe(12 * H);
    const failed = nextPollAt(POLL_SCHEDULE, { ...bank, attempts: 5, now: T0, failed: true }, MID)!;
    expect(failed.getTime() - T0.getTime()).toBe(POLL_SCHEDULE.failureMaxMs);
    expect(nextPollAt(POLL_SCHEDULE, { ...bank, providerStatus: 'paid', attempts: 1, now: T0, failed: true }, MID)).not.toBeNull();
  });

  it('the write hook schedules the first poll from the new state', () => {
    const hook = createSchedulePoll({ now: () => T0, random: () => MID });
    expect(hook(ideal)).toEqual(at(30 * S));
    expect(hook({ provider: 'mollie', providerStatus: 'open', method: 'banktransfer' })).toEqual(at(H));
    expect(hook({ ...ideal, providerStatus: 'paid' })).toBeNull();
  });

  it('knows when a payment is stuck: past its expected end plus grace, never when final', () => {
    const timing = { createdAt: T0 };
    expect(expectedFinalBy(POLL_SCHEDULE, ideal, timing)).toEqual(at(15 * M));
    expect(isStuck(POLL_SCHEDULE, ideal, timing, at(44 * M))).toBe(false);
    expect(isStuck(POLL_SCHEDULE, ideal, timing, at(45 * M))).toBe(true);
    expect(isStuck(POLL_SCHEDULE, { ...ideal, providerStatus: 'paid' }, timing, at(10 * D))).toBe(false);
    const bank: PaymentPace = { provider: 'mollie', providerStatus: 'open', method: 'banktransfer' };
    expect(isStuck(POLL_SCHEDULE, bank, timing, at(10 * D))).toBe(false);
    expect(isStuck(POLL_SCHEDULE, bank, timing, at(16 * D))).toBe(true);
  });

  it('counts GoCardless life from the charge date, and reads hints from stored snapshots', () => {
    const pending: PaymentPace = { provider: 'gocardless', providerStatus: 'pending_submission', method: 'sepa_core' };
    const timing = timingFromSnapshot('gocardless', 'pending_submission', T0, { charge_date: '2026-04-01' });
    expect(timing.chargeDate).toEqual(new Date('2026-04-01T00:00:00Z'));
    // Charged a month out: not stuck after a week.
    expect(isStuck(POLL_SCHEDULE, pending, timing, at(7 * D))).toBe(false);
    expect(isStuck(POLL_SCHEDULE, pending, { createdAt: T0 }, at(7 * D))).toBe(true);
    expect(timingFromSnapshot('mollie', 'open', T0, { expiresAt: '2026-03-02T10:15:00+00:00' }).expiresAt).toEqual(at(15 * M));
    expect(timingFromSnapshot('mollie', 'authorized', T0, { expiresAt: 'x', captureBefore: '2026-03-30T10:00:00Z' }).expiresAt).toEqual(at(28 * D));
    expect(timingFromSnapshot('mollie', 'open', T0, { expiresAt: 'not a date' }).expiresAt).toBeNull();
    expect(timingFromSnapshot('mollie', 'open', T0, null).expiresAt).toBeNull();
  });
});

describe('the health rule', () => {
  const healthy: AccountHealth = {
    provider: 'mollie',
    account: 'default',
    state: 'healthy',
    consecutiveFailures: 0,
    lastSuccessAt: T0,
    lastFailureAt: null,
    lastError: null,
    stateChangedAt: at(-D),
    pausedUntil: null,
  };
  const thresholds = { degradeAfterFailures: 5, degradeAfterMs: 15 * M };

  it('degrades after N failures in a row', () => {
    expect(healthTransition({ ...healthy, consecutiveFailures: 4 }, at(M), thresholds)).toBeNull();
    expect(healthTransition({ ...healthy, consecutiveFailures: 5 }, at(M), thresholds)).toBe('degrade');
  });

  it('degrades after two failures in a row and no success for T', () => {
    expect(healthTransition({ ...healthy, consecutiveFailures: 2 }, at(14 * M), thresholds)).toBeNull();
    expect(healthTransition({ ...healthy, consecutiveFailures: 2 }, at(15 * M), thresholds)).toBe('degrade');
    expect(healthTransition({ ...healthy, consecutiveFailures: 1 }, at(D), thresholds)).toBeNull();
    // Never succeeded (a revoked key from the start): counted from the row's creation.
    expect(healthTransition({ ...healthy, lastSuccessAt: null, consecutiveFailures: 2, stateChangedAt: T0 }, at(16 * M), thresholds)).toBe('degrade');
  });

  it('recovers only on a success after the episode began, and flips nothing twice', () => {
    const degraded: AccountHealth = { ...healthy, state: 'degraded', consecutiveFailures: 7, stateChangedAt: at(M) };
    expect(healthTransition(degraded, at(2 * M), thresholds)).toBeNull();
    expect(healthTransition({ ...degraded, consecutiveFailures: 0, lastSuccessAt: T0 }, at(2 * M), thresholds)).toBeNull();
    expect(healthTransition({ ...degraded, consecutiveFailures: 0, lastSuccessAt: at(90 * S) }, at(2 * M), thresholds)).toBe('recover');
  });
});

describe('the token bucket', () => {
  it('lets a burst through, then paces at the rate', async () => {
    let now = 0;
    const bucket = createTokenBucket({ ratePerSecond: 10, burst: 3, now: () => now });
    for (let i = 0; i < 3; i++) expect(await bucket.take('mollie:default')).toBe(true);
    expect(bucket.waitMs('mollie:default')).toBe(100);
    // Another account has a bucket of its own.
    expect(bucket.waitMs('mollie:other')).toBe(0);
    now += 50;
    expect(bucket.waitMs('mollie:default')).toBe(50);
    now += 50;
    expect(await bucket.take('mollie:default')).toBe(true);
    // Refill never exceeds the burst.
    now += 60_000;
    for (let i = 0; i < 3; i++) expect(await bucket.take('mollie:default')).toBe(true);
    expect(bucket.waitMs('mollie:default')).toBeGreaterThan(0);
  });

  it('waits for a token in real time and gives up when aborted', async () => {
    const bucket = createTokenBucket({ ratePerSecond: 20, burst: 1 });
    expect(await bucket.take('k')).toBe(true);
    const started = performance.now();
    expect(await bucket.take('k')).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(40);
    const controller = new AbortController();
    const pending = bucket.take('k', controller.signal);
    controller.abort();
    expect(await pending).toBe(false);
  });
});
