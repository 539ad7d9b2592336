/**
 * One replay run: seed the sandboxes, send the webhooks the scenarios ask for, let the
 * gateway settle, then judge the result through its own API (and, optionally, its
 * database). Everything the run saw ends up in the report.
 */
import postgres from 'postgres';
import { seededRandom } from '../../sandbox/gocardless-webhook-sender.js';
import type { ProviderName } from '../../providers/types.js';
import { createGatewayApi, type FeedEvent, type GatewayApi } from './gateway-api.js';
import { checkForwarded, checkPayment, isSettled, matchesExpectation, type PaymentObservation } from './invariants.js';
import type { ReplayOptions } from './options.js';
import type { Progress } from './progress.js';
import {
  expectationsOf,
  mollieParents,
  paymentKey,
  ProviderModel,
  sameExpectation,
  subjectsOf,
  withEvents,
  type Expectation,
  type LoadedReplay,
  type ReplayUnit,
} from './records.js';
import { MissingSecretError, send, webhookRequest, type HttpOutcome, type ReplaySecrets } from './requests.js';
import { applySandboxState, setSandboxDown, type SandboxUrls } from './sandbox-control.js';

export interface RequestTally {
  sent: number;
  acknowledged: number;
  /** HTTP status (or "no answer") → count. */
  byStatus: Record<string, number>;
}

export interface PaymentLine {
  provider: string;
  id: string;
  status: string | null;
  providerStatus: string | null;
  version: number | null;
  events: string[];
}

export interface ReplayReport {
  ok: boolean;
  gateway: string;
  scenarios: string[];
  files: string[];
  webhooks: number;
  idSuffix: string | null;
  seed: number | null;
  webhookRequests: RequestTally;
  syncRequests: RequestTally;
  sent: number;
  acknowledged: number;
  serverErrors: number;
  /** 5xx answers to return-page syncs while a provider was down: the documented 502/503. */
  outageErrors: number;
  outage: { startedAfterMs: number; downMs: number } | null;
  checked: boolean;
  payments: { checked: number; found: number; expected: number; settled: number; list: PaymentLine[] };
  events: { payment: number; forwarded: number };
  duplicates: number;
  database: { rows: number; duplicateRows: number; pendingReceipts: number; failedReceipts: number } | null;
  settleMs: number;
  durationMs: number;
  violations: string[];
  warnings: string[];
}

export class ReplaySetupError extends Error {
  override readonly name = 'ReplaySetupError';
}

interface Subject {
  provider: ProviderName;
  id: string;
  account: string;
  expected?: Expectation;
}

/** How long an in-order replay waits for the gateway to reflect one provider state before the next. */
const STEP_WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

