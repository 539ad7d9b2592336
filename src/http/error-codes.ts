/**
 * Every machine code an error body can carry, with its HTTP status: the one place a code
 * gets its status (`new AppError(code, message)` reads it from here). The codes leave the
 * process in every error body, so they are kept exactly as clients have seen them, even
 * where two name one idea differently: Mollie's bad signature is `invalid_signature`,
 * GoCardless's is `signature_invalid` (and the webhook metric's outcomes differ again:
 * src/webhooks/webhook-outcomes.ts). A new code is added here, and to the README's table.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';

interface ErrorCodeEntry {
  status: ContentfulStatusCode;
  meaning: string;
}

/** GoCardless's documented answer to a bad signature: 498 Token Invalid (docs/providers.md#gocardless-signature-responses-ordering). */
const TOKEN_INVALID = 498 as ContentfulStatusCode;
/** Nginx's "client closed request": the answer nobody reads when the client hung up. */
const CLIENT_CLOSED_REQUEST = 499 as ContentfulStatusCode;

export const ERROR_CODES = {
  // Requests
  bad_request: { status: 400, meaning: 'Bad input; validation errors list each problem in `details`' },
  unauthorized: { status: 401, meaning: 'Missing or wrong bearer token' },
  cross_origin: { status: 403, meaning: 'A console form post from another origin' },
  not_found: { status: 404, meaning: 'No such resource' },
  route_not_found: { status: 404, meaning: 'No route for this method and path' },
  method_not_allowed: { status: 405, meaning: 'The path exists with other methods (see `Allow`)' },
  body_timeout: { status: 408, meaning: 'The request body did not arrive within WEBHOOK_BODY_TIMEOUT_MS' },
  payload_too_large: { status: 413, meaning: 'Body over the route\'s limit' },
  unsupported_media_type: { status: 415, meaning: 'Wrong Content-Type' },
  too_many_failed_attempts: { status: 429, meaning: 'Too many wrong bearer tokens from this source; see `Retry-After`' },
  client_closed_request: { status: CLIENT_CLOSED_REQUEST, meaning: 'The client hung up mid-request (logged; nobody reads the answer)' },
  busy: { status: 503, meaning: 'Too many webhook bodies in flight; see `Retry-After`' },
  admin_disabled: { status: 503, meaning: 'ADMIN_TOKEN is unset, so the admin API is off' },
  shutting_down: { status: 503, meaning: 'This process is draining; retry' },
  internal: { status: 500, meaning: 'An unexpected failure (logged with its stack)' },
  database_unavailable: { status: 503, meaning: 'Postgres is unreachable' },

  // Payments and providers
  unknown_provider: { status: 404, meaning: 'The path names no known provider' },
  provider_not_configured: { status: 404, meaning: 'The provider has no credentials on this gateway' },
  unknown_account: { status: 404, meaning: 'No provider account by this name is configured' },
  payment_not_found: { status: 404, meaning: 'No such payment (console)' },
  payment_busy: { status: 409, meaning: 'Another sync of this payment holds its lock; retry shortly' },
  provider_timeout: { status: 502, meaning: 'The provider did not answer in time' },
  provider_unavailable: { status: 502, meaning: 'The provider failed (5xx, network)' },
  provider_unauthorized: { status: 502, meaning: 'The provider refused our credentials' },
  provider_bad_response: { status: 502, meaning: 'The provider answered something we cannot read' },
  provider_rate_limited: { status: 503, meaning: 'The provider rate-limited this account; see `Retry-After`' },

  // Provider webhooks (names kept as first published: see the comment above)
  invalid_signature: { status: 401, meaning: 'Mollie: `X-Mollie-Signature` matches no MOLLIE_WEBHOOK_SECRETS entry' },
  signature_required: { status: 401, meaning: 'Mollie: a next-gen event without `X-Mollie-Signature`' },
  signature_missing: { status: TOKEN_INVALID, meaning: 'GoCardless: no `Webhook-Signature` header' },
  signature_invalid: { status: TOKEN_INVALID, meaning: 'GoCardless: `Webhook-Signature` matches no GOCARDLESS_WEBHOOK_SECRETS entry' },
  malformed_webhook: { status: 400, meaning: 'GoCardless: a signed batch that does not parse (nothing stored)' },

  // Outbound events
  event_not_found: { status: 404, meaning: 'No such outbound event' },
  dead_letter_not_found: { status: 404, meaning: 'No such dead letter (or already re-driven)' },
  sink_not_found: { status: 404, meaning: 'No such event sink' },
  delivery_not_found: { status: 404, meaning: 'No such delivery (retention may have deleted it)' },

  // Accounts
  secrets_not_configured: { status: 503, meaning: 'ACCOUNT_SECRETS_KEY is unset, so no account can be stored' },
  account_unavailable: {
    status: 503,
    meaning: 'The account\'s stored secrets do not open with ACCOUNT_SECRETS_KEY or ACCOUNT_SECRETS_PREVIOUS_KEYS; nothing was stored, retry once the key is back',
  },
  account_name_taken: { status: 409, meaning: 'The account name belongs to another provider-side identity' },
  account_read_only: { status: 409, meaning: 'An account configured by the environment; change it there' },
  account_identity_mismatch: { status: 409, meaning: 'New credentials belong to another provider-side identity' },
  credentials_refused: { status: 422, meaning: 'The provider refused the credentials (its message included); nothing stored' },
  oauth_not_configured: { status: 503, meaning: 'MOLLIE_OAUTH_CLIENT_ID and MOLLIE_OAUTH_CLIENT_SECRET are unset, so Mollie OAuth is off' },
  invalid_oauth_state: { status: 400, meaning: 'The OAuth callback\'s state is forged, altered or expired (or the code is missing)' },

  // Bank feeds
  bank_not_configured: { status: 503, meaning: 'GOCARDLESS_BANK_SECRET_ID and _KEY are unset' },
  bank_refused: { status: 422, meaning: 'GoCardless Bank Account Data refused the request' },
  bank_unavailable: { status: 502, meaning: 'GoCardless Bank Account Data failed' },
  bank_rate_limited: { status: 503, meaning: 'GoCardless Bank Account Data rate-limited us' },
  bank_daily_limit: { status: 429, meaning: 'Every account of the connection spent its calls for today; see `Retry-After`' },
  reference_conflict: { status: 409, meaning: 'Another live connection has this reference' },
  creation_in_progress: { status: 409, meaning: 'A connection with this reference is being created; retry' },
  connection_not_syncable: { status: 409, meaning: 'The connection is expired, revoked or deleted' },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function errorStatus(code: ErrorCode): ContentfulStatusCode {
  return ERROR_CODES[code].status;
}

/** `provider_<ProviderError code>`: the codes a provider failure answers with. */
export function providerErrorCode(code: 'timeout' | 'rate_limited' | 'unavailable' | 'unauthorized' | 'bad_response'): ErrorCode {
  return `provider_${code}`;
}
