/**
 * Bank connections: created idempotently by reference, watched until the end user
 * links, rejects or abandons them (there are no webhooks), then their accounts found.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Deps } from '../deps.js';
import { enqueueEvents } from '../events/outbox.js';
import { errorMessage } from '../primitives/error-message.js';
import { BankApiError } from '../providers/gocardless-bank/client.js';
import { connectionStatusOf } from '../providers/gocardless-bank/mapping.js';
import { REQUISITION_STATUSES, type Requisition, type RequisitionStatus } from '../providers/gocardless-bank/schemas.js';
import { markConnectionBroken } from './connection-health.js';
import { newBankId } from './ids.js';
import { getConnection, getLiveConnectionByReference, type ConnectionRow } from './queries.js';

export type BankDeps = Pick<Deps, 'db' | 'env' | 'logger' | 'bank'>;

export class BankFeedError extends Error {
  override readonly name = 'BankFeedError';
  constructor(
    readonly code: 'not_configured' | 'reference_conflict' | 'creation_in_progress' | 'bank_refused' | 'bank_unavailable' | 'not_found',
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export function requireBank(deps: Pick<Deps, 'bank'>) {
  if (!deps.bank) throw new BankFeedError('not_configured', 'bank feeds are off: set GOCARDLESS_BANK_SECRET_ID and GOCARDLESS_BANK_SECRET_KEY');
  return deps.bank.client;
}

/** How long a creator may take before another process takes the creation over. */
const CREATE_LEASE_MS = 30_000;
/** How long a concurrent request for the same reference waits for the creator's link. */
const CREATE_WAIT_MS = 15_000;
/** Looking at an unlinked requisition: often at first (the user is at the bank now), then rarely. */
export const CONSENT_CHECK_DELAYS_MS = [5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 900_000, 1_800_000, 3_600_000];
/** A requisition nobody completed in this long is abandoned. */
export const CONSENT_ABANDON_MS = 7 * 86_400_000;

export interface CreateConnectionInput {
  institutionId: string;
  reference: string;
  redirectUrl: string;
  maxHistoricalDays?: number;
  accessValidForDays?: number;
}

/**
 * Creates the agreement and requisition for `reference`, once. The partial unique
 * index on live references decides who creates: the INSERT either wins or does
 * nothing, and everyone else waits for the winner's link (taking the creation over
 * only if the winner's lease ran out). Returns `created: false` for the existing one.
 */
