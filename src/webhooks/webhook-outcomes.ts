/**
 * The `outcome` label of `gateway_webhooks_total`, also written into the request's log line
 * and the inbound log (`webhook_requests.outcome`, filterable in the console and the API).
 * Dashboards and alerts select on these values, so they stay as first published, even
 * where the two providers name one thing differently (Mollie's `bad_signature` and
 * `not_configured` against GoCardless's `signature_invalid` and `provider_not_configured`;
 * the error codes in the bodies differ again: src/http/error-codes.ts).
 */
export const WEBHOOK_OUTCOMES = {
  /** Refused in front of the route (src/http/app.ts, src/http/body-guard.ts). */
  bodyGuard: ['busy', 'body_timeout', 'too_large'],
  mollie: [
    'not_configured',
    'unknown_account',
    'bad_signature',
    'invalid',
    'unsigned_event',
    /** A classic id that is not a payment, refund or chargeback: answered 200, not stored. */
    'not_fetchable',
    'duplicate',
    /** What inline processing came to (the first state any receipt reached)... */
    'processed',
    'ignored',
    'pending',
    'failed',
    /** ...or why it did not finish inside MOLLIE_WEBHOOK_DEADLINE_MS. */
    'deadline',
    'error',
    /** The account's stored secrets do not open with the configured keys: answered 503, nothing stored. */
    'account_unavailable',
  ],
  gocardless: ['provider_not_configured', 'signature_missing', 'signature_invalid', 'unknown_account', 'malformed', 'duplicate', 'accepted', 'account_unavailable'],
} as const;

export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[keyof typeof WEBHOOK_OUTCOMES][number];
