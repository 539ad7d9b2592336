/**
 * What the replay sends, read from JSONL files: hand-written fixture sets
 * (fixtures/replay/*.jsonl) and receipts exported from a gateway's database
 * (export-receipts.ts). Both use one line format, one webhook per line:
 *
 *   {"provider": "mollie" | "gocardless",
 *    "kind": "classic" | "event" (Mollie) | "batch" | "event" (GoCardless),
 *    "account": "default",                      optional
 *    "body": "id=tr_..." | {...JSON...},        or "bodyBase64": "..." (exports)
 *    "headers": {"content-type": ...},          optional; signatures are recomputed
 *    "sandbox": [{"id": "tr_...", "status": "paid", ...}],   the provider's state when it was sent
 *    "note": "...", "eventId": "...", "receivedAt": "...", "signature": "valid|absent|fetched"}
 *
 * A GoCardless "event" line is one event of a batch (exports store one receipt per
 * event); lines sharing a `gocardless-webhook-id` header are sent together again.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseDecimalAmount } from '../../money.js';
import { GOCARDLESS_PAYMENT_STATUSES } from '../../providers/gocardless/mapping.js';
import { PROVIDERS, type ProviderName } from '../../providers/types.js';
import { ACCOUNT_NAME } from '../../webhooks/accounts.js';

const MOLLIE_STATUSES = ['open', 'pending', 'authorized', 'paid', 'canceled', 'expired', 'failed'] as const;
const MOLLIE_REFUND_STATUSES = ['queued', 'pending', 'processing', 'refunded', 'failed', 'canceled'] as const;
/** Refund statuses that count towards `amountRefunded` (failed and canceled ones gave the money back). */
const COUNTED_REFUND_STATUSES: ReadonlySet<string> = new Set(['queued', 'pending', 'processing', 'refunded']);

const mollieAmount = z.object({ currency: z.string().regex(/^[A-Z]{3}$/), value: z.string() });

export const mollieSandboxPaymentSchema = z.object({
  id: z.string().regex(/^tr_[A-Za-z0-9]+$/, 'must look like tr_...'),
  status: z.enum(MOLLIE_STATUSES),
  amount: mollieAmount.optional(),
  description: z.string().optional(),
  method: z.string().nullable().optional(),
  metadata: z.unknown().optional(),
  sequenceType: z.enum(['oneoff', 'first', 'recurring']).optional(),
  refunds: z
    .array(z.object({ id: z.string().regex(/^re_[A-Za-z0-9]+$/, 'must look like re_...'), amount: mollieAmount, status: z.enum(MOLLIE_REFUND_STATUSES).default('refunded') }))
    .optional(),
  chargebacks: z
    .array(z.object({ id: z.string().regex(/^chb_[A-Za-z0-9]+$/, 'must look like chb_...'), amount: mollieAmount, reversed: z.boolean().optional() }))
    .optional(),
});
export type MollieSandboxPayment = z.infer<typeof mollieSandboxPaymentSchema>;

export const goCardlessSandboxPaymentSchema = z.object({
  id: z.string().regex(/^PM[0-9A-Za-z]+$/, 'must look like PM...'),
  status: z.enum(GOCARDLESS_PAYMENT_STATUSES),
  amount: z.number().int().positive().optional(),
  currency: z.string().regex(/^[A-Z]{3}$/).optional(),
  mandate: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  description: z.string().nullable().optional(),
  reference: z.string().nullable().optional(),
  chargeDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
});
export type GoCardlessSandboxPayment = z.infer<typeof goCardlessSandboxPaymentSchema>;

export type SandboxState =
  | { provider: 'mollie'; payment: MollieSandboxPayment }
  | { provider: 'gocardless'; payment: GoCardlessSandboxPayment };

