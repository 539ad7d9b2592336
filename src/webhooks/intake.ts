/**
 * The one path of a provider webhook: resolve the account, read the raw bytes once,
 * verify, parse, record every receipt (durable before any answer), then handle the new
 * receipts inline (up to a deadline) or deferred, and acknowledge. Each provider brings a
 * `WebhookIntake` (mollie-receipts.ts, gocardless-receipts.ts): its checks, its receipts,
 * its `handle`, and how it wants processing and the answer done, as data. Every outcome is
 * counted (`gateway_webhooks_total`) and written into the request's one log line.
 */
import type { Context } from 'hono';
import { SecretsError } from '../accounts/secrets.js';
import type { Env } from '../config/env.js';
import type { Deps } from '../deps.js';
import type { ErrorCode } from '../http/error-codes.js';
import { AppError } from '../http/errors.js';
import { annotateRequest, type AppEnv } from '../http/middleware.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderName } from '../providers/types.js';
import { resolveAccount } from './accounts.js';
import { pendingReceipt, processReceiptsInline, processStoredReceipts, type ProcessDeps, type ReceiptHandler } from './process-receipts.js';
import { recordReceipts, type NewReceipt, type RecordedReceipt } from './receipts.js';
import type { WebhookOutcome } from './webhook-outcomes.js';

type LogLevel = 'info' | 'warn';

/** A webhook turned away: the error body's code and message, the metric's outcome, and what the log line adds. */
export interface Refusal {
  code: ErrorCode;
  outcome: WebhookOutcome;
  message: string;
  level: LogLevel;
  fields: Record<string, unknown>;
}

export type Verified = { ok: true; signature: 'valid' | 'absent' } | { ok: false; refusal: Refusal };

export type Parsed<Delivery> =
  | { kind: 'accept'; delivery: Delivery }
  | { kind: 'refuse'; refusal: Refusal }
  /** Acknowledged without storing anything (counted only). */
  | { kind: 'acknowledge'; outcome: WebhookOutcome; fields: Record<string, unknown> };

export interface IntakeRequest {
  account: string;
  rawBody: Uint8Array;
  header(name: string): string | undefined;
  requestId: string;
  /** The request's logger, for what must reach an operator beyond the request line. */
  logger: Logger;
}

export interface WebhookIntake<Delivery> extends ReceiptHandler {
  provider: ProviderName;
  /**
   * When an unknown account is refused: before the body is read, or only after the
   * signature checked out, so an unauthenticated caller learns nothing (not even which
   * accounts exist).
   */
  accountCheck: 'before_body' | 'after_signature';
  notConfigured(account: string): Refusal;
  unknownAccount(account: string): Refusal;
  /** Request headers kept on each receipt (replay, audit, debugging); nothing else is. */
  keptHeaders: readonly string[];
  /** Over the raw bytes, against every secret the account's webhooks may be signed with. */
  verify(request: IntakeRequest, secrets: readonly string[]): Verified;
  parse(request: IntakeRequest, signature: 'valid' | 'absent'): Parsed<Delivery>;
  /** The receipt rows, from the parsed delivery and the kept headers. */
  toReceipts(delivery: Delivery, request: IntakeRequest & { headers: Record<string, string>; signature: 'valid' | 'absent' }): NewReceipt[];
  /** What the provider counts of what was stored, besides the webhook outcome. */
  countRecorded?(deps: Pick<Deps, 'metrics'>, recorded: RecordedReceipt[]): void;
  /** The log line's fields about what was stored (besides the account). */
  describe(delivery: Delivery, recorded: RecordedReceipt[], receipts: NewReceipt[]): Record<string, unknown>;
  /**
   * `inline`: the new receipts are handled while the request waits, up to the deadline,
   * and the outcome names what came of them. `deferred`: they are handed to
   * `deps.background` and the request is acknowledged at once (`accepted`).
   */
  processing: { mode: 'inline'; deadlineMs(env: Pick<Env, 'MOLLIE_WEBHOOK_DEADLINE_MS'>): number } | { mode: 'deferred' };
  /** `received`: 200 `{"received": true}`; `no_content`: 204. The same answer whatever the outcome. */
  acknowledgement: 'received' | 'no_content';
}

export type IntakeDeps = ProcessDeps & Pick<Deps, 'background' | 'metrics' | 'accounts'> & { env: Pick<Env, 'MOLLIE_WEBHOOK_DEADLINE_MS'> };

