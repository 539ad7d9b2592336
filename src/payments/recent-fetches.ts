/**
 * What spares the merchant's provider quota from anonymous webhooks. A webhook only says
 * "look again at this id", so anyone can send one for any id; each used to cost a
 * provider call. Now every completed fetch is remembered for a short window, per
 * payment id, across processes (Redis when configured, else this process, which is then
 * the whole fleet), and a webhook is answered by the rule:
 *
 * - a fetch that STARTED AFTER the webhook arrived answers it: its snapshot is already
 *   written (the record is made only after the write), so the webhook is settled with
 *   no call. A trigger is never answered by a snapshot older than itself;
 * - otherwise, for an anonymous webhook (Mollie's classic ones carry no signature), if
 *   the id was fetched within the window (WEBHOOK_REFETCH_WINDOW_MS for a payment the
 *   provider knows, WEBHOOK_NOT_FOUND_WINDOW_MS for an id it answered 404), the webhook
 *   is left pending until the window ends: the one fetch made then answers every
 *   webhook that arrived meanwhile. Signed webhooks come from the provider and are not
 *   held back;
 * - otherwise it fetches (under the payment's lock, as before).
 *
 * Only webhook-triggered fetches are recorded (the poller's and the sweep's thousands of
 * fetches would only fill the record). So a flood of webhooks for one id costs at most one
 * provider call per window, and
 * webhooks for the same id in flight in this process wait for the fetch already under way
 * instead of queueing on the lock. Only webhooks are held back: the poller, the
 * return-page sync, the sweep and replay always fetch (they are paced or authenticated).
 *
 * Two reads, two sources. The rule is applied twice per webhook (sync-payment.ts): before
 * the payment's lock from this process's memory only (`peek`, no Redis call), and under the
 * lock from Redis (`get`), which is the authority: it is what holds the fleet to one call
 * per window, since every process's fetch is recorded there before its lock is released.
 * Memory learns every record Redis answers with (the later fetch kept, by startedAt), so
 * webhooks for an id fetched by another process cost one lock and one read in this process
 * before memory answers the ones that follow (those that come while it is at the lock wait
 * for it: its turn in `inFlight`). A record in memory may be older than Redis's
 * (another process fetched since), never newer than what it promises, and the rule from it
 * is still sound:
 *
 * - 'answered': a fetch that started after the webhook wrote its snapshot; a later fetch
 *   elsewhere does not make that untrue;
 * - 'wait': the webhook is held until the older record's window ends, which is no later
 *   than now plus one window; it costs no call, and when retried it is judged again
 *   (by then, from memory or under the lock, by the newer record);
 * - 'fetch': the webhook goes to the lock, where the read from Redis decides as before.
 *
 * So memory never makes a call that Redis would have spared; at worst it takes the lock
 * for a webhook that Redis would have answered before it, holds back until its retry one
 * that Redis's newer record would have answered at once, or ends a hold early (the retry
 * then goes to the lock and is held again there).
 */
import type { Redis } from 'ioredis';

export interface FetchRecord {
  /** When the fetch started, by the database's clock (the clock receipts are stamped with). */
  startedAt: number;
  outcome: 'found' | 'not_found';
  /** For a refund or chargeback looked up: the payment it belongs to. */
  paymentId?: string;
}

export interface RecentFetchWindows {
  foundMs: number;
  notFoundMs: number;
}

export interface RecentFetches {
  readonly windows: RecentFetchWindows;
  /** The last fetch this process knows of (its own, or one `get` read): memory only, no Redis call. */
  peek(key: string): FetchRecord | null;
  /** The last fetch of the id across the fleet (Redis, else this process's memory); memory learns it. */
  get(key: string): Promise<FetchRecord | null>;
  record(key: string, record: FetchRecord): Promise<void>;
  /** Fetches under way in this process, by key, with when they started (+Infinity: not started yet, waiting for the lock). */
  readonly inFlight: Map<string, { startedAt: number; done: Promise<unknown> }>;
}

/** How long a fetch is remembered at least, to answer the triggers that arrived before it. */
const ANSWERS_FOR_MS = 120_000;
/** At most this many ids are remembered in memory; the oldest are forgotten first. */
const MEMORY_ENTRIES = 10_000;

