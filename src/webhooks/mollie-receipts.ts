/**
 * Mollie's intake (`mollieIntake`, run by intake.ts) and what the gateway does with a
 * stored Mollie webhook. The body is never trusted: it only names something to fetch.
 * Classic `id=tr_...` and `payment.*` events sync that payment; refund (`re_`) and
 * chargeback (`chb_`) ids, and `refund.*` events, are first resolved to their payment;
 * everything else is kept and marked ignored. Receipts that point at the same payment
 * share one sync, so a burst of webhooks for one payment costs one fetch.
 */
import type { SelectWebhookReceipt } from '../db/schema/webhook-receipts.js';
import { takeFetchFenceAt } from '../payments/apply-snapshot.js';
import { decideFromRecentFetch, RecentlyFetchedError } from '../payments/recent-fetches.js';
import { syncPayment, type SyncDeps } from '../payments/sync-payment.js';
import { forEachLimited } from '../primitives/for-each-limited.js';
import { isMollieProvider, type MollieProvider } from '../providers/mollie/client.js';
import { MOLLIE_SIGNATURE_HEADER, verifyMollieSignature } from '../providers/mollie/signature.js';
import { idPrefixKind, parseMollieWebhook, type MollieWebhook } from '../providers/mollie/webhook.js';
import { resolveAccount } from './accounts.js';
import type { Refusal, WebhookIntake } from './intake.js';
import { newestReceipt, retryOutcome, type HandleDeps, type ReceiptOutcome } from './process-receipts.js';
import type { NewReceipt } from './receipts.js';

/** Payments synced side by side within one batch of receipts. */
const SYNC_CONCURRENCY = 8;

/** What a receipt asks the gateway to do. */
export type MollieReceiptTarget =
  | { kind: 'payment'; paymentId: string }
  /** A refund or chargeback id: its payment must be looked up first. */
  | { kind: 'lookup'; resourceId: string }
  | { kind: 'ignore'; note: string };

/** Pure: decides from a parsed webhook alone (no I/O). */
export function mollieWebhookTarget(webhook: MollieWebhook): MollieReceiptTarget {
  switch (webhook.kind) {
    case 'invalid':
      return { kind: 'ignore', note: `stored body does not parse: ${webhook.message}` };
    case 'classic': {
      const kind = idPrefixKind(webhook.id);
      if (kind === 'payment') return { kind: 'payment', paymentId: webhook.id };
      if (kind === 'refund' || kind === 'chargeback') return { kind: 'lookup', resourceId: webhook.id };
      return { kind: 'ignore', note: `${webhook.id} is not a payment, refund or chargeback id` };
    }
    case 'event': {
      const entity = idPrefixKind(webhook.entityId);
      if (webhook.type.startsWith('payment.') && entity === 'payment') return { kind: 'payment', paymentId: webhook.entityId };
      // Refund events change a payment's refunded amount, so they are worth a sync too.
      if (webhook.type.startsWith('refund.') && entity === 'refund') return { kind: 'lookup', resourceId: webhook.entityId };
      return { kind: 'ignore', note: `event ${webhook.type} for ${webhook.entityId} does not concern a payment` };
    }
    default: {
      const unreachable: never = webhook;
      throw new Error(`unknown Mollie webhook ${JSON.stringify(unreachable)}`);
    }
  }
}

export function mollieReceiptTarget(receipt: Pick<SelectWebhookReceipt, 'body' | 'headers'>): MollieReceiptTarget {
  const headers = receipt.headers as Record<string, string> | null;
  return mollieWebhookTarget(parseMollieWebhook(headers?.['content-type'], receipt.body));
}

/** The receipt row for a verified delivery; the route stores it before anything else. */
export function newMollieReceipt(input: {
  account: string;
  webhook: MollieDelivery;
  rawBody: Uint8Array;
  headers: Record<string, string>;
  signature: 'valid' | 'absent';
}): NewReceipt {
  const resourceId = input.webhook.kind === 'classic' ? input.webhook.id : input.webhook.entityId;
  const stored = input.webhook.kind === 'event' ? withoutEmbeddedSnapshot(input.rawBody) : null;
  return {
    provider: 'mollie',
    account: input.account,
    eventId: input.webhook.kind === 'event' ? input.webhook.eventId : null,
    resourceType: idPrefixKind(resourceId),
    resourceId,
    body: stored?.body ?? input.rawBody,
    headers: stored ? { ...input.headers, 'x-gateway-redacted': '_embedded' } : input.headers,
    signature: input.signature,
  };
}

/**
 * A signed "full" event embeds the payment as Mollie's GET returns it, consumer names,
 * IBANs and card holders included. The gateway never uses that copy (it fetches the
 * payment), so the receipt keeps the event without it: billing needs none of it, and
 * replay re-signs bodies anyway. The signature was verified over the original bytes
 * before this; the header says the stored body was redacted.
 */
