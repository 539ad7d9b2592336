/**
 * Is anyone polling at all? A poller reports its own health (health.ts), which says
 * nothing when no poller runs anywhere: crashed loops, a deploy without them, a Workers
 * cron never configured. So every completed pass, in any process, stamps the fleet's one
 * row in poller_fleet, and every gateway process watches that row: when payments are due
 * and no pass has completed for POLLER_STALLED_AFTER_MS, the fleet is announced stalled
 * (`gateway.poller.stalled`), and the next completed pass announces it recovered
 * (`gateway.poller.recovered`, scope `fleet`). Each flip is a guarded UPDATE of that row
 * with its event in the same transaction, so however many processes watch, each episode
 * is announced exactly once.
 */
import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { sleep } from '../abortable-sleep.js';
import type { Db, DbOrTx } from '../db/client.js';
import { enqueueEvents } from '../events/outbox.js';
import { errorMessage } from '../primitives/error-message.js';

/** A process stamps the row at most this often, so idle passes in many processes cost little. */
const STAMP_EVERY = '1 second';

export interface FleetStatus {
  state: 'running' | 'stalled';
  lastPassAt: string;
  stateChangedAt: string;
  stalledAfterMs: number;
}

interface FleetRow {
  state: string;
  last_pass_at: Date | string;
  state_changed_at: Date | string;
  [key: string]: unknown;
}

const iso = (value: Date | string) => new Date(value).toISOString();

/** The row exists from the first process that watches or polls; its clock starts then. */
async function ensureFleetRow(db: DbOrTx): Promise<void> {
  await db.execute(sql`insert into poller_fleet (id) values (1) on conflict (id) do nothing`);
}

/**
 * Called when a pass completes (whatever its polls' outcomes: failing polls are the
 * accounts' health, not a stalled fleet). Announces the recovery when the fleet was stalled.
 */
export async function recordPollerPass(deps: { db: Db; logger: Logger }): Promise<void> {
  const recovered = await deps.db.transaction(async (tx) => {
    // Locked first, so the state read and the flip are one decision.
    const rows = await tx.execute<FleetRow & { db_now: Date | string }>(sql`
      insert into poller_fleet as f (id) values (1)
      on conflict (id) do update set id = f.id
      returning f.state, f.last_pass_at, f.state_changed_at, now() as db_now`);
    const row = rows[0]!;
    if (row.state !== 'stalled') {
      await tx.execute(sql`
        update poller_fleet set last_pass_at = now()
        where id = 1 and last_pass_at < now() - ${STAMP_EVERY}::interval`);
      return null;
    }
    // Guarded by the state it read, under the row lock taken above.
    await tx.execute(sql`update poller_fleet set last_pass_at = now(), state = 'running', state_changed_at = now() where id = 1 and state = 'stalled'`);
    const now = new Date(row.db_now);
    await enqueueEvents(tx, [
      {
        type: 'gateway.poller.recovered',
        // One recovery per stalled episode, named by when the episode began.
        dedupeKey: `poller:fleet-recovered:${new Date(row.state_changed_at).getTime()}`,
        timestamp: now,
        data: { scope: 'fleet', stalledSince: iso(row.state_changed_at), lastPassBefore: iso(row.last_pass_at), recoveredAt: now.toISOString() },
      },
    ]);
    return { stalledSince: iso(row.state_changed_at) };
  });
  if (recovered) deps.logger.warn({ job: 'poller-watch', ...recovered }, 'poller fleet recovered: a poller pass completed again');
}

/**
 * One look at the fleet: flips it to stalled (and announces it) when payments are due and
 * no pass has completed for `stalledAfterMs`. Returns true when this call made the flip.
 */
export async function checkPollerFleet(deps: { db: Db; logger: Logger }, stalledAfterMs: number): Promise<boolean> {
  const flipped = await deps.db.transaction(async (tx) => {
    await ensureFleetRow(tx);
    // Guarded UPDATE: of several processes watching at once, one flips; the others match nothing.
    const rows = await tx.execute<FleetRow & { db_now: Date | string; due: number; oldest_due_at: Date | string | null }>(sql`
      with due as (
        select count(*)::int as due, min(next_poll_at) as oldest_due_at from payments where next_poll_at <= now()
      )
      update poller_fleet f set state = 'stalled', state_changed_at = now()
      from due
      where f.id = 1 and f.state = 'running' and due.due > 0
        and f.last_pass_at < now() - make_interval(secs => ${stalledAfterMs / 1000})
      returning f.last_pass_at, now() as db_now, due.due, due.oldest_due_at`);
    const row = rows[0];
    if (!row) return null;
    const now = new Date(row.db_now);
    const data = {
      scope: 'fleet',
      since: now.toISOString(),
      lastPassAt: iso(row.last_pass_at),
      stalledAfterMs,
      due: Number(row.due),
      oldestDueAt: row.oldest_due_at === null ? null : iso(row.oldest_due_at),
    };
    await enqueueEvents(tx, [
      {
        type: 'gateway.poller.stalled',
        // The episode is named by the last pass before it: a second flip for it adds nothing.
        dedupeKey: `poller:stalled:${new Date(row.last_pass_at).getTime()}`,
        timestamp: now,
        data,
      },
    ]);
    return data;
  });
  if (flipped) {
    deps.logger.error(
      { job: 'poller-watch', ...flipped },
      `poller STALLED fleet-wide: no poller pass completed since ${flipped.lastPassAt} while ${flipped.due} payment(s) are due; is any process polling?`,
    );
  }
  return flipped !== null;
}

export async function readPollerFleet(db: DbOrTx, stalledAfterMs: number): Promise<FleetStatus | null> {
  const rows = await db.execute<FleetRow>(sql`select state, last_pass_at, state_changed_at from poller_fleet where id = 1`);
  const row = rows[0];
  if (!row) return null;
  return { state: row.state === 'stalled' ? 'stalled' : 'running', lastPassAt: iso(row.last_pass_at), stateChangedAt: iso(row.state_changed_at), stalledAfterMs };
}

/** How often each process looks: a quarter of the threshold, at most every 30 s. */
export function fleetWatchIntervalMs(stalledAfterMs: number): number {
  return Math.max(250, Math.min(30_000, Math.floor(stalledAfterMs / 4)));
}

/** Every process's watch loop (the poller loop is not required to run for it). */
export async function runPollerWatch(deps: { db: Db; logger: Logger; env: { POLLER_STALLED_AFTER_MS: number } }, options: { signal: AbortSignal }): Promise<void> {
  const stalledAfterMs = deps.env.POLLER_STALLED_AFTER_MS;
  const intervalMs = fleetWatchIntervalMs(stalledAfterMs);
  while (!options.signal.aborted) {
    try {
      await checkPollerFleet(deps, stalledAfterMs);
    } catch (error) {
      // The database is away: /readyz says so; the next look tries again.
      deps.logger.warn({ job: 'poller-watch', err: errorMessage(error) }, 'poller fleet check failed');
    }
    await sleep(intervalMs, options.signal);
  }
}
