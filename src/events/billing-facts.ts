/**
 * What billing acts on, read from a provider snapshot's (personal-data-free) raw payment:
 * why it failed, what it belongs to, and how it was paid. Pure; tested with fixtures.
 *
 * Failure reasons are normalised into one small vocabulary so dunning rules can be
 * written once; the provider's own code and message travel alongside, verbatim.
 */
import type { ProviderName } from '../providers/types.js';

export const FAILURE_REASONS = [
  'insufficient_funds',
  'declined',
  'authentication_failed',
  'instrument_expired',
  'invalid_details',
  'account_closed',
  'mandate_invalid',
  'disputed',
  'suspected_fraud',
  'canceled_by_payer',
  'other',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface BillingLinks {
  customer: string | null;
  mandate: string | null;
  subscription: string | null;
  order: string | null;
  settlement: string | null;
  payout: string | null;
  creditor: string | null;
}

export interface BillingFacts {
  description: string | null;
  method: string | null;
  sequenceType: 'oneoff' | 'first' | 'recurring' | null;
  failureReason: FailureReason | null;
  failureCode: string | null;
  failureMessage: string | null;
  links: BillingLinks;
}

/** A failure the snapshot itself does not carry (GoCardless puts it on the event). */
export interface FailureHint {
  code: string;
  message: string | null;
}

/** Mollie card `details.failureReason` values. */
const MOLLIE_CARD_REASONS: Record<string, FailureReason> = {
  insufficient_funds: 'insufficient_funds',
  card_declined: 'declined',
  refused_by_issuer: 'declined',
  inactive_card: 'declined',
  card_expired: 'instrument_expired',
  invalid_card_number: 'invalid_details',
  invalid_cvv: 'invalid_details',
  invalid_card_holder_name: 'invalid_details',
  invalid_card_type: 'invalid_details',
  authentication_abandoned: 'authentication_failed',
  authentication_failed: 'authentication_failed',
  authentication_required: 'authentication_failed',
  authentication_unavailable_acs: 'authentication_failed',
  possible_fraud: 'suspected_fraud',
  unknown_reason: 'other',
};

/** SEPA return reason codes (ISO 20022), as Mollie's `details.bankReasonCode` carries them. */
const SEPA_REASON_CODES: Record<string, FailureReason> = {
  AM04: 'insufficient_funds',
  AC04: 'account_closed',
  AC01: 'invalid_details',
  AC06: 'invalid_details',
  AG01: 'invalid_details',
  BE05: 'invalid_details',
  MD01: 'mandate_invalid',
  MD02: 'mandate_invalid',
  MD07: 'mandate_invalid',
  MD06: 'disputed',
  SL01: 'declined',
  MS02: 'declined',
  MS03: 'declined',
};

/** GoCardless `details.cause` values (the key GoCardless says to switch on). */
const GOCARDLESS_CAUSES: Record<string, FailureReason> = {
  insufficient_funds: 'insufficient_funds',
  refer_to_payer: 'declined',
  bank_account_closed: 'account_closed',
  bank_account_transferred: 'invalid_details',
  invalid_bank_details: 'invalid_details',
  mandate_cancelled: 'mandate_invalid',
  mandate_expired: 'mandate_invalid',
  mandate_suspended_by_payer: 'mandate_invalid',
  authorisation_disputed: 'disputed',
  payment_cancelled: 'canceled_by_payer',
};

const text = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

function sequenceType(value: unknown): BillingFacts['sequenceType'] {
  return value === 'oneoff' || value === 'first' || value === 'recurring' ? value : null;
}

function mollieFacts(raw: Record<string, unknown>): BillingFacts {
  const details = (raw.details ?? {}) as Record<string, unknown>;
  const cardReason = text(details.failureReason);
  const bankCode = text(details.bankReasonCode);
  const failureCode = cardReason ?? bankCode;
  const failureReason = cardReason ? (MOLLIE_CARD_REASONS[cardReason] ?? 'other') : bankCode ? (SEPA_REASON_CODES[bankCode] ?? 'other') : null;
  return {
    description: text(raw.description),
    method: text(raw.method),
    sequenceType: sequenceType(raw.sequenceType),
    failureReason,
    failureCode,
    failureMessage: text(details.failureMessage) ?? text(details.bankReason),
    links: {
      customer: text(raw.customerId),
      mandate: text(raw.mandateId),
      subscription: text(raw.subscriptionId),
      order: text(raw.orderId),
      settlement: text(raw.settlementId),
      payout: null,
      creditor: null,
    },
  };
}

function gocardlessFacts(raw: Record<string, unknown>, hint: FailureHint | null): BillingFacts {
  const links = (raw.links ?? {}) as Record<string, unknown>;
  const subscription = text(links.subscription);
  return {
    description: text(raw.description),
    method: text(raw.scheme),
    // Every GoCardless payment is collected under a mandate; one of a subscription recurs.
    sequenceType: subscription ? 'recurring' : null,
    failureReason: hint ? (GOCARDLESS_CAUSES[hint.code] ?? 'other') : null,
    failureCode: hint?.code ?? null,
    failureMessage: hint?.message ?? null,
    links: {
      customer: null,
      mandate: text(links.mandate),
      subscription,
      order: null,
      settlement: null,
      payout: text(links.payout),
      creditor: text(links.creditor),
    },
  };
}

export function billingFacts(provider: ProviderName, raw: Record<string, unknown>, hint: FailureHint | null = null): BillingFacts {
  switch (provider) {
    case 'mollie':
      return mollieFacts(raw);
    case 'gocardless':
      return gocardlessFacts(raw, hint);
    default: {
      const unreachable: never = provider;
      throw new Error(`no billing facts for provider ${String(unreachable)}`);
    }
  }
}