function withoutEmbeddedSnapshot(rawBody: Uint8Array): { body: Uint8Array } | null {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(new TextDecoder().decode(rawBody)) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!event || typeof event !== 'object' || event._embedded === undefined || event._embedded === null) return null;
  const { _embedded: _dropped, ...rest } = event;
  return { body: new TextEncoder().encode(JSON.stringify(rest)) };
}

function mollieProvider(deps: Pick<SyncDeps, 'providers'>): MollieProvider {
  const provider = deps.providers.mollie;
  // Thrown, so processReceipts leaves every receipt pending until Mollie is configured.
  if (!isMollieProvider(provider)) throw new Error('Mollie is not configured on this gateway (MOLLIE_API_KEY unset)');
  return provider;
}

/** Delivered Mollie webhooks: a classic id or a next-gen event (never `invalid`, which is refused). */
type MollieDelivery = Exclude<MollieWebhook, { kind: 'invalid' }>;

const refusal = (code: Refusal['code'], outcome: Refusal['outcome'], message: string, fields: Record<string, unknown> = {}, level: Refusal['level'] = 'info'): Refusal => ({
  code,
  outcome,
  message,
  level,
  fields,
});

/**
 * Mollie's classic webhooks are unauthenticated by design (they carry no credentials): the
 * body is only a hint, the fetch is the verification. Next-gen events must be signed.
 * Handled inline up to MOLLIE_WEBHOOK_DEADLINE_MS; every accepted body answers the same
 * 200, also for an unknown id (Mollie's advice).
 */
export const mollieIntake: WebhookIntake<MollieDelivery> = {
  provider: 'mollie',
  accountCheck: 'before_body',
  notConfigured: () => refusal('provider_not_configured', 'not_configured', 'Mollie is not configured on this gateway (set MOLLIE_API_KEY); nothing was stored'),
  unknownAccount: (account) =>
    refusal('unknown_account', 'unknown_account', `no Mollie account named ${JSON.stringify(account)} is configured; nothing was stored`, { account: account.slice(0, 64) }),
  keptHeaders: ['content-type', 'user-agent', MOLLIE_SIGNATURE_HEADER],

  verify(request, secrets) {
    const signature = verifyMollieSignature(request.rawBody, request.header(MOLLIE_SIGNATURE_HEADER), secrets);
    if (signature !== 'invalid') return { ok: true, signature };
    const message =
      secrets.length === 0
        ? 'X-Mollie-Signature is present but no MOLLIE_WEBHOOK_SECRETS are configured to check it'
        : 'X-Mollie-Signature does not match the body under any configured secret';
    return { ok: false, refusal: refusal('invalid_signature', 'bad_signature', message, { account: request.account, secrets: secrets.length }, 'warn') };
  },

  parse(request, signature) {
    const { account } = request;
    const webhook = parseMollieWebhook(request.header('content-type'), request.rawBody);
    if (webhook.kind === 'invalid') return { kind: 'refuse', refusal: refusal('bad_request', 'invalid', `not a Mollie webhook: ${webhook.message}`, { account }) };
    if (webhook.kind === 'event' && signature === 'absent') {
      // An unsigned event could pre-empt a real event id in the de-duplication index.
      return { kind: 'refuse', refusal: refusal('signature_required', 'unsigned_event', 'Mollie next-gen events must carry X-Mollie-Signature', { account }) };
    }
    if (webhook.kind === 'classic' && idPrefixKind(webhook.id) === 'other') {
      // Never fetched (not a payment, refund or chargeback id), so nothing to keep: anyone
      // can post these, and storing each would let them fill the table. Counted only.
      return { kind: 'acknowledge', outcome: 'not_fetchable', fields: { account, resourceId: webhook.id } };
    }
    return { kind: 'accept', delivery: webhook };
  },

  toReceipts: (webhook, request) => [
    newMollieReceipt({
      account: request.account,
      webhook,
      rawBody: request.rawBody,
      headers: { 'x-request-id': request.requestId, ...request.headers },
      signature: request.signature,
    }),
  ],

  describe: (_webhook, [recorded], [receipt]) => ({ resourceId: receipt!.resourceId, eventId: receipt!.eventId, receiptId: recorded!.id }),
  processing: { mode: 'inline', deadlineMs: (env) => env.MOLLIE_WEBHOOK_DEADLINE_MS },
  acknowledgement: 'received',

  async handle(deps, receipts) {
    const provider = mollieProvider(deps);
    const outcomes = new Map<number, ReceiptOutcome>();
    const settle = (list: SelectWebhookReceipt[], outcome: ReceiptOutcome) => {
      for (const receipt of list) outcomes.set(receipt.id, outcome);
    };

    // 1. Which payment does each receipt concern? Refund/chargeback lookups are shared.
    const lookups = new Map<string, Promise<string | null>>();
    const groups = new Map<string, { account: string; paymentId: string; receipts: SelectWebhookReceipt[] }>();
    await forEachLimited(receipts, SYNC_CONCURRENCY, async (receipt) => {
      const account = await resolveAccount(deps, 'mollie', receipt.account);
      if (!account.providerConfigured || !account.exists) {
        // Kept pending (and finally failed) rather than dropped: the account may come back.
        settle([receipt], { state: 'retry', error: `no Mollie account named ${JSON.stringify(receipt.account)} is configured` });
        return;
      }
      const target = mollieReceiptTarget(receipt);
      let paymentId: string | null;
      if (target.kind === 'ignore') {
        settle([receipt], { state: 'ignored', note: target.note });
        return;
      } else if (target.kind === 'lookup') {
        const key = `${receipt.account}\n${target.resourceId}`;
        let lookup = lookups.get(key);
        if (!lookup) {
          lookup = resolveRemembered(deps, provider, receipt, target.resourceId);
          lookups.set(key, lookup);
        }
        try {
          paymentId = await lookup;
        } catch (error) {
          settle([receipt], retryOutcome(error));
          return;
        }
        if (!paymentId) {
          settle([receipt], { state: 'ignored', note: `Mollie knows no ${target.resourceId}` });
          return;
        }
      } else {
        paymentId = target.paymentId;
      }
      const key = `${receipt.account}\n${paymentId}`;
      const group = groups.get(key) ?? { account: receipt.account, paymentId, receipts: [] };
      group.receipts.push(receipt);
      groups.set(key, group);
    });

    // 2. One sync per payment, whatever number of receipts asked for it.
    await forEachLimited([...groups.values()], SYNC_CONCURRENCY, async (group) => {
      try {
        const result = await syncPayment(deps, {
          provider: 'mollie',
          account: group.account,
          providerPaymentId: group.paymentId,
          source: 'webhook',
          receiptId: Math.min(...group.receipts.map((r) => r.id)),
          settleReceiptIds: group.receipts.map((r) => r.id),
          triggeredAt: newestReceipt(group.receipts),
          // Anyone can post a classic webhook: those wait out the id's window. Signed events do not.
          mayWait: group.receipts.every((r) => r.signature === 'absent'),
        });
        // A 404 proves the id unknown to Mollie: nothing to create, nothing to retry.
        settle(
          group.receipts,
          result.outcome === 'not_found'
            ? { state: 'ignored', note: `Mollie has no payment ${group.paymentId}` }
            : { state: 'processed', alreadySettled: result.settledReceipts },
        );
      } catch (error) {
        // Lock busy, Mollie slow, rate-limited or down: the receipt stays due.
        settle(group.receipts, retryOutcome(error));
      }
    });
    return outcomes;
  },
};