function tally(): RequestTally {
  return { sent: 0, acknowledged: 0, byStatus: {} };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

function reorder(units: ReplayUnit[], order: 'reverse' | 'shuffle', random: () => number): ReplayUnit[] {
  const arrange = <T>(items: readonly T[]) => (order === 'reverse' ? [...items].reverse() : shuffled(items, random));
  return arrange(units).map((unit) => (unit.events && unit.events.length > 1 ? withEvents(unit, arrange(unit.events)) : unit));
}

export async function runReplay(options: ReplayOptions, loaded: LoadedReplay, io: { progress: Progress; note: (line: string) => void }): Promise<ReplayReport> {
  const started = Date.now();
  const { progress, note } = io;
  const scenarios = options.scenarios;
  const secrets: ReplaySecrets = { mollie: options.mollieSecret, gocardless: options.gocardlessSecret };
  const sandboxes: SandboxUrls = { mollie: options.mollieSandbox, gocardless: options.gocardlessSandbox };
  const api: GatewayApi | null = options.adminToken ? createGatewayApi(options.gatewayUrl, options.adminToken) : null;
  const violations: string[] = [];
  const warnings: string[] = [];

  const units = loaded.units;
  // Every request is built once up front, so a missing secret stops the run before anything is sent.
  for (const unit of units) {
    try {
      webhookRequest(unit, options.gatewayUrl, secrets);
    } catch (error) {
      if (error instanceof MissingSecretError) throw new ReplaySetupError(error.message);
      throw error;
    }
  }
  const health = await send(`${options.gatewayUrl}/healthz`, { method: 'GET', timeoutMs: 5000 });
  if (health.status !== 200) throw new ReplaySetupError(`the gateway at ${options.gatewayUrl} is not up (/healthz: ${health.status ?? health.error})`);

  for (const provider of ['mollie', 'gocardless'] as const) {
    if (!sandboxes[provider] && units.some((unit) => unit.sandbox.some((state) => state.provider === provider))) {
      note(`no --${provider}-sandbox: assuming the gateway's ${provider} already has the payments these webhooks name`);
    }
  }

  // What each webhook is about, and where each payment should end.
  const parents = mollieParents(units);
  const expectations = expectationsOf(units);
  const subjects = new Map<string, Subject>();
  const forwardedEventIds: string[] = [];
  const receiptIds = { mollie: new Set<string>(), gocardless: new Set<string>() };
  const unitSubjects = new Map<ReplayUnit, string[]>();
  for (const unit of units) {
    const about = subjectsOf(unit, parents);
    unitSubjects.set(unit, about.payments);
    forwardedEventIds.push(...about.forwardedEventIds);
    for (const id of about.payments) {
      const key = paymentKey(unit.provider, id);
      if (!subjects.has(key)) subjects.set(key, { provider: unit.provider, id, account: unit.account });
    }
    if (unit.provider === 'gocardless') {
      for (const event of unit.events ?? []) if (typeof event.id === 'string') receiptIds.gocardless.add(event.id);
    } else if (unit.kind === 'classic') {
      const id = new URLSearchParams(unit.body).get('id');
      if (id) receiptIds.mollie.add(id);
    } else {
      try {
        const entityId = (JSON.parse(unit.body) as { entityId?: unknown }).entityId;
        if (typeof entityId === 'string') receiptIds.mollie.add(entityId);
      } catch {
        // refused by the gateway; no receipt
      }
    }
  }
  for (const [key, expected] of expectations) {
    subjects.set(key, { ...(subjects.get(key) ?? { provider: expected.provider, id: expected.id, account: expected.account }), expected });
  }

  // Scenario shaping.
  const random = seededRandom(options.seed);
  const outOfOrder = scenarios.has('out-of-order');
  let sequence = outOfOrder ? reorder(units, options.order, random) : units;
  const copies = scenarios.has('storm') ? options.copies : 1;
  const race = scenarios.has('race') && api !== null;
  const totalRequests = sequence.reduce((sum, unit) => sum + copies + (race ? (unitSubjects.get(units[unit.index]!) ?? []).length : 0), 0);

  if (outOfOrder) {
    // The provider has moved on; the webhooks are late and shuffled. Its final state goes in first.
    progress.phase('seeding');
    let done = 0;
    for (const unit of units) {
      for (const state of unit.sandbox) await applySandboxState(sandboxes, state, unit.seed);
      progress.update({ done: ++done, total: units.length, acknowledged: 0, serverErrors: 0, failed: 0, detail: 'provider states set' });
    }
    progress.finish();
    sequence = sequence.map((unit) => ({ ...unit, sandbox: [] }));
  }

  const webhookTally = tally();
  const syncTally = tally();
  let serverErrors = 0;
  let outageErrors = 0;
  let failed = 0;
  let done = 0;
  const outageWindow = { from: Number.POSITIVE_INFINITY, to: Number.POSITIVE_INFINITY };
  const inOutage = (outcome: HttpOutcome) => outcome.startedAt >= outageWindow.from && outcome.startedAt <= outageWindow.to;
  const problem = (line: string) => {
    if (violations.length < 200) violations.push(line);
  };

  const count = (target: RequestTally, outcome: HttpOutcome, ok: boolean) => {
    target.sent++;
    const key = outcome.status === null ? `no answer (${outcome.error ?? 'error'})` : String(outcome.status);
    target.byStatus[key] = (target.byStatus[key] ?? 0) + 1;
    if (ok) target.acknowledged++;
    done++;
    progress.update({ done, total: totalRequests, acknowledged: webhookTally.acknowledged + syncTally.acknowledged, serverErrors, failed });
  };

  async function fire(unit: ReplayUnit): Promise<void> {
    const request = webhookRequest(unit, options.gatewayUrl, secrets);
    const original = units[unit.index]!;
    const payments = race ? (unitSubjects.get(original) ?? []) : [];
    // Same tick: the storm's copies and the return page's syncs leave together.
    const webhookSends = Array.from({ length: copies }, () => send(request.url, { method: 'POST', headers: request.headers, body: request.body }));
    const syncSends = payments.map((id) =>
      send(api!.syncUrl(unit.provider, id, unit.account), { method: 'POST', headers: api!.authHeaders }).then((outcome) => ({ id, outcome })),
    );
    const [webhooks, syncs] = await Promise.all([Promise.all(webhookSends), Promise.all(syncSends)]);
    for (const outcome of webhooks) {
      const ok = outcome.status !== null && (unit.provider === 'mollie' ? outcome.status === 200 : outcome.status >= 200 && outcome.status < 300);
      if (outcome.status !== null && outcome.status >= 500) {
        serverErrors++;
        problem(`${unit.source}: the gateway answered a ${unit.provider} webhook with ${outcome.status}`);
      } else if (!ok) {
        failed++;
        problem(`${unit.source}: ${unit.provider} webhook not acknowledged: ${outcome.status ?? outcome.error}`);
      }
      count(webhookTally, outcome, ok);
    }
    for (const { id, outcome } of syncs) {
      const expected = subjects.get(paymentKey(unit.provider, id))?.expected;
      const ok = outcome.status === 200;
      if (outcome.status !== null && outcome.status >= 500) {
        if (inOutage(outcome)) outageErrors++;
        else {
          serverErrors++;
          problem(`${unit.source}: return-page sync of ${id} answered ${outcome.status}`);
        }
      } else if (outcome.status === 404 && expected) {
        failed++;
        problem(`${unit.source}: return-page sync of ${id} answered 404, but the provider has the payment`);
      } else if (outcome.status === 409) {
        warnings.push(`return-page sync of ${id} answered 409 (busy longer than the return page waits)`);
      } else if (!ok && outcome.status !== 404) {
        failed++;
        problem(`${unit.source}: return-page sync of ${id} answered ${outcome.status ?? outcome.error}`);
      }
      count(syncTally, outcome, ok);
    }
  }

  // In order, a payment's next provider state waits until the gateway has caught up with
  // the previous one, so the replay reproduces its history (e.g. paid, then a late
  // failure) instead of letting the gateway see only the end.
  const stepWait = options.stepWait && api !== null && !outOfOrder;
  const lastApplied = new Map<string, Expectation>();
  const model = new ProviderModel();
  const outageActive = () => Date.now() >= outageWindow.from && outageWindow.to === Number.POSITIVE_INFINITY;
  async function caughtUp(expected: Expectation): Promise<void> {
    const deadline = Date.now() + STEP_WAIT_MS;
    while (Date.now() < deadline && !outageActive()) {
      try {
        if (matchesExpectation(await api!.getPayment(expected.provider, expected.id), expected)) return;
      } catch {
        // the gateway is busy or restarting; keep looking until the deadline
      }
      await sleep(100);
    }
    if (!outageActive()) warnings.push(`${expected.provider} ${expected.id} did not reach ${expected.providerStatus} within ${STEP_WAIT_MS} ms; moved it on anyway`);
  }
  async function applyStates(unit: ReplayUnit): Promise<void> {
    for (const state of unit.sandbox) {
      const key = paymentKey(state.provider, state.payment.id);
      const next = model.apply(state, unit.account);
      const previous = lastApplied.get(key);
      if (stepWait && previous && !sameExpectation(previous, next)) await caughtUp(previous);
      await applySandboxState(sandboxes, state, unit.seed);
      lastApplied.set(key, next);
    }
  }

  let dispatched = 0;
  let sendStarted = 0;
  async function dispatch(batch: ReplayUnit[]): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for (const unit of batch) {
      if (dispatched === 0) sendStarted = Date.now();
      if (options.ratePerSecond) await sleep(sendStarted + (dispatched * 1000) / options.ratePerSecond - Date.now());
      dispatched++;
      while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
      // In order: what the provider says when this webhook was sent, set before it is sent.
      await applyStates(unit);
      const flight: Promise<void> = fire(unit).finally(() => inFlight.delete(flight));
      inFlight.add(flight);
    }
    await Promise.all(inFlight);
  }

  const outageProviders = (['mollie', 'gocardless'] as const).filter((provider) => sandboxes[provider]);
  let outage: ReplayReport['outage'] = null;
  progress.phase('sending');
  progress.update({ done: 0, total: totalRequests, acknowledged: 0, serverErrors: 0, failed: 0 });
  try {
    if (scenarios.has('outage')) {
      const split = Math.floor(sequence.length * options.outageAt);
      await dispatch(sequence.slice(0, split));
      for (const provider of outageProviders) await setSandboxDown(sandboxes, provider, options.outageMode);
      outageWindow.from = Date.now();
      await dispatch(sequence.slice(split));
      await sleep(outageWindow.from + options.outageMs - Date.now());
      for (const provider of outageProviders) await setSandboxDown(sandboxes, provider, null);
      outageWindow.to = Date.now();
      outage = { startedAfterMs: outageWindow.from - started, downMs: outageWindow.to - outageWindow.from };
    } else {
      await dispatch(sequence);
    }
  } finally {
    // Never leave a provider down, whatever happened.
    if (scenarios.has('outage') && outageWindow.to === Number.POSITIVE_INFINITY) {
      for (const provider of outageProviders) await setSandboxDown(sandboxes, provider, null).catch(() => undefined);
      outageWindow.to = Date.now();
    }
    progress.finish();
  }

  const report: ReplayReport = {
    ok: false,
    gateway: options.gatewayUrl,
    scenarios: [...scenarios],
    files: options.files,
    webhooks: units.length,
    idSuffix: loaded.idSuffix,
    seed: scenarios.has('out-of-order') && options.order === 'shuffle' ? options.seed : null,
    webhookRequests: webhookTally,
    syncRequests: syncTally,
    sent: webhookTally.sent + syncTally.sent,
    acknowledged: webhookTally.acknowledged + syncTally.acknowledged,
    serverErrors,
    outageErrors,
    outage,
    checked: api !== null,
    payments: { checked: 0, found: 0, expected: expectations.size, settled: 0, list: [] },
    events: { payment: 0, forwarded: 0 },
    duplicates: 0,
    database: null,
    settleMs: 0,
    durationMs: 0,
    violations,
    warnings,
  };

  if (!api) {
    warnings.push('no --admin-token: invariants were not checked, only the acknowledgements');
  } else {
    await settleAndCheck(api, [...subjects.values()], forwardedEventIds, receiptIds, options, report, progress);
  }
  report.durationMs = Date.now() - started;
  report.warnings = [...new Set(report.warnings)];
  report.ok = report.violations.length === 0;
  return report;
}

