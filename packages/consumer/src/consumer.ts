/**
 * Applies the gateway's events to a billing system exactly once each, never a stale one.
 *
 * Delivery is at least once and, across payments, in no particular order: the same event
 * can come twice (a retry, a re-drive, the pull API after a webhook), and a re-driven dead
 * letter can arrive after newer versions of its payment. For each event, in one
 * transaction of the store: claim its id (a duplicate stops here), then, for a payment
 * change, raise the payment's stored version to the event's (a refund change: the
 * refund's, keyed by its id) (an older one is stale: its
 * id is recorded, the handler is not called), then call the handler with the same
 * transaction, so the billing write commits with the record of the event or not at all.
 */
import { Webhook } from 'standardwebhooks';
import { EventParseError, isPaymentChange, isRefundChange, parseEvent, type GatewayEvent } from './events.js';

export interface StoreTransaction<Tx> {
  /** Records the event id; false when it was recorded before (a duplicate). */
  claimEvent(eventId: string, type: string): Promise<boolean>;
  /** Raises `key`'s version to `version`; false when a newer one is stored (stale). */
  advanceVersion(key: string, version: number): Promise<boolean>;
  getCursor(name: string): Promise<string | null>;
  setCursor(name: string, cursor: string): Promise<void>;
  /** What the handler gets to write with (a postgres.js transaction for the Postgres store). */
  tx: Tx;
}

export interface EventStore<Tx> {
  transaction<T>(work: (store: StoreTransaction<Tx>) => Promise<T>): Promise<T>;
}

export type Outcome = 'applied' | 'duplicate' | 'stale' | 'unknown_type';

export interface ConsumerOptions<Tx> {
  store: EventStore<Tx>;
  /** Called once per new, current event, inside the store's transaction. */
  handle: (event: GatewayEvent, tx: Tx) => Promise<void>;
  /** `whsec_…`: EVENT_SINK_SECRET. Needed for `receive`, not for `pull`. */
  secret?: string;
  /** An event type this version does not know: recorded and skipped (default), or an error. */
  unknownTypes?: 'skip' | 'error';
}

export interface PullOptions {
  /** The gateway's origin, e.g. http://127.0.0.1:8787 */
  baseUrl: string;
  /** ADMIN_TOKEN */
  token: string;
  /** Where the cursor is kept in the store; one per independent reader. */
  cursorName?: string;
  limit?: number;
  /** Only these types or prefixes (`payment.`), as `GET /v1/events?type=`. */
  types?: string[];
  /** Stop after this many pages (default: until a page comes back empty). */
  maxPages?: number;
  fetch?: typeof fetch;
}

export function createConsumer<Tx>(options: ConsumerOptions<Tx>) {
  const webhook = options.secret ? new Webhook(options.secret) : undefined;

  async function apply(input: unknown): Promise<Outcome> {
    let event: GatewayEvent;
    try {
      event = parseEvent(input);
    } catch (error) {
      if (error instanceof EventParseError && error.code === 'unknown_type' && options.unknownTypes !== 'error') {
        const { id, type } = input as { id: string; type: string };
        await options.store.transaction((store) => store.claimEvent(id, type));
        return 'unknown_type';
      }
      throw error;
    }
    return options.store.transaction(async (store) => {
      if (!(await store.claimEvent(event.id, event.type))) return 'duplicate';
      if (isPaymentChange(event) && !(await store.advanceVersion(`${event.data.provider}:${event.data.paymentId}`, event.data.version))) return 'stale';
      if (isRefundChange(event) && !(await store.advanceVersion(`${event.data.provider}:refund:${event.data.refund.id}`, event.data.refund.version))) return 'stale';
      await options.handle(event, store.tx);
      return 'applied';
    });
  }

  return {
    apply,

    /**
     * One signed delivery: `rawBody` exactly as received, the request's headers. Throws
     * standardwebhooks' WebhookVerificationError for a forged, altered or stale request
     * (answer 400), EventParseError for an invalid event. Answer 2xx for every outcome.
     */
    async receive(rawBody: string, headers: Record<string, string>): Promise<Outcome> {
      if (!webhook) throw new Error('createConsumer: `secret` is needed to verify deliveries');
      return apply(webhook.verify(rawBody, headers));
    },

    /** Pages GET /v1/events from the stored cursor, applying each event; stores the cursor after each page. */
    async pull(pull: PullOptions): Promise<{ pages: number; outcomes: Record<Outcome, number> }> {
      const name = pull.cursorName ?? 'default';
      const outcomes: Record<Outcome, number> = { applied: 0, duplicate: 0, stale: 0, unknown_type: 0 };
      const doFetch = pull.fetch ?? fetch;
      let pages = 0;
      for (;;) {
        const cursor = await options.store.transaction((store) => store.getCursor(name));
        const url = new URL('/v1/events', pull.baseUrl);
        if (cursor) url.searchParams.set('cursor', cursor);
        url.searchParams.set('limit', String(pull.limit ?? 100));
        if (pull.types) url.searchParams.set('type', pull.types.join(','));
        const res = await doFetch(url, { headers: { authorization: `Bearer ${pull.token}` } });
        if (!res.ok) throw new Error(`GET /v1/events answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
        const page = (await res.json()) as { data: unknown[]; nextCursor: string };
        for (const event of page.data) outcomes[await apply(event)]++;
        // After the page: a crash before this replays the page, and its events are duplicates.
        await options.store.transaction((store) => store.setCursor(name, page.nextCursor));
        pages++;
        if (page.data.length === 0 || (pull.maxPages !== undefined && pages >= pull.maxPages)) return { pages, outcomes };
      }
    },
  };
}

export type Consumer = ReturnType<typeof createConsumer>;
