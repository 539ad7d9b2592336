/**
 * The bank sandbox's state and every rule it plays by, with no HTTP in it: tokens,
 * agreements, requisitions and their consent, accounts with their statuses, booked
 * and pending transactions, the banks' daily limit per account and scope, and a clock
 * that tests can move (consent expiry and the daily window run on it).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { BankTransaction } from '../../providers/gocardless-bank/schemas.js';
import { generateTransactions } from './transactions.js';

export const SANDBOX_BANK_SECRET_ID = 'sandbox-bank-secret-id';
export const SANDBOX_BANK_SECRET_KEY = 'sandbox-bank-secret-key';
export const SANDBOX_INSTITUTION_ID = 'SANDBOXFINANCE_SFIN0000';

export interface BankSandboxOptions {
  secretId?: string;
  secretKey?: string;
  /** Token lifetimes in seconds (GoCardless: 86400 and 2592000). */
  accessTtlS?: number;
  refreshTtlS?: number;
  /** Successful calls per account, scope and day before the bank answers 429 (4 by default). */
  dailyLimit?: number;
  /** The length of the bank's "day" for the daily limit, in ms: shorten it to test a reset. */
  dayMs?: number;
  /** Which spelling of the rate-limit headers to send. */
  headerStyle?: 'x' | 'http_x';
  /** Accounts each linked requisition gets. */
  accountsPerRequisition?: number;
  /** Added before every API answer. */
  latencyMs?: number;
  /** Transactions every account is born with at consent (the benchmark's data). */
  seedTransactions?: { booked: number; pending: number };
}

export interface SandboxAgreement {
  id: string;
  created: string;
  institution_id: string;
  max_historical_days: number;
  access_valid_for_days: number;
  access_scope: string[];
  accepted: string | null;
}

export interface SandboxRequisition {
  id: string;
  created: string;
  redirect: string;
  status: string;
  institution_id: string;
  agreement: string;
  reference: string;
  accounts: string[];
  user_language: string;
  link: string;
}

export interface SandboxAccount {
  id: string;
  created: string;
  last_accessed: string | null;
  iban: string;
  institution_id: string;
  status: string;
  owner_name: string;
  requisitionId: string;
  booked: BankTransaction[];
  pending: BankTransaction[];
}

export interface CallRecord {
  at: number;
  accountId: string;
  scope: string;
  status: number;
}

export type LimitOutcome = { ok: true; remaining: number; resetS: number } | { ok: false; resetS: number };

