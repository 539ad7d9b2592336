import { parseArgs } from 'node:util';
import type { OutageMode } from './sandbox-control.js';
import { isAccountName } from '../../webhooks/accounts.js';

export const SCENARIOS = ['storm', 'out-of-order', 'race', 'outage', 'bank'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface ReplayOptions {
  files: string[];
  gatewayUrl: string;
  adminToken: string | null;
  scenarios: Set<Scenario>;
  copies: number;
  order: 'reverse' | 'shuffle';
  seed: number;
  outageMs: number;
  outageAt: number;
  outageMode: OutageMode;
  mollieSandbox: string | null;
  gocardlessSandbox: string | null;
  bankSandbox: string | null;
  bankConnections: number;
  bankRounds: number;
  bankGraceMs: number;
  mollieSecret: string | null;
  gocardlessSecret: string | null;
  concurrency: number;
  ratePerSecond: number | null;
  ids: 'auto' | 'keep' | 'fresh';
  account: string | null;
  settleTimeoutMs: number;
  stepWait: boolean;
  databaseUrl: string | null;
  json: boolean;
  progress: boolean;
  help: boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `Replays provider webhooks against a gateway and checks what it made of them.

usage: npm run replay -- [options] <file.jsonl>...
       (files: fixtures/replay/*.jsonl, or the output of npm run export-receipts)
       npm run replay -- --scenario bank --bank-sandbox URL --admin-token T [options]

scenarios (--scenario a,b or repeated; none = one in-order pass):
  storm          every webhook sent --copies times at once
  out-of-order   the providers' final state is set first, then webhooks (and the events
                 inside GoCardless batches) are sent --order reverse|shuffle
  race           each payment webhook fires together with POST /v1/payments/:provider/:id/sync
                 (the customer's return page); needs --admin-token
  outage         the sandbox providers go down for --outage-ms once --outage-at of the
                 webhooks are sent, then heal; the gateway's retry worker must catch up
  bank           the bank feed, alone and without files: connections created twice at
                 once, consent given, then --bank-rounds rounds of two syncs at once while
                 the bank re-issues, books, drops and adds transactions; checks every
                 booked transaction is one row and every change one event. The gateway
                 needs BANK_PENDING_GRACE_MS <= --bank-grace-ms and BANK_DAILY_CALLS of at
                 least 2 x rounds + 3

options:
  --gateway URL              gateway origin (env GATEWAY_URL; default http://127.0.0.1:8787)
  --admin-token TOKEN        /v1 bearer token (env ADMIN_TOKEN): invariants are checked
                             through GET /v1/payments and GET /v1/events
  --mollie-sandbox URL       create the fixtures' payments in this Mollie sandbox first
  --gocardless-sandbox URL   ... and in this GoCardless sandbox
  --bank-sandbox URL         bank: the GoCardless Bank Account Data sandbox the gateway uses
  --bank-connections N       bank: connections to create (default 3)
  --bank-rounds N            bank: rounds of syncs and bank changes (default 3)
  --bank-grace-ms MS         bank: the gateway's BANK_PENDING_GRACE_MS (default 0)
  --mollie-secret S          signs Mollie next-gen events (env MOLLIE_WEBHOOK_SECRETS, first entry)
  --gocardless-secret S      signs GoCardless batches (env GOCARDLESS_WEBHOOK_SECRETS, first entry)
  --copies N                 storm: copies of each webhook (default 5)
  --order reverse|shuffle    out-of-order: how to reorder (default shuffle)
  --seed N                   shuffle seed (default: random, printed in the summary)
  --outage-ms MS             outage: how long the providers stay down (default 3000)
  --outage-at F              outage: fraction of webhooks sent before it starts (default 0.5)
  --outage-mode error|reset  outage: 5xx answers, or dropped connections (default error)
  --concurrency N            webhooks in flight at once (default 8)
  --rate N                   webhooks started per second (default: as fast as --concurrency allows)
  --keep-ids                 send the fixtures' ids as written (default: a per-run suffix on
                             every id, so a fixture can be replayed again; exports keep theirs)
  --fresh-ids                suffix the ids of exported receipts too
  --account NAME             send everything to /webhooks/<provider>/NAME
  --settle-timeout MS        how long the gateway gets to catch up (default 60000)
  --no-step-wait             in order, move a payment to its next provider state without
                             waiting for the gateway to show the previous one (by default
                             it waits, up to 10 s, so the payment's history is reproduced)
  --database-url URL         also check rows directly: one per provider id, no receipt left pending
  --json                     print the summary as JSON
  --no-progress              no progress bar
  -h, --help

exit status: 0 all invariants held; 1 an invariant broke; 2 bad usage or the run could not start.`;

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  return parsed;
}

function url(name: string, value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new UsageError(`--${name} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  return value.replace(/\/+$/, '');
}

const firstEntry = (list: string | undefined) => list?.split(',').map((entry) => entry.trim()).find(Boolean) ?? null;

export function parseReplayArgs(argv: string[], env: Record<string, string | undefined>): ReplayOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        gateway: { type: 'string' },
        'admin-token': { type: 'string' },
        scenario: { type: 'string', multiple: true },
        copies: { type: 'string' },
        order: { type: 'string' },
        seed: { type: 'string' },
        'outage-ms': { type: 'string' },
        'outage-at': { type: 'string' },
        'outage-mode': { type: 'string' },
        'mollie-sandbox': { type: 'string' },
        'gocardless-sandbox': { type: 'string' },
        'bank-sandbox': { type: 'string' },
        'bank-connections': { type: 'string' },
        'bank-rounds': { type: 'string' },
        'bank-grace-ms': { type: 'string' },
        'mollie-secret': { type: 'string' },
        'gocardless-secret': { type: 'string' },
        concurrency: { type: 'string' },
        rate: { type: 'string' },
        'keep-ids': { type: 'boolean' },
        'fresh-ids': { type: 'boolean' },
        account: { type: 'string' },
        'settle-timeout': { type: 'string' },
        'no-step-wait': { type: 'boolean' },
        'database-url': { type: 'string' },
        json: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const help = values.help === true;

  const scenarios = new Set<Scenario>();
  for (const entry of (values.scenario ?? []).flatMap((value) => value.split(','))) {
    const name = entry.trim();
    if (name === '') continue;
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new UsageError(`unknown scenario ${JSON.stringify(name)}; expected ${SCENARIOS.join(', ')}`);
    scenarios.add(name as Scenario);
  }

  const order = values.order ?? 'shuffle';
  if (order !== 'reverse' && order !== 'shuffle') throw new UsageError(`--order must be reverse or shuffle, got ${JSON.stringify(order)}`);
  const outageMode = values['outage-mode'] ?? 'error';
  if (outageMode !== 'error' && outageMode !== 'reset') throw new UsageError(`--outage-mode must be error or reset, got ${JSON.stringify(outageMode)}`);
  const outageAt = values['outage-at'] === undefined ? 0.5 : Number(values['outage-at']);
  if (!(outageAt >= 0 && outageAt <= 1)) throw new UsageError(`--outage-at must be a fraction from 0 to 1, got ${JSON.stringify(values['outage-at'])}`);
  let ratePerSecond: number | null = null;
  if (values.rate !== undefined) {
    ratePerSecond = Number(values.rate);
    if (!(ratePerSecond > 0)) throw new UsageError(`--rate must be a positive number, got ${JSON.stringify(values.rate)}`);
  }
  if (values['keep-ids'] && values['fresh-ids']) throw new UsageError('--keep-ids and --fresh-ids exclude each other');
  const account = values.account ?? null;
  if (account !== null && !isAccountName(account)) throw new UsageError('--account must be 1-64 letters, digits, _ or -');

  const options: ReplayOptions = {
    files: positionals,
    gatewayUrl: url('gateway', values.gateway ?? env.GATEWAY_URL) ?? 'http://127.0.0.1:8787',
    adminToken: values['admin-token'] ?? (env.ADMIN_TOKEN || null),
    scenarios,
    copies: positiveInt('copies', values.copies, 5),
    order,
    seed: positiveInt('seed', values.seed, Math.floor(Math.random() * 2 ** 31), 0),
    outageMs: positiveInt('outage-ms', values['outage-ms'], 3000, 0),
    outageAt,
    outageMode,
    mollieSandbox: url('mollie-sandbox', values['mollie-sandbox']),
    gocardlessSandbox: url('gocardless-sandbox', values['gocardless-sandbox']),
    bankSandbox: url('bank-sandbox', values['bank-sandbox']),
    bankConnections: positiveInt('bank-connections', values['bank-connections'], 3),
    bankRounds: positiveInt('bank-rounds', values['bank-rounds'], 3),
    bankGraceMs: positiveInt('bank-grace-ms', values['bank-grace-ms'], 0, 0),
    mollieSecret: values['mollie-secret'] ?? firstEntry(env.MOLLIE_WEBHOOK_SECRETS),
    gocardlessSecret: values['gocardless-secret'] ?? firstEntry(env.GOCARDLESS_WEBHOOK_SECRETS),
    concurrency: positiveInt('concurrency', values.concurrency, 8),
    ratePerSecond,
    ids: values['keep-ids'] ? 'keep' : values['fresh-ids'] ? 'fresh' : 'auto',
    account,
    settleTimeoutMs: positiveInt('settle-timeout', values['settle-timeout'], 60_000, 0),
    stepWait: values['no-step-wait'] !== true,
    databaseUrl: values['database-url'] || null,
    json: values.json === true,
    progress: values['no-progress'] !== true,
    help,
  };
  if (help) return options;
  if (scenarios.has('bank')) {
    if (scenarios.size > 1 || options.files.length > 0) throw new UsageError('--scenario bank runs alone, without files (the bank feed has no webhooks to replay)');
    if (!options.bankSandbox) throw new UsageError('--scenario bank scripts the bank: pass --bank-sandbox (the sandbox the gateway\'s GOCARDLESS_BANK_API_URL points at)');
    if (!options.adminToken) throw new UsageError('--scenario bank creates connections through /v1/bank-connections: pass --admin-token (or ADMIN_TOKEN)');
    return options;
  }
  if (options.files.length === 0) throw new UsageError('give at least one JSONL file to replay (e.g. fixtures/replay/mollie-race.jsonl)');
  if (scenarios.has('race') && !options.adminToken) throw new UsageError('--scenario race syncs through POST /v1/payments/:provider/:id/sync: pass --admin-token (or ADMIN_TOKEN)');
  if (scenarios.has('outage') && !options.mollieSandbox && !options.gocardlessSandbox) {
    throw new UsageError('--scenario outage takes a sandbox down: pass --mollie-sandbox and/or --gocardless-sandbox');
  }
  return options;
}