export function createRecentFetches(options: {
  redis?: Redis;
  keyPrefix?: string;
  windows: RecentFetchWindows;
  redisTimeoutMs?: number;
  /** Told of every Redis failure; the record then falls back to this process's memory. */
  onRedisError?: (op: 'get' | 'record', error: unknown) => void;
}): RecentFetches {
  const memory = new Map<string, { record: FetchRecord; expiresAt: number }>();
  const prefix = `${options.keyPrefix ?? ''}fetched:`;
  const recordRemote = options.redis ? recordScript(options.redis) : null;
  // Kept past its window: a record also answers the triggers that came before it, and
  // those may wait in the receipt worker's queue for a while.
  const ttl = (record: FetchRecord) => Math.max(ANSWERS_FOR_MS, record.outcome === 'found' ? options.windows.foundMs : options.windows.notFoundMs);

  const fromMemory = (key: string): FetchRecord | null => {
    const entry = memory.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= Date.now()) {
      memory.delete(key);
      return null;
    }
    return entry.record;
  };
  const remember = (key: string, record: FetchRecord, ms: number) => {
    memory.delete(key);
    memory.set(key, { record, expiresAt: Date.now() + ms });
    if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value!);
  };

  return {
    windows: options.windows,
    inFlight: new Map(),
    peek: fromMemory,
    async get(key) {
      const local = fromMemory(key);
      if (options.redis && options.redis.status !== 'ready') options.onRedisError?.('get', new Error(`Redis is ${options.redis.status}`));
      else if (options.redis) {
        try {
          const value = await options.redis.get(prefix + key);
          if (value) {
            const shared = JSON.parse(value) as FetchRecord;
            if (local && shared.startedAt <= local.startedAt) return local;
            // Another process's later fetch (or one this process forgot): remembered here too.
            remember(key, shared, ttl(shared));
            return shared;
          }
        } catch (error) {
          // Redis unreachable: what this process remembers still helps.
          options.onRedisError?.('get', error);
        }
      }
      return local;
    },
    async record(key, record) {
      const ms = ttl(record);
      // As in Redis, a record of a later fetch is never replaced by an earlier one's.
      const local = fromMemory(key);
      if (!local || local.startedAt < record.startedAt) remember(key, record, ms);
      if (options.redis && options.redis.status !== 'ready') options.onRedisError?.('record', new Error(`Redis is ${options.redis.status}`));
      else if (recordRemote) {
        // Never replace a record of a later fetch with an earlier one's. EVALSHA (the script
        // is sent once per connection, not with every record).
        await recordRemote(prefix + key, JSON.stringify(record), String(record.startedAt), String(ms))
          .catch((error: unknown) => options.onRedisError?.('record', error));
      }
    },
  };
}

const RECORD_COMMAND = 'gatewayRecordFetch';
const RECORD_LUA = `local current = redis.call('get', KEYS[1])
if current and cjson.decode(current).startedAt >= tonumber(ARGV[2]) then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[3])
return 1`;

type RecordCommand = (key: string, record: string, startedAt: string, ttlMs: string) => Promise<unknown>;

/** The record script as a command of this client (ioredis sends EVALSHA, and EVAL once on NOSCRIPT). */
function recordScript(redis: Redis): RecordCommand {
  const client = redis as Redis & { [RECORD_COMMAND]?: RecordCommand };
  if (!client[RECORD_COMMAND]) redis.defineCommand(RECORD_COMMAND, { numberOfKeys: 1, lua: RECORD_LUA });
  return client[RECORD_COMMAND]!.bind(client);
}

export type RecentFetchDecision =
  | { kind: 'answered'; record: FetchRecord }
  | { kind: 'wait'; retryAfterMs: number; record: FetchRecord }
  | { kind: 'fetch' };

/**
 * Pure: what a webhook that arrived at `trigger.at` needs, given the last fetch of its id.
 * Only an anonymous trigger (`mayWait`: Mollie's unsigned classic webhook) is held back
 * for the window; a signed one from the provider fetches unless a later fetch answers it.
 */
export function decideFromRecentFetch(
  record: FetchRecord | null,
  trigger: { at: number; mayWait: boolean },
  now: number,
  windows: RecentFetchWindows,
): RecentFetchDecision {
  if (!record) return { kind: 'fetch' };
  if (record.startedAt >= trigger.at) return { kind: 'answered', record };
  if (!trigger.mayWait) return { kind: 'fetch' };
  const window = record.outcome === 'found' ? windows.foundMs : windows.notFoundMs;
  const endsAt = record.startedAt + window;
  if (endsAt > now) return { kind: 'wait', retryAfterMs: endsAt - now, record };
  return { kind: 'fetch' };
}

/** A webhook left pending until the id's window ends; the receipt is retried then. */
export class RecentlyFetchedError extends Error {
  override readonly name = 'RecentlyFetchedError';
  constructor(
    readonly key: string,
    readonly retryAfterMs: number,
  ) {
    super(`fetched ${Math.round(retryAfterMs)} ms before its window ends; one fetch then answers every webhook that came meanwhile`);
  }
}
