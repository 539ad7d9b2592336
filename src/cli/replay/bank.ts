/**
 * `npm run replay -- --scenario bank`: the bank feed under the traffic that breaks naive
 * importers, against a gateway and the bank sandbox (src/sandbox/gocardless-bank). Bank
 * feeds have no webhooks, so nothing is recorded to replay: the run scripts the bank.
 *
 * It creates connections through the gateway (each twice at once, as a double click
 * would), gives consent at the sandbox's link, then for --bank-rounds rounds: syncs every
 * connection twice at once, and at the bank re-issues every pending transaction under a
 * new id, books one, lets one vanish and adds new ones. A last sync after the pending
 * grace, then the checks, through the gateway's API against the bank's own lists:
 *
 * - one connection per reference, one requisition per connection;
 * - every booked transaction at the bank is exactly one booked row, and no other row is booked;
 * - as many pending rows as the bank lists pending, and one removed row per vanished one;
 * - one event per change: a `bank.transaction.booked` per booked row, a `.removed` per removed
 *   row, at most one `.pending` per row, no event id twice.
 *
 * The gateway under test needs BANK_PENDING_GRACE_MS no longer than --bank-grace-ms and
 * BANK_DAILY_CALLS of at least 2 × rounds + 3 (each sync spends one call per scope).
 */
import { SANDBOX_INSTITUTION_ID } from '../../sandbox/gocardless-bank/state.js';
import { createGatewayApi, type FeedEvent } from './gateway-api.js';

export interface BankReplayOptions {
  gatewayUrl: string;
  adminToken: string;
  bankSandbox: string;
  connections: number;
  rounds: number;
  graceMs: number;
}

export interface BankReplayReport {
  ok: boolean;
  gateway: string;
  scenarios: ['bank'];
  connections: number;
  accounts: number;
  rounds: number;
  requests: { creations: Record<string, number>; syncs: Record<string, number> };
  bank: { booked: number; pending: number; vanished: number };
  gateway_rows: { booked: number; pending: number; removed: number; settledPending: number };
  events: { pending: number; booked: number; removed: number };
  durationMs: number;
  violations: string[];
}

interface BankTx {
  internalTransactionId?: string;
}

interface GatewayTx {
  id: string;
  connectionId: string;
  status: 'pending' | 'booked' | 'removed';
  internalTransactionId: string | null;
  pendingOf?: string;
}

export class BankReplaySetupError extends Error {
  override readonly name = 'BankReplaySetupError';
}

const count = (tally: Record<string, number>, key: string | number) => (tally[String(key)] = (tally[String(key)] ?? 0) + 1);