export function createBankSandboxState(options: BankSandboxOptions = {}) {
  const settings = {
    secretId: options.secretId ?? SANDBOX_BANK_SECRET_ID,
    secretKey: options.secretKey ?? SANDBOX_BANK_SECRET_KEY,
    accessTtlS: options.accessTtlS ?? 86_400,
    refreshTtlS: options.refreshTtlS ?? 2_592_000,
    dailyLimit: options.dailyLimit ?? 4,
    dayMs: options.dayMs ?? 86_400_000,
    headerStyle: options.headerStyle ?? 'x',
    accountsPerRequisition: options.accountsPerRequisition ?? 2,
    latencyMs: options.latencyMs ?? 0,
  };
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  const iso = (at = now()) => new Date(at).toISOString();

  const accessTokens = new Map<string, { expiresAt: number; generation: number }>();
  const refreshTokens = new Map<string, { expiresAt: number }>();
  let generation = 0;
  const stats = {
    tokenNew: 0,
    tokenRefresh: 0,
    /** The access generation each refresh replaced: two refreshes of one generation are a wasted call. */
    refreshedGenerations: [] as number[],
    agreementsCreated: 0,
    requisitionsCreated: 0,
    rateLimited: 0,
  };
  const agreements = new Map<string, SandboxAgreement>();
  const requisitions = new Map<string, SandboxRequisition>();
  const accounts = new Map<string, SandboxAccount>();
  const calls: CallRecord[] = [];
  /** Successful calls per `${account}|${scope}|${dayIndex}`. */
  const usage = new Map<string, number>();
  let linkBase = '';

  function mintToken() {
    stats.tokenNew++;
    return issue(true);
  }

  function issue(withRefresh: boolean) {
    const access = `acc_${randomBytes(12).toString('hex')}`;
    generation++;
    accessTokens.set(access, { expiresAt: now() + settings.accessTtlS * 1000, generation });
    const result: { access: string; access_expires: number; refresh?: string; refresh_expires?: number } = { access, access_expires: settings.accessTtlS };
    if (withRefresh) {
      const refresh = `ref_${randomBytes(12).toString('hex')}`;
      refreshTokens.set(refresh, { expiresAt: now() + settings.refreshTtlS * 1000 });
      result.refresh = refresh;
      result.refresh_expires = settings.refreshTtlS;
    }
    return result;
  }

  function refreshToken(refresh: string) {
    const known = refreshTokens.get(refresh);
    if (!known || known.expiresAt <= now()) return null;
    stats.tokenRefresh++;
    stats.refreshedGenerations.push(generation);
    return issue(false);
  }

  function validAccess(token: string | undefined): boolean {
    const known = token ? accessTokens.get(token) : undefined;
    return !!known && known.expiresAt > now();
  }

  function createAgreement(input: { institution_id: string; max_historical_days?: number; access_valid_for_days?: number; access_scope?: string[] }): SandboxAgreement {
    stats.agreementsCreated++;
    const agreement: SandboxAgreement = {
      id: randomUUID(),
      created: iso(),
      institution_id: input.institution_id,
      max_historical_days: input.max_historical_days ?? 90,
      access_valid_for_days: input.access_valid_for_days ?? 90,
      access_scope: input.access_scope ?? ['balances', 'details', 'transactions'],
      accepted: null,
    };
    agreements.set(agreement.id, agreement);
    return agreement;
  }

  function createRequisition(input: { institution_id: string; redirect: string; reference: string; agreement?: string; user_language?: string }): SandboxRequisition | 'reference_taken' {
    // GoCardless answers 400 for a reference it has seen.
    for (const existing of requisitions.values()) if (existing.reference === input.reference) return 'reference_taken';
    stats.requisitionsCreated++;
    const agreement = input.agreement ?? createAgreement({ institution_id: input.institution_id }).id;
    const id = randomUUID();
    const requisition: SandboxRequisition = {
      id,
      created: iso(),
      redirect: input.redirect,
      status: 'CR',
      institution_id: input.institution_id,
      agreement,
      reference: input.reference,
      accounts: [],
      user_language: input.user_language ?? 'EN',
      link: `${linkBase}/psd2/start/${id}/${input.institution_id}`,
    };
    requisitions.set(id, requisition);
    return requisition;
  }

  /** What the end user does at the consent link: give consent (accounts appear) or refuse it. */
  function completeConsent(requisitionId: string, outcome: 'link' | 'reject'): SandboxRequisition | null {
    const requisition = requisitions.get(requisitionId);
    if (!requisition) return null;
    if (outcome === 'reject') {
      requisition.status = 'RJ';
      return requisition;
    }
    if (requisition.status === 'LN') return requisition;
    const agreement = agreements.get(requisition.agreement);
    if (agreement) agreement.accepted = iso();
    for (let i = 0; i < settings.accountsPerRequisition; i++) {
      const id = randomUUID();
      accounts.set(id, {
        id,
        created: iso(),
        last_accessed: null,
        iban: `GB${String(10 + (accounts.size % 89)).padStart(2, '0')}SAND${String(accounts.size).padStart(14, '0')}`,
        institution_id: requisition.institution_id,
        status: 'READY',
        owner_name: 'Sandbox Owner',
        requisitionId,
        booked: [],
        pending: [],
      });
      requisition.accounts.push(id);
      if (options.seedTransactions) generateTransactions(accounts.get(id)!, options.seedTransactions);
    }
    requisition.status = 'LN';
    return requisition;
  }

  /** Consent runs out on the sandbox clock: the requisition turns EX and its accounts EXPIRED. */
  function applyExpiry(requisition: SandboxRequisition) {
    const agreement = agreements.get(requisition.agreement);
    if (requisition.status !== 'LN' || !agreement?.accepted) return;
    if (Date.parse(agreement.accepted) + agreement.access_valid_for_days * 86_400_000 > now()) return;
    requisition.status = 'EX';
    for (const id of requisition.accounts) {
      const account = accounts.get(id);
      if (account) account.status = 'EXPIRED';
    }
  }

  function getRequisition(id: string) {
    const requisition = requisitions.get(id);
    if (requisition) applyExpiry(requisition);
    return requisition;
  }

  function getAccount(id: string) {
    const account = accounts.get(id);
    if (account) {
      const requisition = requisitions.get(account.requisitionId);
      if (requisition) applyExpiry(requisition);
    }
    return account;
  }

  /** Counts a successful call against the account's scope for the current bank day, or refuses it. */
  function takeDailyCall(accountId: string, scope: string): LimitOutcome {
    const day = Math.floor(now() / settings.dayMs);
    const resetS = Math.max(1, Math.ceil(((day + 1) * settings.dayMs - now()) / 1000));
    const key = `${accountId}|${scope}|${day}`;
    const used = usage.get(key) ?? 0;
    if (used >= settings.dailyLimit) {
      stats.rateLimited++;
      return { ok: false, resetS };
    }
    usage.set(key, used + 1);
    return { ok: true, remaining: settings.dailyLimit - used - 1, resetS };
  }

  return {
    settings,
    stats,
    agreements,
    requisitions,
    accounts,
    calls,
    now,
    iso,
    setLinkBase: (base: string) => (linkBase = base),
    advanceClock: (ms: number) => (offsetMs += ms),
    get clockOffsetMs() {
      return offsetMs;
    },
    mintToken,
    refreshToken,
    validAccess,
    createAgreement,
    createRequisition,
    completeConsent,
    getRequisition,
    getAccount,
    takeDailyCall,
    recordCall: (record: CallRecord) => calls.push(record),
  };
}

export type BankSandboxState = ReturnType<typeof createBankSandboxState>;