/**
 * A refund or chargeback id's payment, remembered like payment fetches (recent-fetches.ts):
 * a lookup that started after the webhook answers it, an anonymous webhook for an id
 * looked up within the window waits for the window's end, and only otherwise is Mollie asked.
 */
async function resolveRemembered(deps: HandleDeps, provider: MollieProvider, receipt: SelectWebhookReceipt, resourceId: string): Promise<string | null> {
  const recent = deps.recentFetches;
  if (!recent) return provider.resolvePaymentId(receipt.account, resourceId);
  const key = `mollie:${receipt.account}:lookup:${resourceId}`;
  const at = receipt.receivedAt.getTime();
  const mayWait = receipt.signature === 'absent';
  // The same lookup under way in this process: wait for it when it started after this webhook, else for its window.
  const running = recent.inFlight.get(key);
  if (running) {
    if (running.startedAt >= at) await running.done;
    else if (mayWait && recent.windows.notFoundMs > 0) throw new RecentlyFetchedError(key, Math.max(1, running.startedAt + recent.windows.notFoundMs - Date.now()));
  }
  const decision = decideFromRecentFetch(await recent.get(key), { at, mayWait }, Date.now(), recent.windows);
  switch (decision.kind) {
    case 'answered':
      return decision.record.paymentId ?? null;
    case 'wait':
      throw new RecentlyFetchedError(key, decision.retryAfterMs);
    case 'fetch': {
      // Another webhook for the id started the lookup while this one read the record: join it.
      const started = recent.inFlight.get(key);
      if (started && started !== running) {
        await started.done;
        return resolveRemembered(deps, provider, receipt, resourceId);
      }
      // Registered before the first await, so concurrent webhooks for the id join this
      // lookup (and then judge by its record) instead of starting their own.
      const entry = { startedAt: Number.POSITIVE_INFINITY, done: Promise.resolve() as Promise<unknown> };
      const work = (async () => {
        const { at: startedAt } = await takeFetchFenceAt(deps.db);
        const paymentId = await provider.resolvePaymentId(receipt.account, resourceId);
        await recent.record(key, paymentId ? { startedAt, outcome: 'found', paymentId } : { startedAt, outcome: 'not_found' });
        return paymentId;
      })();
      entry.done = work.catch(() => {});
      recent.inFlight.set(key, entry);
      try {
        return await work;
      } finally {
        if (recent.inFlight.get(key) === entry) recent.inFlight.delete(key);
      }
    }
    default: {
      const unreachable: never = decision;
      throw new Error(`unknown decision ${JSON.stringify(unreachable)}`);
    }
  }
}