export async function createBankConnection(deps: BankDeps, input: CreateConnectionInput): Promise<{ connection: ConnectionRow; created: boolean }> {
  const client = requireBank(deps);
  const owner = randomBytes(8).toString('hex');
  const id = newBankId('bcn');
  const [inserted] = await deps.db.execute<ConnectionRow>(sql`
    insert into bank_connections (id, reference, institution_id, redirect_url, max_historical_days, access_valid_for_days, status, creating_owner, creating_until)
    values (${id}, ${input.reference}, ${input.institutionId}, ${input.redirectUrl}, ${input.maxHistoricalDays ?? 90}, ${input.accessValidForDays ?? 90},
      'creating', ${owner}, now() + ${CREATE_LEASE_MS} * interval '1 millisecond')
    on conflict (reference) where status not in ('expired', 'rejected', 'deleted', 'abandoned') do nothing
    returning *`);
  if (inserted) return { connection: await createRequisitionFor(deps, client, inserted, owner), created: true };

  const deadline = Date.now() + CREATE_WAIT_MS;
  for (;;) {
    const existing = await getLiveConnectionByReference(deps.db, input.reference);
    if (!existing) {
      // The live one ended between our INSERT and this read: try again from the top.
      return createBankConnection(deps, input);
    }
    if (existing.institution_id !== input.institutionId) {
      throw new BankFeedError('reference_conflict', `reference ${JSON.stringify(input.reference)} is already used by connection ${existing.id} for institution ${existing.institution_id}`);
    }
    if (existing.status !== 'creating') return { connection: existing, created: false };
    // The creator died mid-way: take over once its lease has run out (guarded: one taker).
    const [taken] = await deps.db.execute<ConnectionRow>(sql`
      update bank_connections set creating_owner = ${owner}, creating_until = now() + ${CREATE_LEASE_MS} * interval '1 millisecond'
      where id = ${existing.id} and status = 'creating' and creating_until < now()
      returning *`);
    if (taken) return { connection: await createRequisitionFor(deps, client, taken, owner, { takeover: true }), created: false };
    if (Date.now() > deadline) throw new BankFeedError('creation_in_progress', `connection ${existing.id} is still being created; retry shortly`, 1000);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How many pages of requisitions (100 each) a takeover reads looking for its creator's. */
const TAKEOVER_SEARCH_PAGES = 50;

async function createRequisitionFor(
  deps: BankDeps,
  client: ReturnType<typeof requireBank>,
  row: ConnectionRow,
  owner: string,
  options: { takeover?: boolean } = {},
): Promise<ConnectionRow> {
  try {
    // A creator that died after GoCardless made the requisition (and before it was stored)
    // left it under our connection id: the takeover adopts it instead of losing it.
    const requisition = (options.takeover ? await findRequisitionByReference(client, row.id) : null) ?? (await newRequisition(client, row));
    const [updated] = await deps.db.execute<ConnectionRow>(sql`
      update bank_connections set status = 'awaiting_consent', agreement_id = ${requisition.agreement ?? null}, requisition_id = ${requisition.id},
        requisition_status = ${requisition.status}, link = ${requisition.link}, creating_owner = null, creating_until = null,
        next_check_at = now() + ${CONSENT_CHECK_DELAYS_MS[0]!} * interval '1 millisecond', updated_at = now()
      where id = ${row.id} and creating_owner = ${owner}
      returning *`);
    return updated ?? (await getConnection(deps.db, row.id))!;
  } catch (error) {
    // Nothing usable was made: free the reference so the caller can correct and retry.
    await deps.db.execute(sql`update bank_connections set status = 'deleted', creating_owner = null, updated_at = now() where id = ${row.id} and creating_owner = ${owner}`);
    if (error instanceof BankApiError) {
      throw new BankFeedError(error.kind === 'bad_request' ? 'bank_refused' : 'bank_unavailable', `GoCardless refused the connection: ${error.message}`, error.retryAfterMs);
    }
    throw error;
  }
}

async function newRequisition(client: ReturnType<typeof requireBank>, row: ConnectionRow): Promise<Requisition> {
  const agreement = await client.createAgreement({
    institutionId: row.institution_id,
    maxHistoricalDays: row.max_historical_days,
    accessValidForDays: row.access_valid_for_days,
  });
  // GoCardless's reference is our connection id: unique by construction, and GoCardless
  // refuses a second requisition under it, so a takeover can never make two.
  const requisition = await client.createRequisition({ institutionId: row.institution_id, redirect: row.redirect_url, reference: row.id, agreement: agreement.id });
  return { ...requisition, agreement: requisition.agreement ?? agreement.id };
}

async function findRequisitionByReference(client: ReturnType<typeof requireBank>, reference: string): Promise<Requisition | null> {
  for (let page = 0; page < TAKEOVER_SEARCH_PAGES; page++) {
    const { results, next } = await client.listRequisitions({ limit: 100, offset: page * 100 });
    const found = results.find((requisition) => requisition.reference === reference);
    if (found) return found;
    if (!next || results.length === 0) return null;
  }
  return null;
}

/** Stops a connection: it is no longer synced, its requisition is deleted at GoCardless, and its reference is free again. */
export async function deleteBankConnection(deps: BankDeps, id: string): Promise<ConnectionRow | undefined> {
  const [row] = await deps.db.execute<ConnectionRow>(sql`
    update bank_connections set status = 'deleted', next_check_at = null, updated_at = now()
    where id = ${id} and status <> 'deleted'
    returning *`);
  if (!row) return getConnection(deps.db, id);
  await deps.db.execute(sql`update bank_accounts set next_sync_at = null where connection_id = ${id}`);
  if (row.requisition_id && deps.bank) {
    await deps.bank.client.deleteRequisition(row.requisition_id).catch((error: unknown) => {
      // Already gone there, or unreachable: our side is stopped either way.
      deps.logger.warn({ job: 'bank', connectionId: id, err: errorMessage(error) }, 'bank requisition delete failed');
    });
  }
  return row;
}

const isRequisitionStatus = (value: string): value is RequisitionStatus => (REQUISITION_STATUSES as readonly string[]).includes(value);

/**
 * Looks at an unlinked requisition once. Linked: reads the agreement's consent time,
 * discovers the accounts, and announces bank.connection.linked (once: the status
 * update is guarded). Rejected or suspended: broken. Still on its way: looks again later.
 */
export async function checkRequisition(deps: BankDeps, connection: ConnectionRow): Promise<ConnectionRow> {
  const client = requireBank(deps);
  if (connection.status !== 'awaiting_consent' || !connection.requisition_id) return connection;
  const requisition = await client.getRequisition(connection.requisition_id);
  const status = isRequisitionStatus(requisition.status) ? connectionStatusOf(requisition.status) : null;
  if (status === null) {
    const attempts = connection.check_attempts + 1;
    const abandoned = Date.now() - new Date(connection.created_at).getTime() > CONSENT_ABANDON_MS;
    const delay = CONSENT_CHECK_DELAYS_MS[Math.min(attempts, CONSENT_CHECK_DELAYS_MS.length - 1)]!;
    const [row] = await deps.db.execute<ConnectionRow>(sql`
      update bank_connections set requisition_status = ${requisition.status}, check_attempts = ${attempts},
        status = ${abandoned ? 'abandoned' : 'awaiting_consent'},
        next_check_at = ${abandoned ? null : sql`now() + ${delay} * interval '1 millisecond'`}, updated_at = now()
      where id = ${connection.id} and status = 'awaiting_consent'
      returning *`);
    return row ?? connection;
  }
  if (status === 'linked') {
    const agreement = connection.agreement_id ? await client.getAgreement(connection.agreement_id) : null;
    const accepted = agreement?.accepted ? new Date(agreement.accepted) : new Date();
    const expires = new Date(accepted.getTime() + (agreement?.access_valid_for_days ?? connection.access_valid_for_days) * 86_400_000);
    const accounts = await Promise.all(requisition.accounts.map((accountId) => client.getAccount(accountId)));
    return deps.db.transaction(async (tx) => {
      const [row] = await tx.execute<ConnectionRow>(sql`
        update bank_connections set status = 'linked', requisition_status = ${requisition.status},
          consent_accepted_at = ${accepted.toISOString()}::timestamptz, consent_expires_at = ${expires.toISOString()}::timestamptz,
          next_check_at = null, updated_at = now()
        where id = ${connection.id} and status = 'awaiting_consent'
        returning *`);
      if (!row) return (await getConnection(tx, connection.id))!;
      for (const account of accounts) {
        // The unique (connection, external id) makes discovery safe to repeat.
        await tx.execute(sql`
          insert into bank_accounts (id, connection_id, external_id, iban, owner_name, status, next_sync_at)
          values (${newBankId('bac')}, ${connection.id}, ${account.id}, ${account.iban ?? null}, ${account.owner_name ?? null}, ${account.status}, now())
          on conflict (connection_id, external_id) do nothing`);
      }
      await enqueueEvents(tx, [
        {
          type: 'bank.connection.linked',
          dedupeKey: `bank:connection:${connection.id}:linked`,
          data: { connectionId: connection.id, reference: connection.reference, institutionId: connection.institution_id, accounts: accounts.map((a) => ({ externalId: a.id, iban: a.iban ?? null })), consentExpiresAt: expires.toISOString() },
        },
      ]);
      return row;
    });
  }
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.execute<ConnectionRow>(sql`
      update bank_connections set status = ${status}, requisition_status = ${requisition.status}, next_check_at = null, updated_at = now()
      where id = ${connection.id} and status = 'awaiting_consent'
      returning *`);
    if (!row) return (await getConnection(tx, connection.id))!;
    if (status === 'expired') {
      await enqueueEvents(tx, [{ type: 'bank.connection.expired', dedupeKey: `bank:connection:${connection.id}:expired`, data: { connectionId: connection.id, reference: connection.reference, consentExpiresAt: null } }]);
    } else if (status === 'rejected' || status === 'suspended') {
      await markConnectionBroken(tx, connection.id, status, { message: `requisition ${requisition.status}` });
    }
    return (await getConnection(tx, connection.id))!;
  });
}