export async function runBankReplay(options: BankReplayOptions, io: { note: (line: string) => void }): Promise<BankReplayReport> {
  const started = Date.now();
  const base = options.gatewayUrl.replace(/\/+$/, '');
  const control = `${options.bankSandbox.replace(/\/+$/, '')}/__sandbox`;
  const headers = { authorization: `Bearer ${options.adminToken}`, 'content-type': 'application/json' };
  const api = createGatewayApi(base, options.adminToken);
  const violations: string[] = [];
  const requests = { creations: {} as Record<string, number>, syncs: {} as Record<string, number> };

  async function sandbox<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }).catch((error: unknown) => {
      throw new BankReplaySetupError(`bank sandbox ${control}${path}: ${(error as Error).message}`);
    });
    if (!response.ok) throw new BankReplaySetupError(`bank sandbox ${method} ${path}: ${response.status} ${(await response.text()).slice(0, 200)}`);
    return (await response.json()) as T;
  }
  async function gateway(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Kept empty: the status says what happened.
    }
    return { status: response.status, body: parsed };
  }
  async function syncTwiceAtOnce(id: string): Promise<void> {
    const answers = await Promise.all([0, 1].map(() => gateway('POST', `/v1/bank-connections/${id}/sync`)));
    for (const answer of answers) {
      count(requests.syncs, answer.status);
      // 429: the account's calls for today are spent; a documented answer, not a failure.
      if (answer.status !== 200 && answer.status !== 429) violations.push(`POST /v1/bank-connections/${id}/sync answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 200)}`);
    }
  }

  await sandbox('GET', '/stats');
  const run = Date.now().toString(36);
  io.note(`bank: ${options.connections} connections, ${options.rounds} rounds, run ${run}`);

  // Creation: each reference twice at once; one connection, one link.
  const connections: { id: string; reference: string }[] = [];
  for (let i = 0; i < options.connections; i++) {
    const reference = `replay-${run}-${i}`;
    const body = { institutionId: SANDBOX_INSTITUTION_ID, reference, redirectUrl: 'https://replay.invalid/return' };
    const answers = await Promise.all([0, 1].map(() => gateway('POST', '/v1/bank-connections', body)));
    for (const answer of answers) count(requests.creations, answer.status);
    const ids = new Set(answers.map((answer) => answer.body.id));
    const links = new Set(answers.map((answer) => answer.body.link));
    const statuses = answers.map((answer) => answer.status).sort();
    if (statuses.join() !== '200,201' || ids.size !== 1 || links.size !== 1) {
      violations.push(`reference ${reference}: two creations at once answered ${statuses.join(' and ')} with ${ids.size} connection id(s) and ${links.size} link(s); expected 201 and 200 with one`);
    }
    const created = answers.find((answer) => answer.status === 201 || answer.status === 200);
    if (!created) throw new BankReplaySetupError(`POST /v1/bank-connections answered ${answers.map((a) => a.status).join(', ')}: ${JSON.stringify(answers[0]!.body).slice(0, 300)}`);
    const consent = await fetch(String(created.body.link), { redirect: 'manual' });
    if (consent.status !== 302) throw new BankReplaySetupError(`the consent link answered ${consent.status}`);
    connections.push({ id: String(created.body.id), reference });
  }

  const requisitions = await sandbox<{ reference: string; accounts: string[] }[]>('GET', '/requisitions');
  const accountsOf = new Map<string, string[]>();
  for (const connection of connections) {
    const made = requisitions.filter((requisition) => requisition.reference === connection.id);
    if (made.length !== 1) violations.push(`connection ${connection.id}: ${made.length} requisitions at the bank, expected 1`);
    accountsOf.set(connection.id, made[0]?.accounts ?? []);
  }
  const accounts = [...accountsOf.values()].flat();
  for (const account of accounts) await sandbox('POST', `/accounts/${account}/generate`, { booked: 30, pending: 5 });

  let vanished = 0;
  for (let round = 0; round < options.rounds; round++) {
    await Promise.all(connections.map((connection) => syncTwiceAtOnce(connection.id)));
    for (const account of accounts) {
      await sandbox('POST', `/accounts/${account}/pending/reissue`);
      const { pending } = await sandbox<{ pending: BankTx[] }>('GET', `/accounts/${account}/transactions`);
      if (pending.length > 0) await sandbox('POST', `/accounts/${account}/pending/0/book`);
      if (pending.length > 2) {
        await sandbox('POST', `/accounts/${account}/pending/${pending.length - 2}/vanish`);
        vanished++;
      }
      await sandbox('POST', `/accounts/${account}/generate`, { booked: 5, pending: 2 });
    }
  }
  // One sync that sees the last round, then one past the grace that removes what vanished.
  await Promise.all(connections.map((connection) => syncTwiceAtOnce(connection.id)));
  await new Promise((resolve) => setTimeout(resolve, options.graceMs + 1000));
  await Promise.all(connections.map((connection) => syncTwiceAtOnce(connection.id)));

  // What the bank lists now, against what the gateway holds.
  const bankBooked = new Set<string>();
  let bankPending = 0;
  for (const account of accounts) {
    const lists = await sandbox<{ booked: BankTx[]; pending: BankTx[] }>('GET', `/accounts/${account}/transactions`);
    for (const tx of lists.booked) if (tx.internalTransactionId) bankBooked.add(tx.internalTransactionId);
    bankPending += lists.pending.length;
  }
  const rows: GatewayTx[] = [];
  for (const connection of connections) {
    let after: string | null = null;
    for (;;) {
      const page = await gateway('GET', `/v1/bank-transactions?connection=${connection.id}&limit=500${after ? `&after=${after}` : ''}`);
      if (page.status !== 200) throw new BankReplaySetupError(`GET /v1/bank-transactions answered ${page.status}`);
      rows.push(...(page.body.data as GatewayTx[]));
      after = page.body.nextCursor as string | null;
      if (!after) break;
    }
  }
  const booked = rows.filter((row) => row.status === 'booked');
  const bookedIds = new Map<string, number>();
  for (const row of booked) if (row.internalTransactionId) bookedIds.set(row.internalTransactionId, (bookedIds.get(row.internalTransactionId) ?? 0) + 1);
  for (const [id, n] of bookedIds) if (n > 1) violations.push(`booked transaction ${id} is ${n} rows`);
  for (const id of bankBooked) if (!bookedIds.has(id)) violations.push(`booked transaction ${id} at the bank has no booked row at the gateway`);
  for (const row of booked) if (!row.internalTransactionId || !bankBooked.has(row.internalTransactionId)) violations.push(`row ${row.id} is booked but the bank books no ${row.internalTransactionId}`);
  const pendingRows = rows.filter((row) => row.status === 'pending').length;
  const removedRows = rows.filter((row) => row.status === 'removed').length;
  if (pendingRows !== bankPending) violations.push(`${pendingRows} pending rows at the gateway, ${bankPending} pending transactions at the bank`);
  if (removedRows !== vanished) violations.push(`${removedRows} removed rows at the gateway, ${vanished} pending transactions vanished at the bank`);

  // One event per change.
  const mine = new Set(connections.map((connection) => connection.id));
  const rowIds = new Set(rows.map((row) => row.id));
  const events = async (type: string) => (await api.typeEvents(type)).filter((event) => mine.has(String(event.data.connectionId)));
  const [pendingEvents, bookedEvents, removedEvents] = await Promise.all(['bank.transaction.pending', 'bank.transaction.booked', 'bank.transaction.removed'].map(events));
  const once = (list: FeedEvent[], type: string, expected: Set<string> | null) => {
    const seen = new Map<string, number>();
    for (const event of list) seen.set(String(event.data.id), (seen.get(String(event.data.id)) ?? 0) + 1);
    for (const [id, n] of seen) if (n > 1) violations.push(`${type} for ${id} announced ${n} times`);
    for (const id of seen.keys()) if (!rowIds.has(id)) violations.push(`${type} for ${id}, which is no row of the gateway`);
    if (expected) for (const id of expected) if (!seen.has(id)) violations.push(`row ${id} has no ${type} event`);
  };
  once(pendingEvents!, 'bank.transaction.pending', null);
  once(bookedEvents!, 'bank.transaction.booked', new Set(booked.map((row) => row.id)));
  once(removedEvents!, 'bank.transaction.removed', new Set(rows.filter((row) => row.status === 'removed').map((row) => row.id)));
  const eventIds = [...pendingEvents!, ...bookedEvents!, ...removedEvents!].map((event) => event.id);
  if (new Set(eventIds).size !== eventIds.length) violations.push(`${eventIds.length - new Set(eventIds).size} event ids appear twice in the feed`);

  return {
    ok: violations.length === 0,
    gateway: base,
    scenarios: ['bank'],
    connections: connections.length,
    accounts: accounts.length,
    rounds: options.rounds,
    requests,
    bank: { booked: bankBooked.size, pending: bankPending, vanished },
    gateway_rows: { booked: booked.length, pending: pendingRows, removed: removedRows, settledPending: booked.filter((row) => row.pendingOf).length },
    events: { pending: pendingEvents!.length, booked: bookedEvents!.length, removed: removedEvents!.length },
    durationMs: Date.now() - started,
    violations,
  };
}

const tally = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${status}×${n}`)
    .join(', ');

export function formatBankSummary(report: BankReplayReport): string {
  const lines = [
    `replay of the bank feed → ${report.gateway} (${report.connections} connections, ${report.accounts} accounts, ${report.rounds} rounds, ${report.durationMs} ms)`,
    `  creations      ${tally(report.requests.creations)} (each reference twice at once)`,
    `  syncs          ${tally(report.requests.syncs)} (each connection twice at once per round)`,
    `  bank           ${report.bank.booked} booked, ${report.bank.pending} pending, ${report.bank.vanished} vanished`,
    `  gateway        ${report.gateway_rows.booked} booked rows (${report.gateway_rows.settledPending} of them settled a pending one), ${report.gateway_rows.pending} pending, ${report.gateway_rows.removed} removed`,
    `  events         ${report.events.pending} pending, ${report.events.booked} booked, ${report.events.removed} removed`,
  ];
  if (report.violations.length === 0) lines.push('OK: every invariant held');
  else {
    lines.push(`FAILED: ${report.violations.length} invariant violation(s)`);
    for (const violation of report.violations.slice(0, 30)) lines.push(`  - ${violation}`);
  }
  return `${lines.join('\n')}\n`;
}
