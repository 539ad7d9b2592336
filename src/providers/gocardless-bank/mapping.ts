/**
 * Pure mapping from the Bank Account Data API's shapes to the gateway's. No I/O.
 */
import { createHash } from 'node:crypto';
import { currencyExponent, parseDecimalAmount } from '../../money.js';
import type { AccountStatus, BankTransaction, RequisitionStatus } from './schemas.js';

export type ImportKind = 'booked' | 'pending';

export interface ImportRow {
  kind: ImportKind;
  /** What makes the row exactly-once within its account (see bank_transactions). */
  dedupeKey: string;
  transactionId: string | null;
  internalTransactionId: string | null;
  bookingDate: string | null;
  valueDate: string | null;
  amountMinor: number;
  currency: string;
  counterparty: string | null;
  remittance: string | null;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;
const dateOnly = (value: string | undefined): string | null => (value && ISO_DATE.test(value) ? value.slice(0, 10) : null);
const clean = (value: string | undefined | null): string | null => {
  const trimmed = value?.replace(/\s+/g, ' ').trim();
  return trimmed ? trimmed : null;
};

export function counterpartyOf(tx: BankTransaction, amountMinor: number): string | null {
  // Money out goes to the creditor; money in comes from the debtor.
  const primary = amountMinor < 0 ? tx.creditorName : tx.debtorName;
  const secondary = amountMinor < 0 ? tx.debtorName : tx.creditorName;
  return clean(primary) ?? clean(secondary);
}

export function remittanceOf(tx: BankTransaction): string | null {
  return clean(tx.remittanceInformationUnstructured) ?? clean(tx.remittanceInformationUnstructuredArray?.join(' ')) ?? clean(tx.remittanceInformationStructured);
}

/**
 * The content fingerprint used where a bank gives no id (and always for pending rows,
 * which banks re-issue under new ids): amount, currency, date, counterparty and
 * remittance, plus the position among identical rows in the same answer, so two
 * identical coffees on one day stay two rows.
 */
export function fingerprint(parts: { amountMinor: number; currency: string; date: string | null; counterparty: string | null; remittance: string | null }, ordinal: number): string {
  const text = [parts.amountMinor, parts.currency, parts.date ?? '', (parts.counterparty ?? '').toLowerCase(), (parts.remittance ?? '').toLowerCase(), ordinal].join('\u001f');
  return createHash('sha256').update(text).digest('base64url').slice(0, 32);
}

/** Maps one list of the transactions answer (booked or pending) to import rows. */
export function toImportRows(list: BankTransaction[], kind: ImportKind): ImportRow[] {
  const seen = new Map<string, number>();
  return list.map((tx) => {
    const currency = tx.transactionAmount.currency;
    const amountMinor = parseDecimalAmount(normaliseDecimal(tx.transactionAmount.amount, currency), currency);
    const bookingDate = dateOnly(tx.bookingDate) ?? dateOnly(tx.bookingDateTime);
    const valueDate = dateOnly(tx.valueDate) ?? dateOnly(tx.valueDateTime);
    const counterparty = counterpartyOf(tx, amountMinor);
    const remittance = remittanceOf(tx);
    const content = { amountMinor, currency, date: bookingDate ?? valueDate, counterparty, remittance };
    const contentKey = fingerprint(content, 0);
    const ordinal = seen.get(contentKey) ?? 0;
    seen.set(contentKey, ordinal + 1);
    const print = fingerprint(content, ordinal);
    const internalTransactionId = clean(tx.internalTransactionId);
    const transactionId = clean(tx.transactionId);
    const dedupeKey =
      kind === 'pending' ? `p:${print}` : internalTransactionId ? `i:${internalTransactionId}` : transactionId ? `t:${transactionId}` : `f:${print}`;
    return { kind, dedupeKey, transactionId, internalTransactionId: kind === 'booked' ? internalTransactionId : null, bookingDate, valueDate, amountMinor, currency, counterparty, remittance };
  });
}

/**
 * Banks send "45.0", "45", "-10.5" as well as "45.00": pad or trim zeros to the
 * currency's decimals, but never drop a significant digit.
 */
export function normaliseDecimal(amount: string, currency: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(amount.trim());
  if (!match) return amount;
  const [, sign, whole, fraction = ''] = match;
  const exponent = currencyExponent(currency);
  const trimmed = fraction.replace(/0+$/, '');
  if (trimmed.length > exponent) return amount;
  const padded = trimmed.padEnd(exponent, '0');
  return exponent === 0 ? `${sign}${whole}` : `${sign}${whole}.${padded}`;
}

/** How far apart a pending row's date and its booked row's may be. */
export const PENDING_MATCH_WINDOW_DAYS = 7;

export interface PendingCandidate {
  amountMinor: number;
  currency: string;
  date: string | null;
  counterparty: string | null;
  remittance: string | null;
}

/**
 * Does this booked transaction settle that pending one? Same amount and currency, dates
 * within the window, and where both sides name a counterparty or a remittance, at least
 * one of those agrees (banks often rewrite one of them on booking, rarely both).
 */
export function settles(booked: ImportRow, pending: PendingCandidate): boolean {
  if (booked.amountMinor !== pending.amountMinor || booked.currency !== pending.currency) return false;
  const bookedDate = booked.bookingDate ?? booked.valueDate;
  if (bookedDate && pending.date) {
    const days = Math.abs(Date.parse(bookedDate) - Date.parse(pending.date)) / 86_400_000;
    if (days > PENDING_MATCH_WINDOW_DAYS) return false;
  }
  const same = (a: string | null, b: string | null) => (a && b ? a.toLowerCase() === b.toLowerCase() : null);
  const comparisons = [same(booked.counterparty, pending.counterparty), same(booked.remittance, pending.remittance)].filter((value) => value !== null);
  return comparisons.length === 0 || comparisons.includes(true);
}

export type ConnectionStatus = 'creating' | 'awaiting_consent' | 'linked' | 'rejected' | 'expired' | 'suspended' | 'abandoned' | 'deleted';

/** Where a requisition status leaves the connection; null: still on its way. */
export function connectionStatusOf(status: RequisitionStatus): ConnectionStatus | null {
  switch (status) {
    case 'CR':
    case 'GC':
    case 'UA':
    case 'SA':
    case 'GA':
    case 'ID':
      return null;
    case 'LN':
      return 'linked';
    case 'RJ':
    case 'ER':
      return 'rejected';
    case 'EX':
      return 'expired';
    case 'SU':
      return 'suspended';
    default: {
      const unknown: never = status;
      throw new Error(`unknown requisition status ${String(unknown)}`);
    }
  }
}

/** An account in one of these is not synced again: GoCardless suspends after repeated failed access. */
export function accountIsBroken(status: AccountStatus): boolean {
  switch (status) {
    case 'DISCOVERED':
    case 'PROCESSING':
    case 'READY':
      return false;
    case 'ERROR':
    case 'SUSPENDED':
    case 'EXPIRED':
      return true;
    default: {
      const unknown: never = status;
      throw new Error(`unknown account status ${String(unknown)}`);
    }
  }
}
