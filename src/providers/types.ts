import type { AccountCredentials } from '../accounts/credentials.js';

/**
 * The provider port. Every way of learning a payment's state (webhook, poll,
 * return-page sync, sweep, replay) ends in `PaymentProvider.fetchPayment`,
 * whose answer is the only thing the gateway ever writes from.
 */

export const PROVIDERS = ['mollie', 'gocardless'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export function isProviderName(value: string): value is ProviderName {
  return (PROVIDERS as readonly string[]).includes(value);
}

/** Normalised statuses, shared by every provider. */
export const PAYMENT_STATUSES = [
  'open',
  'pending',
  'authorized',
  'paid',
  'canceled',
  'expired',
  'failed',
  'charged_back',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** Money in the currency's minor units (cents, yen, fils). Never a float. */
export interface Money {
  minor: number;
  currency: string;
}

/**
 * A refund's status, normalised across providers (Mollie's own names; GoCardless's mapped
 * onto them: see each mapping). In order: a refund moves forward through these, never back
 * (the rank that guards it is the provider status's, see payments/adjustment-rules.ts).
 */
export const REFUND_STATUSES = ['queued', 'pending', 'processing', 'refunded', 'failed', 'canceled'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

/** A chargeback is received, and may later be reversed (Mollie `reversedAt`). */
export const CHARGEBACK_STATUSES = ['received', 'reversed'] as const;
export type ChargebackStatus = (typeof CHARGEBACK_STATUSES)[number];

/** One refund of a payment, as the provider reported it on this fetch. */
export interface RefundItem {
  /** Mollie re_…, GoCardless RF… */
  id: string;
  amount: Money;
  status: RefundStatus;
  /** The provider's own status string, verbatim. */
  providerStatus: string;
  createdAt: Date | null;
}

/** One chargeback of a payment (Mollie chb_…; GoCardless has no chargeback resource). */
export interface ChargebackItem {
  id: string;
  amount: Money;
  status: ChargebackStatus;
  providerStatus: string;
  createdAt: Date | null;
  reversed: boolean;
}

/** An authoritative view of one payment, as the provider's API returned it. */
export interface PaymentSnapshot {
  provider: ProviderName;
  account: string;
  providerPaymentId: string;
  /** The provider's own status string, kept verbatim. */
  providerStatus: string;
  status: PaymentStatus;
  amount: Money;
  /** Same currency as `amount`; 0 when the provider reports nothing. */
  refundedMinor: number;
  chargedBackMinor: number;
  mode: 'live' | 'test' | null;
  method: string | null;
  metadata: unknown;
  providerCreatedAt: Date | null;
  /**
   * The payment's refunds and chargebacks, when this fetch looked at them. Absent or
   * empty means none seen on this fetch, never "removed": an item once stored is only
   * ever moved forward (payments/adjustment-rules.ts), so a fetch that skipped the lists
   * (GoCardless without refunded amounts) changes nothing.
   */
  refunds?: RefundItem[];
  chargebacks?: ChargebackItem[];
  /** What the provider returned, minus personal data the gateway does not need. */
  raw: Record<string, unknown>;
}

export type FetchResult =
  | { kind: 'found'; snapshot: PaymentSnapshot }
  | { kind: 'not_found' };

export interface FetchOptions {
  /** Aborted when the caller gives up (shutdown, lost lock, deadline). */
  signal?: AbortSignal;
  /**
   * The trigger was about a refund or chargeback (a GoCardless refund event): list the
   * payment's refunds even when its amounts would not say so (a bounced refund's amount
   * is no longer counted as refunded).
   */
  adjustments?: boolean;
}

export interface PaymentProvider {
  readonly name: ProviderName;
  /**
   * The accounts configured into this client itself ('default', the env-var account).
   * Stored accounts are not among them: whether one exists is the account registry's
   * answer (src/accounts/registry.ts, webhooks/accounts.ts resolveAccount).
   */
  hasAccount(account: string): boolean;
  fetchPayment(account: string, providerPaymentId: string, options?: FetchOptions): Promise<FetchResult>;
}

/**
 * A provider call that failed. `retryable` says whether trying again later can help
 * (timeouts, 429, 5xx); `retryAfterMs` carries the provider's own hint when it gave one.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    readonly provider: ProviderName,
    readonly code: 'timeout' | 'rate_limited' | 'unavailable' | 'unauthorized' | 'bad_response' | 'unknown_account',
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Providers = Partial<Record<ProviderName, PaymentProvider>>;

/** A stored account's credentials, as a provider client asks for them before a call. */
export interface SourcedCredentials {
  credentials: AccountCredentials;
  /** Changes whenever the credentials do: a client built for one fingerprint is rebuilt for another. */
  fingerprint: string;
  /** The bearer to send now: the key or token itself, or (OAuth) an access token valid now. */
  bearer(): Promise<string>;
}

/**
 * Where the provider clients find the credentials of accounts created at runtime (the
 * account registry, src/accounts/registry.ts). The env-configured accounts stay in each
 * client's static map and never reach the source.
 */
export interface AccountCredentialsSource {
  /** The account's credentials now; null when there is no such account (unknown or disabled). */
  credentialsFor(provider: ProviderName, account: string): Promise<SourcedCredentials | null>;
}