export const replayLineSchema = z
  .object({
    provider: z.enum(PROVIDERS),
    kind: z.enum(['classic', 'event', 'batch']),
    account: z.string().regex(ACCOUNT_NAME, 'must be 1-64 letters, digits, _ or -').optional(),
    note: z.string().optional(),
    body: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    bodyBase64: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    eventId: z.string().nullable().optional(),
    receivedAt: z.string().optional(),
    signature: z.enum(['valid', 'absent', 'fetched']).optional(),
    sandbox: z.array(z.unknown()).optional(),
  })
  .refine((line) => (line.body === undefined) !== (line.bodyBase64 === undefined), { message: 'give exactly one of "body" and "bodyBase64"' })
  .refine((line) => (line.provider === 'mollie' ? line.kind !== 'batch' : line.kind !== 'classic'), {
    message: 'kind must be "classic" or "event" for Mollie, "batch" or "event" for GoCardless',
  });
export type ReplayLine = z.infer<typeof replayLineSchema>;

/** One line, validated, with its body as text and its sandbox state typed. */
export interface ReplayRecord {
  /** file:line, for messages. */
  source: string;
  provider: ProviderName;
  kind: 'classic' | 'event' | 'batch';
  account: string;
  body: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  sandbox: SandboxState[];
  /** True for fixtures, false for exported receipts: decides whether ids get a run suffix by default. */
  fixture: boolean;
}

