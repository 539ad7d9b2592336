/**
 * The Bank Account Data API's wire shapes (GoCardless, formerly Nordigen), as zod
 * schemas. Every answer is parsed here before anything reads it; fields the gateway
 * does not use pass through untouched.
 */
import { z } from 'zod';

export const REQUISITION_STATUSES = ['CR', 'GC', 'UA', 'RJ', 'SA', 'GA', 'LN', 'EX', 'SU', 'ID', 'ER'] as const;
export type RequisitionStatus = (typeof REQUISITION_STATUSES)[number];

export const ACCOUNT_STATUSES = ['DISCOVERED', 'PROCESSING', 'READY', 'ERROR', 'SUSPENDED', 'EXPIRED'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

export const ACCESS_SCOPES = ['balances', 'details', 'transactions'] as const;
export type AccessScope = (typeof ACCESS_SCOPES)[number];

export const tokenNewSchema = z.looseObject({
  access: z.string().min(1),
  access_expires: z.number().int().positive(),
  refresh: z.string().min(1),
  refresh_expires: z.number().int().positive(),
});
export type TokenNew = z.infer<typeof tokenNewSchema>;

export const tokenRefreshSchema = z.looseObject({
  access: z.string().min(1),
  access_expires: z.number().int().positive(),
});

export const institutionSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  bic: z.string().optional(),
  transaction_total_days: z.union([z.string(), z.number()]).optional(),
  max_access_valid_for_days: z.union([z.string(), z.number()]).optional(),
  countries: z.array(z.string()).optional(),
});
export type Institution = z.infer<typeof institutionSchema>;

export const agreementSchema = z.looseObject({
  id: z.string(),
  created: z.string(),
  institution_id: z.string(),
  max_historical_days: z.number().int(),
  access_valid_for_days: z.number().int(),
  access_scope: z.array(z.string()),
  /** The consent time; null until the end user gives it. The consent ends access_valid_for_days later. */
  accepted: z.string().nullable(),
});
export type Agreement = z.infer<typeof agreementSchema>;

export const requisitionSchema = z.looseObject({
  id: z.string(),
  created: z.string().optional(),
  redirect: z.string().nullable().optional(),
  // Unknown codes are kept as strings: a new status must not make a requisition unreadable.
  status: z.string(),
  institution_id: z.string(),
  agreement: z.string().nullable().optional(),
  reference: z.string(),
  accounts: z.array(z.string()).default([]),
  link: z.string(),
});
export type Requisition = z.infer<typeof requisitionSchema>;

/** `GET /requisitions/?limit=&offset=`: one page of the caller's requisitions. */
export const requisitionPageSchema = z.looseObject({
  count: z.number().int().nonnegative(),
  next: z.string().nullable().optional(),
  results: z.array(requisitionSchema),
});
export type RequisitionPage = z.infer<typeof requisitionPageSchema>;

export const accountSchema = z.looseObject({
  id: z.string(),
  created: z.string().optional(),
  last_accessed: z.string().nullable().optional(),
  iban: z.string().nullable().optional(),
  institution_id: z.string().optional(),
  status: z.string(),
  owner_name: z.string().nullable().optional(),
});
export type Account = z.infer<typeof accountSchema>;

const amountSchema = z.looseObject({ amount: z.string(), currency: z.string() });

export const transactionSchema = z.looseObject({
  transactionId: z.string().optional(),
  internalTransactionId: z.string().optional(),
  entryReference: z.string().optional(),
  bookingDate: z.string().optional(),
  valueDate: z.string().optional(),
  bookingDateTime: z.string().optional(),
  valueDateTime: z.string().optional(),
  transactionAmount: amountSchema,
  creditorName: z.string().optional(),
  debtorName: z.string().optional(),
  creditorAccount: z.looseObject({ iban: z.string().optional() }).optional(),
  debtorAccount: z.looseObject({ iban: z.string().optional() }).optional(),
  remittanceInformationUnstructured: z.string().optional(),
  remittanceInformationUnstructuredArray: z.array(z.string()).optional(),
  remittanceInformationStructured: z.string().optional(),
  bankTransactionCode: z.string().optional(),
});
export type BankTransaction = z.infer<typeof transactionSchema>;

export const transactionsSchema = z.looseObject({
  transactions: z.looseObject({
    booked: z.array(transactionSchema).default([]),
    pending: z.array(transactionSchema).default([]),
  }),
  last_updated: z.string().optional(),
});
export type TransactionsResponse = z.infer<typeof transactionsSchema>;

/** Error bodies: `{summary, detail, status_code}` or `{summary, detail, type}`. */
export const errorBodySchema = z.looseObject({
  summary: z.string().optional(),
  detail: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  status_code: z.number().optional(),
  type: z.string().optional(),
});