async function observe(api: GatewayApi, subject: Subject): Promise<PaymentObservation> {
  const [payment, events] = await Promise.all([api.getPayment(subject.provider, subject.id), api.paymentEvents(subject.provider, subject.id)]);
  return { provider: subject.provider, id: subject.id, payment, events, expected: subject.expected };
}

async function settleAndCheck(
  api: GatewayApi,
  subjects: Subject[],
  forwardedEventIds: string[],
  receiptIds: { mollie: Set<string>; gocardless: Set<string> },
  options: ReplayOptions,
  report: ReplayReport,
  progress: Progress,
): Promise<void> {
  const settleStarted = Date.now();
  const deadline = settleStarted + options.settleTimeoutMs;
  const sql = options.databaseUrl ? postgres(options.databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 }) : null;
  const mollieIds = [...receiptIds.mollie];
  const gocardlessEventIds = [...receiptIds.gocardless];
  const receiptStates = async () => {
    const [row] = await sql!<{ pending: number; failed: number }[]>`
      select count(*) filter (where state = 'pending')::int as pending, count(*) filter (where state = 'failed')::int as failed
      from webhook_receipts
      where (provider = 'mollie' and resource_id = any(${mollieIds}::text[]))
         or (provider = 'gocardless' and event_id = any(${gocardlessEventIds}::text[]))`;
    return row!;
  };

  try {
    // Settle: the gateway catches up in the background (GoCardless batches, receipts left
    // for the retry worker by an outage or a busy lock). Poll until it has, or time runs out.
    progress.phase('settling');
    const settled = new Set<string>();
    let forwardedSeen = forwardedEventIds.length === 0;
    let receiptsDone = sql === null;
    let lastError: string | null = null;
    for (;;) {
      try {
        for (const subject of subjects) {
          const key = paymentKey(subject.provider, subject.id);
          if (!settled.has(key) && isSettled(await observe(api, subject))) settled.add(key);
        }
        if (!forwardedSeen) forwardedSeen = checkForwarded(forwardedEventIds, await api.providerEvents('gocardless')).violations.length === 0;
        if (!receiptsDone) receiptsDone = (await receiptStates()).pending === 0;
        lastError = null;
      } catch (error) {
        lastError = (error as Error).message;
      }
      progress.update({ done: settled.size, total: subjects.length, acknowledged: 0, serverErrors: 0, failed: 0, detail: 'payments caught up' });
      if ((settled.size === subjects.length && forwardedSeen && receiptsDone) || Date.now() > deadline) break;
      await sleep(250);
    }
    progress.finish();
    report.settleMs = Date.now() - settleStarted;
    report.payments.settled = settled.size;
    if (lastError) report.violations.push(`the gateway's API failed while settling: ${lastError}`);
    if (settled.size < subjects.length) {
      report.violations.push(`${subjects.length - settled.size} of ${subjects.length} payments had not caught up after ${options.settleTimeoutMs} ms (details below)`);
    }

    // Judge: one more look at everything.
    const seenEventIds = new Map<string, string>();
    for (const subject of subjects) {
      const observation = await observe(api, subject);
      const result = checkPayment(observation);
      report.violations.push(...result.violations);
      report.warnings.push(...result.warnings);
      report.duplicates += result.duplicates;
      report.payments.checked++;
      if (observation.payment) report.payments.found++;
      report.events.payment += observation.events.length;
      for (const event of observation.events) {
        const owner = seenEventIds.get(event.id);
        if (owner && owner !== subject.id) {
          report.duplicates++;
          report.violations.push(`event ${event.id} is served for both ${owner} and ${subject.id}`);
        }
        seenEventIds.set(event.id, subject.id);
      }
      report.payments.list.push({
        provider: subject.provider,
        id: subject.id,
        status: observation.payment?.status ?? null,
        providerStatus: observation.payment?.providerStatus ?? null,
        version: observation.payment?.version ?? null,
        events: observation.events.map((event: FeedEvent) => event.type),
      });
    }
    if (forwardedEventIds.length > 0) {
      const feed = await api.providerEvents('gocardless');
      const result = checkForwarded(forwardedEventIds, feed);
      report.violations.push(...result.violations);
      report.duplicates += result.duplicates;
      const wanted = new Set(forwardedEventIds);
      report.events.forwarded = feed.filter((event) => wanted.has(String(event.data.eventId))).length;
    }

    if (sql) {
      const ids = subjects.map((subject) => subject.id);
      const rows = await sql<{ provider: string; id: string; n: number }[]>`
        select provider, provider_payment_id as id, count(*)::int as n from payments
        where provider_payment_id = any(${ids}::text[]) group by 1, 2`;
      const duplicateRows = rows.filter((row) => row.n > 1);
      for (const row of duplicateRows) report.violations.push(`database: ${row.n} rows for ${row.provider} ${row.id}`);
      for (const subject of subjects) {
        if (subject.expected && !rows.some((row) => row.provider === subject.provider && row.id === subject.id)) {
          report.violations.push(`database: no row for ${subject.provider} ${subject.id}`);
        }
      }
      const receipts = await receiptStates();
      if (receipts.pending > 0) report.violations.push(`database: ${receipts.pending} receipts of this run still pending`);
      if (receipts.failed > 0) report.violations.push(`database: ${receipts.failed} receipts of this run failed`);
      report.database = {
        rows: rows.reduce((sum, row) => sum + row.n, 0),
        duplicateRows: duplicateRows.length,
        pendingReceipts: receipts.pending,
        failedReceipts: receipts.failed,
      };
    }
  } finally {
    await sql?.end({ timeout: 5 });
  }
}