export class ReplayInputError extends Error {
  override readonly name = 'ReplayInputError';
}

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'line'}: ${issue.message}`).join('; ');
}

function parseSandbox(provider: ProviderName, entries: unknown[], where: string): SandboxState[] {
  return entries.map((entry, index) => {
    const schema = provider === 'mollie' ? mollieSandboxPaymentSchema : goCardlessSandboxPaymentSchema;
    const parsed = schema.safeParse(entry);
    if (!parsed.success) throw new ReplayInputError(`${where}: sandbox[${index}]: ${describe(parsed.error)}`);
    return provider === 'mollie'
      ? { provider, payment: parsed.data as MollieSandboxPayment }
      : { provider, payment: parsed.data as GoCardlessSandboxPayment };
  });
}

export function parseReplayLine(value: unknown, where: string): ReplayRecord {
  const parsed = replayLineSchema.safeParse(value);
  if (!parsed.success) throw new ReplayInputError(`${where}: ${describe(parsed.error)}`);
  const line = parsed.data;
  let body: string;
  if (line.bodyBase64 !== undefined) {
    try {
      body = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(line.bodyBase64, 'base64'));
    } catch {
      throw new ReplayInputError(`${where}: bodyBase64 is not UTF-8 text; a webhook body always is`);
    }
  } else {
    body = typeof line.body === 'string' ? line.body : JSON.stringify(line.body);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(line.headers ?? {})) headers[name.toLowerCase()] = value;
  return {
    source: where,
    provider: line.provider,
    kind: line.kind,
    account: line.account ?? 'default',
    body,
    headers,
    sandbox: parseSandbox(line.provider, line.sandbox ?? [], where),
    // Exports carry receivedAt; hand-written fixtures do not.
    fixture: line.receivedAt === undefined,
  };
}

export async function loadReplayFile(file: string): Promise<ReplayRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ReplayInputError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const records: ReplayRecord[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${file}:${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new ReplayInputError(`${where}: not JSON: ${(error as Error).message}`);
    }
    records.push(parseReplayLine(value, where));
  });
  if (records.length === 0) throw new ReplayInputError(`${file} holds no webhooks`);
  return records;
}

// ---------------------------------------------------------------------------
// Fresh ids: a per-run suffix on every provider id, so a fixture can be replayed
// again and again against one database and each run's payments are its own.

const MOLLIE_ID = /^[a-z]+_[A-Za-z0-9]+$/;
const GOCARDLESS_ID = /^[A-Z]{2,3}[0-9A-Za-z]+$/;

function idsInRecord(record: ReplayRecord): string[] {
  const ids: string[] = [];
  const add = (value: unknown) => {
    if (typeof value === 'string' && (MOLLIE_ID.test(value) || GOCARDLESS_ID.test(value))) ids.push(value);
  };
  for (const state of record.sandbox) {
    add(state.payment.id);
    if (state.provider === 'mollie') {
      for (const refund of state.payment.refunds ?? []) add(refund.id);
      for (const chargeback of state.payment.chargebacks ?? []) add(chargeback.id);
    } else {
      add(state.payment.mandate);
    }
  }
  add(record.headers['gocardless-webhook-id']);
  if (record.kind === 'classic') {
    add(new URLSearchParams(record.body).get('id'));
    return ids;
  }
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    return ids;
  }
  const object = (json ?? {}) as Record<string, unknown>;
  if (record.provider === 'mollie') {
    add(object.id);
    add(object.entityId);
    return ids;
  }
  const events = record.kind === 'batch' ? (Array.isArray(object.events) ? object.events : []) : [object];
  for (const event of events as Record<string, unknown>[]) {
    add(event?.id);
    for (const value of Object.values((event?.links ?? {}) as Record<string, unknown>)) add(value);
  }
  add((object.meta as Record<string, unknown> | undefined)?.webhook_id);
  return ids;
}

/** Upper-case letters and digits: valid inside every Mollie and GoCardless id. */
export function newIdSuffix(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return [...randomBytes(6)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Appends `suffix` to every provider id the records mention, wherever it appears. */
export function suffixIds(records: ReplayRecord[], suffix: string): ReplayRecord[] {
  const ids = [...new Set(records.flatMap(idsInRecord))].sort((a, b) => b.length - a.length);
  if (ids.length === 0) return records;
  // \b on both sides: tr_ABC must not rewrite the start of tr_ABCD.
  const pattern = new RegExp(`\\b(?:${ids.map(escapeRegExp).join('|')})\\b`, 'g');
  const rewrite = (text: string) => text.replace(pattern, (id) => `${id}${suffix}`);
  return records.map((record) => {
    const rewritten = JSON.parse(rewrite(JSON.stringify({ body: record.body, headers: record.headers, sandbox: record.sandbox }))) as Pick<
      ReplayRecord,
      'body' | 'headers' | 'sandbox'
    >;
    return { ...record, ...rewritten };
  });
}

// ---------------------------------------------------------------------------
// Units: what is sent as one request (and its storm copies and race partners).

export interface ReplayUnit {
  index: number;
  source: string;
  provider: ProviderName;
  kind: 'classic' | 'event' | 'batch';
  account: string;
  body: string;
  headers: Record<string, string>;
  /** Provider state to set just before sending (in order), so the gateway's fetch finds it. */
  sandbox: SandboxState[];
  /**
   * 'set': fixtures script the provider, so a payment it has already is moved to the state.
   * 'create': exports only describe it, so a payment it has already is left alone.
   */
  seed: 'set' | 'create';
  /** GoCardless: the batch's events, to reorder. */
  events?: Record<string, unknown>[];
}

/** GoCardless event lines of one webhook (same gocardless-webhook-id) become one batch again. */
export function toUnits(records: ReplayRecord[]): ReplayUnit[] {
  const units: ReplayUnit[] = [];
  const batches = new Map<string, ReplayUnit>();
  records.forEach((record, position) => {
    if (record.provider === 'gocardless') {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(record.body) as Record<string, unknown>;
      } catch (error) {
        throw new ReplayInputError(`${record.source}: GoCardless body is not JSON: ${(error as Error).message}`);
      }
      if (record.kind === 'batch') {
        const events = event.events;
        if (!Array.isArray(events)) throw new ReplayInputError(`${record.source}: a GoCardless batch needs an "events" array`);
        units.push({ ...unitOf(record, units.length), events: events as Record<string, unknown>[] });
        return;
      }
      const webhookId = record.headers['gocardless-webhook-id'];
      const key = `${record.account}:${webhookId ?? `line${position}`}`;
      const existing = batches.get(key);
      if (existing) {
        existing.events!.push(event);
        existing.sandbox.push(...record.sandbox);
        existing.body = batchBody(existing.events!, webhookId);
        return;
      }
      const unit: ReplayUnit = { ...unitOf(record, units.length), kind: 'batch', events: [event], body: batchBody([event], webhookId) };
      batches.set(key, unit);
      units.push(unit);
      return;
    }
    units.push(unitOf(record, units.length));
  });
  return units;
}

function unitOf(record: ReplayRecord, index: number): ReplayUnit {
  return {
    index,
    source: record.source,
    provider: record.provider,
    kind: record.kind,
    account: record.account,
    body: record.body,
    headers: { ...record.headers },
    sandbox: [...record.sandbox],
    seed: record.fixture ? 'set' : 'create',
  };
}

function batchBody(events: Record<string, unknown>[], webhookId: string | undefined): string {
  return JSON.stringify(webhookId ? { events, meta: { webhook_id: webhookId } } : { events });
}

/** A GoCardless batch with its events in a new order (the body is re-serialised; it is re-signed anyway). */
export function withEvents(unit: ReplayUnit, events: Record<string, unknown>[]): ReplayUnit {
  const parsed = JSON.parse(unit.body) as Record<string, unknown>;
  return { ...unit, events, body: JSON.stringify({ ...parsed, events }) };
}

// ---------------------------------------------------------------------------
// What a unit is about, and what the run should end with.

export interface PaymentKey {
  provider: ProviderName;
  id: string;
  account: string;
}

export interface Expectation extends PaymentKey {
  /** The provider's status once everything is replayed: the last sandbox state given for it. */
  providerStatus: string;
  /** Mollie: refunded and charged-back minor units implied by the state's refunds and chargebacks. */
  refundedMinor?: number;
  chargedBackMinor?: number;
}

export const paymentKey = (provider: string, id: string) => `${provider}:${id}`;

/** Refund and chargeback ids → their payment, from every Mollie state in the run. */
export function mollieParents(units: ReplayUnit[]): Map<string, string> {
  const parents = new Map<string, string>();
  for (const unit of units) {
    for (const state of unit.sandbox) {
      if (state.provider !== 'mollie') continue;
      for (const refund of state.payment.refunds ?? []) parents.set(refund.id, state.payment.id);
      for (const chargeback of state.payment.chargebacks ?? []) parents.set(chargeback.id, state.payment.id);
    }
  }
  return parents;
}

export interface UnitSubjects {
  /** Payments the gateway will sync because of this webhook. */
  payments: string[];
  /** GoCardless events about anything but a payment: forwarded as gocardless.<type>.<action>. */
  forwardedEventIds: string[];
}

export function subjectsOf(unit: ReplayUnit, parents: Map<string, string>): UnitSubjects {
  const payments = new Set<string>();
  const forwardedEventIds: string[] = [];
  const resolve = (id: string | null | undefined) => {
    if (!id) return;
    if (id.startsWith('tr_')) payments.add(id);
    else if (parents.has(id)) payments.add(parents.get(id)!);
  };
  if (unit.provider === 'mollie') {
    if (unit.kind === 'classic') {
      resolve(new URLSearchParams(unit.body).get('id'));
    } else {
      try {
        const event = JSON.parse(unit.body) as { type?: unknown; entityId?: unknown };
        const type = typeof event.type === 'string' ? event.type : '';
        if ((type.startsWith('payment.') || type.startsWith('refund.')) && typeof event.entityId === 'string') resolve(event.entityId);
      } catch {
        // The gateway will refuse it with a 400; nothing to follow.
      }
    }
  } else {
    for (const event of unit.events ?? []) {
      const links = (event.links ?? {}) as Record<string, unknown>;
      if (typeof links.payment === 'string') payments.add(links.payment);
      if (event.resource_type !== 'payments' && typeof event.id === 'string') forwardedEventIds.push(event.id);
    }
  }
  return { payments: [...payments], forwardedEventIds };
}

/**
 * The provider as the replay leaves it, state after state. Refunds and chargebacks
 * accumulate by id (a sandbox never forgets one; a later state can only change a
 * refund's status or reverse a chargeback), so a state that lists none keeps the
 * earlier ones, exactly as the sandbox does when the state is applied.
 */
export class ProviderModel {
  private readonly refunds = new Map<string, Map<string, { minor: number; counted: boolean }>>();
  private readonly chargebacks = new Map<string, Map<string, { minor: number; reversed: boolean }>>();

  /** Applies one state and returns what the gateway should show once it has synced it. */
  apply(state: SandboxState, account: string): Expectation {
    if (state.provider === 'gocardless') return { provider: 'gocardless', id: state.payment.id, account, providerStatus: state.payment.status };
    const { payment } = state;
    const currency = payment.amount?.currency ?? 'EUR';
    const refunds = this.refunds.get(payment.id) ?? new Map<string, { minor: number; counted: boolean }>();
    for (const refund of payment.refunds ?? []) {
      const known = refunds.get(refund.id);
      refunds.set(refund.id, { minor: known?.minor ?? parseDecimalAmount(refund.amount.value, currency), counted: COUNTED_REFUND_STATUSES.has(refund.status) });
    }
    this.refunds.set(payment.id, refunds);
    const chargebacks = this.chargebacks.get(payment.id) ?? new Map<string, { minor: number; reversed: boolean }>();
    for (const chargeback of payment.chargebacks ?? []) {
      const known = chargebacks.get(chargeback.id);
      // A chargeback, once reversed, stays reversed.
      chargebacks.set(chargeback.id, { minor: known?.minor ?? parseDecimalAmount(chargeback.amount.value, currency), reversed: (known?.reversed ?? false) || chargeback.reversed === true });
    }
    this.chargebacks.set(payment.id, chargebacks);
    const refundedMinor = [...refunds.values()].filter((refund) => refund.counted).reduce((sum, refund) => sum + refund.minor, 0);
    const chargedBackMinor = [...chargebacks.values()].filter((chargeback) => !chargeback.reversed).reduce((sum, chargeback) => sum + chargeback.minor, 0);
    return { provider: 'mollie', id: payment.id, account, providerStatus: payment.status, refundedMinor, chargedBackMinor };
  }
}

export function sameExpectation(a: Expectation, b: Expectation): boolean {
  return a.providerStatus === b.providerStatus && a.refundedMinor === b.refundedMinor && a.chargedBackMinor === b.chargedBackMinor;
}

/** Where each payment ends once every state is applied in order. */
export function expectationsOf(units: ReplayUnit[]): Map<string, Expectation> {
  const model = new ProviderModel();
  const expected = new Map<string, Expectation>();
  for (const unit of units) {
    for (const state of unit.sandbox) expected.set(paymentKey(state.provider, state.payment.id), model.apply(state, unit.account));
  }
  return expected;
}

export interface LoadedReplay {
  units: ReplayUnit[];
  /** The suffix appended to every id, or null when ids are sent as written. */
  idSuffix: string | null;
}

export async function loadReplay(files: string[], options: { ids: 'auto' | 'keep' | 'fresh'; account: string | null }): Promise<LoadedReplay> {
  let records = (await Promise.all(files.map(loadReplayFile))).flat();
  if (options.account) records = records.map((record) => ({ ...record, account: options.account! }));
  // Fixtures are examples, replayed many times; exported receipts are real ids and stay as they were.
  const fresh = options.ids === 'fresh' || (options.ids === 'auto' && records.every((record) => record.fixture));
  const idSuffix = fresh ? newIdSuffix() : null;
  if (idSuffix) records = suffixIds(records, idSuffix);
  return { units: toUnits(records), idSuffix };
}
