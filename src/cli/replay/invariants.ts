/**
 * What must hold after any replay, whatever order, timing or duplication the webhooks
 * arrived in (DESIGN.md, guarantees 1-6), judged from the gateway's own API. Pure: the
 * caller fetches, these functions only look.
 */
import { MOLLIE_RANK } from '../../payments/status-rules.js';
import type { FeedEvent, GatewayPayment } from './gateway-api.js';
import type { Expectation } from './records.js';

export interface CheckResult {
  violations: string[];
  warnings: string[];
  /** Events that repeat an event id, a (payment, version, type) triple, or a forwarded provider event. */
  duplicates: number;
}

export interface PaymentObservation {
  provider: string;
  id: string;
  payment: GatewayPayment | null;
  /** The payment's events in feed order. */
  events: FeedEvent[];
  /** Where the provider ended, when the run knows it. */
  expected?: Expectation;
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** Payment change events; `payment.stuck` carries the current version but is not a change. */
function changeEvents(events: FeedEvent[]): FeedEvent[] {
  return events.filter((event) => event.type.startsWith('payment.') && event.type !== 'payment.stuck' && typeof event.data.version === 'number');
}

export function checkPayment(observation: PaymentObservation): CheckResult {
  const { provider, id, payment, events, expected } = observation;
  const label = `${provider} ${id}`;
  const violations: string[] = [];
  const warnings: string[] = [];
  let duplicates = 0;

  if (expected) {
    if (!payment) {
      violations.push(`${label}: the provider has this payment and webhooks about it were acknowledged, but the gateway has no payment`);
    } else {
      if (payment.providerStatus !== expected.providerStatus) {
        violations.push(`${label}: the provider ended at ${expected.providerStatus}, the gateway has ${payment.providerStatus}`);
      }
      if (expected.refundedMinor !== undefined && payment.amountRefunded && payment.amountRefunded.minor !== expected.refundedMinor) {
        violations.push(`${label}: refunded ${expected.refundedMinor} (minor units) at the provider, ${payment.amountRefunded.minor} at the gateway`);
      }
      if (expected.chargedBackMinor !== undefined && payment.amountChargedBack && payment.amountChargedBack.minor !== expected.chargedBackMinor) {
        violations.push(`${label}: charged back ${expected.chargedBackMinor} at the provider, ${payment.amountChargedBack.minor} at the gateway`);
      }
    }
  }

  const seenIds = new Set<string>();
  for (const event of events) {
    if (seenIds.has(event.id)) {
      duplicates++;
      violations.push(`${label}: event ${event.id} is served twice by the feed`);
    }
    seenIds.add(event.id);
  }

  const changes = changeEvents(events);
  if (!payment) {
    if (changes.length > 0) violations.push(`${label}: ${changes.length} events for a payment the gateway does not have`);
    return { violations, warnings, duplicates };
  }
  if (changes.length === 0) {
    violations.push(`${label}: the payment is at version ${payment.version} but the feed has no event for it`);
    return { violations, warnings, duplicates };
  }

  // Exactly one event per change: the (payment, version, type) triple is unique.
  const byVersion = new Map<number, FeedEvent[]>();
  const triples = new Set<string>();
  for (const event of changes) {
    const version = event.data.version as number;
    const triple = `${version}:${event.type}`;
    if (triples.has(triple)) {
      duplicates++;
      violations.push(`${label}: two ${event.type} events for version ${version} (a change announced twice)`);
    }
    triples.add(triple);
    byVersion.set(version, [...(byVersion.get(version) ?? []), event]);
  }

  // Versions count changes from 1 with no gap, and end where the payment is.
  const versions = [...byVersion.keys()].sort((a, b) => a - b);
  const last = versions.at(-1)!;
  const missing = Array.from({ length: last }, (_, i) => i + 1).filter((version) => !byVersion.has(version));
  if (missing.length > 0) violations.push(`${label}: no event for version(s) ${missing.join(', ')} of ${last}`);
  if (last !== payment.version) violations.push(`${label}: the payment is at version ${payment.version}, its events end at version ${last}`);

  // The feed is ordered by commit, not by version; consumers order by version (README, Format).
  const feedVersions = changes.map((event) => event.data.version as number);
  if (feedVersions.some((version, i) => i > 0 && version < feedVersions[i - 1]!)) {
    warnings.push(`${label}: the feed serves versions ${feedVersions.join(',')} (not in version order; consumers must order by version)`);
  }

  // Each change continues from the one before it, and (Mollie) never goes down the lattice.
  let previous: { status: string | null; providerStatus: string | null } | null = null;
  for (const version of versions) {
    const group = byVersion.get(version)!;
    const first = group[0]!.data;
    const status = str(first.status);
    const providerStatus = str(first.providerStatus);
    if (group.some((event) => event.data.status !== status || event.data.providerStatus !== providerStatus)) {
      violations.push(`${label}: the events of version ${version} disagree on the status`);
    }
    const previousStatus = str(first.previousStatus);
    if (version === 1 && previousStatus !== null) {
      violations.push(`${label}: version 1 has a previous status (${previousStatus})`);
    }
    if (previous && byVersion.has(version - 1)) {
      if (previousStatus !== previous.status || str(first.previousProviderStatus) !== previous.providerStatus) {
        violations.push(
          `${label}: version ${version} says it came from ${previousStatus}/${String(first.previousProviderStatus)}, version ${version - 1} was ${previous.status}/${previous.providerStatus}`,
        );
      }
      if (provider === 'mollie' && status && previous.status) {
        const from = MOLLIE_RANK[previous.status];
        const to = MOLLIE_RANK[status];
        if (from !== undefined && to !== undefined && (to < from || (to === from && status !== previous.status))) {
          violations.push(`${label}: status went ${previous.status} → ${status} at version ${version} (a regression)`);
        }
      }
    }
    previous = { status, providerStatus };
  }
  if (previous && (previous.status !== payment.status || previous.providerStatus !== payment.providerStatus)) {
    violations.push(`${label}: the last event says ${previous.status}/${previous.providerStatus}, the payment is ${payment.status}/${payment.providerStatus}`);
  }
  return { violations, warnings, duplicates };
}

/** Every non-payment GoCardless event replayed is forwarded exactly once (dedupe key gocardless:event:<id>). */
export function checkForwarded(eventIds: readonly string[], feed: readonly FeedEvent[]): CheckResult {
  const counts = new Map<string, number>();
  for (const event of feed) {
    const eventId = str(event.data.eventId);
    if (event.type.startsWith('gocardless.') && eventId) counts.set(eventId, (counts.get(eventId) ?? 0) + 1);
  }
  const violations: string[] = [];
  let duplicates = 0;
  for (const id of new Set(eventIds)) {
    const count = counts.get(id) ?? 0;
    if (count === 0) violations.push(`gocardless event ${id}: acknowledged but never forwarded`);
    if (count > 1) {
      duplicates += count - 1;
      violations.push(`gocardless event ${id}: forwarded ${count} times`);
    }
  }
  return { violations, warnings: [], duplicates };
}

/** Does the gateway's payment show this provider state? */
export function matchesExpectation(payment: GatewayPayment | null, expected: Expectation): boolean {
  if (!payment || payment.providerStatus !== expected.providerStatus) return false;
  if (expected.refundedMinor !== undefined && payment.amountRefunded && payment.amountRefunded.minor !== expected.refundedMinor) return false;
  if (expected.chargedBackMinor !== undefined && payment.amountChargedBack && payment.amountChargedBack.minor !== expected.chargedBackMinor) return false;
  return true;
}

/** Has the gateway caught up with this payment: the provider's end state, and events up to its version? */
export function isSettled(observation: PaymentObservation): boolean {
  const { payment, expected, events } = observation;
  if (expected && !matchesExpectation(payment, expected)) return false;
  if (!payment) return true;
  // An event becomes visible a moment after its change commits (the pull API waits for older transactions).
  const lastVersion = Math.max(0, ...changeEvents(events).map((event) => event.data.version as number));
  return lastVersion >= payment.version;
}