/** The order of inline outcomes: the first state any receipt reached names the request's outcome. */
const INLINE_STATES = ['processed', 'ignored', 'pending', 'failed'] as const;

export async function receiveWebhook<Delivery>(c: Context<AppEnv>, deps: IntakeDeps, intake: WebhookIntake<Delivery>): Promise<Response> {
  const account = c.req.param('account') ?? 'default';
  const count = (outcome: WebhookOutcome, fields: Record<string, unknown>, level: LogLevel = 'info') => {
    deps.metrics.webhooks.inc({ provider: intake.provider, outcome });
    annotateRequest(c, { provider: intake.provider, outcome, ...fields }, level);
  };
  const refuse = (refusal: Refusal): never => {
    count(refusal.outcome, refusal.fields, refusal.level);
    throw new AppError(refusal.code, refusal.message);
  };
  const acknowledge = () => (intake.acknowledgement === 'received' ? c.json({ received: true as const }, 200) : c.body(null, 204));

  const resolved = await resolveAccount(deps, intake.provider, account).catch((error: unknown) => {
    // A stored account whose secrets do not open (its key dropped from the keyring, or the
    // row altered): its signatures cannot be checked nor its payments fetched. Refused with
    // 503, so the provider sends the webhook again once an operator has restored the key.
    if (!(error instanceof SecretsError)) throw error;
    c.get('logger').error({ provider: intake.provider, account, err: error.message }, 'a stored account\'s secrets do not open: its webhooks are refused until its key is configured again');
    return refuse({
      code: 'account_unavailable',
      outcome: 'account_unavailable',
      message: `${error.message}; nothing was stored, send it again once the key is back`,
      level: 'warn',
      fields: { account, err: error.code },
    });
  });
  if (!resolved.providerConfigured) return refuse(intake.notConfigured(account));
  if (intake.accountCheck === 'before_body' && !resolved.exists) return refuse(intake.unknownAccount(account));

  // The raw bytes, read once: the signature covers exactly these.
  const request: IntakeRequest = {
    account,
    rawBody: new Uint8Array(await c.req.arrayBuffer()),
    header: (name) => c.req.header(name),
    requestId: c.get('requestId'),
    logger: c.get('logger'),
  };
  const verified = intake.verify(request, resolved.webhookSecrets);
  if (!verified.ok) return refuse(verified.refusal);
  if (intake.accountCheck === 'after_signature' && !resolved.exists) return refuse(intake.unknownAccount(account));

  const parsed = intake.parse(request, verified.signature);
  if (parsed.kind === 'refuse') return refuse(parsed.refusal);
  if (parsed.kind === 'acknowledge') {
    count(parsed.outcome, parsed.fields);
    return acknowledge();
  }

  const headers: Record<string, string> = {};
  for (const name of intake.keptHeaders) {
    const value = c.req.header(name);
    if (value !== undefined) headers[name] = value;
  }
  const receipts = intake.toReceipts(parsed.delivery, { ...request, headers, signature: verified.signature });
  const recorded = await recordReceipts(deps.db, receipts);
  intake.countRecorded?.(deps, recorded);
  const fields = { account, ...intake.describe(parsed.delivery, recorded, receipts) };
  // From here on the receipts are durable: whatever happens, the provider gets its acknowledgement.
  const fresh = recorded.flatMap((row, index) => (row.duplicate ? [] : [pendingReceipt(row.id, receipts[index]!, row.receivedAt)]));
  if (fresh.length === 0 && recorded.length > 0) {
    count('duplicate', fields);
    return acknowledge();
  }

  const processing = intake.processing;
  switch (processing.mode) {
    case 'inline': {
      const result = await processReceiptsInline(deps, { [intake.provider]: intake }, fresh, processing.deadlineMs(deps.env));
      const outcome = result.settled ? (INLINE_STATES.find((state) => result.counts[state] > 0) ?? 'pending') : result.reason;
      count(outcome, { ...fields, ...(result.settled ? {} : { error: result.error }) });
      break;
    }
    case 'deferred':
      if (fresh.length > 0) deps.background.defer(processStoredReceipts(deps, intake.provider, intake, fresh.map((receipt) => receipt.id)));
      count('accepted', fields);
      break;
    default: {
      const unreachable: never = processing;
      throw new Error(`unknown processing ${JSON.stringify(unreachable)}`);
    }
  }
  return acknowledge();
}
