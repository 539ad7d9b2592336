/**
 * Scripting an account's transactions the way banks behave: booked rows arrive (some
 * banks without any id), pending rows are re-issued under new ids on every fetch or
 * between fetches, turn booked under a different id, or vanish.
 */
import { randomUUID } from 'node:crypto';
import type { BankTransaction } from '../../providers/gocardless-bank/schemas.js';
import type { SandboxAccount } from './state.js';

let counter = 0;
const nextId = (prefix: string) => `${prefix}${Date.now().toString(36)}${(counter++).toString(36).padStart(4, '0')}`;

export interface GenerateInput {
  booked: number;
  pending: number;
  /** The first booking date; rows go back one day every ten rows. */
  endDate?: string;
  currency?: string;
}

function daysBefore(date: string, days: number): string {
  return new Date(Date.parse(date) - days * 86_400_000).toISOString().slice(0, 10);
}

function amountFor(i: number): string {
  const cents = ((i * 7919) % 100_000) + 1;
  const sign = i % 3 === 0 ? '' : '-';
  return `${sign}${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/** Adds a deterministic mix of booked and pending rows (for the benchmark and the stack). */
export function generateTransactions(account: SandboxAccount, input: GenerateInput) {
  const end = input.endDate ?? new Date().toISOString().slice(0, 10);
  const currency = input.currency ?? 'EUR';
  const base = account.booked.length + account.pending.length;
  for (let i = 0; i < input.booked; i++) {
    const n = base + i;
    const date = daysBefore(end, Math.floor(i / 10) + 1);
    account.booked.push({
      transactionId: nextId('TX'),
      internalTransactionId: randomUUID().replaceAll('-', ''),
      bookingDate: date,
      valueDate: date,
      transactionAmount: { amount: amountFor(n), currency },
      ...(n % 3 === 0 ? { debtorName: `Customer ${n % 97}` } : { creditorName: `Supplier ${n % 53}` }),
      remittanceInformationUnstructured: `Invoice ${account.id.slice(0, 6)}-${n}`,
      bankTransactionCode: 'PMNT',
    });
  }
  for (let i = 0; i < input.pending; i++) {
    const n = base + input.booked + i;
    account.pending.push({
      transactionId: nextId('PD'),
      valueDate: end,
      transactionAmount: { amount: amountFor(n), currency },
      creditorName: `Card shop ${n % 31}`,
      remittanceInformationUnstructured: `Card payment ${account.id.slice(0, 6)}-${n}`,
    });
  }
}

/** Gives every pending row a new transactionId, as banks do between fetches. */
export function reissuePending(account: SandboxAccount) {
  account.pending = account.pending.map((tx) => ({ ...tx, transactionId: nextId('PD') }));
}

export interface BookInput {
  internalTransactionId?: string;
  /** Defaults to the pending row's value date. */
  bookingDate?: string;
  /** Banks often rewrite the remittance on booking. */
  remittance?: string;
}

/** The pending row at `index` turns booked: it leaves the pending list and appears, under new ids, in booked. */
export function bookPending(account: SandboxAccount, index: number, input: BookInput = {}): BankTransaction | null {
  const pending = account.pending[index];
  if (!pending) return null;
  account.pending.splice(index, 1);
  const date = input.bookingDate ?? pending.valueDate ?? new Date().toISOString().slice(0, 10);
  const booked: BankTransaction = {
    ...pending,
    transactionId: nextId('TX'),
    internalTransactionId: input.internalTransactionId ?? randomUUID().replaceAll('-', ''),
    bookingDate: date,
    valueDate: pending.valueDate ?? date,
    ...(input.remittance ? { remittanceInformationUnstructured: input.remittance } : {}),
  };
  account.booked.push(booked);
  return booked;
}

export function vanishPending(account: SandboxAccount, index: number): BankTransaction | null {
  const [removed] = account.pending.splice(index, 1);
  return removed ?? null;
}

/** The transactions answer: booked rows inside [dateFrom, dateTo] by booking date, every pending row. */
export function transactionsAnswer(account: SandboxAccount, dateFrom: string | undefined, dateTo: string | undefined, lastUpdated: string) {
  const inWindow = (tx: BankTransaction) => {
    const date = tx.bookingDate ?? tx.valueDate;
    if (!date) return true;
    return (!dateFrom || date >= dateFrom) && (!dateTo || date <= dateTo);
  };
  return { transactions: { booked: account.booked.filter(inWindow), pending: account.pending }, last_updated: lastUpdated };
}
