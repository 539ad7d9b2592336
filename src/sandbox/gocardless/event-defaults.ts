/**
 * What GoCardless puts in a payment event for each status move, the scheme each currency
 * collects under, and the ids invented for events of other resources.
 */
import type { GoCardlessPaymentStatus } from '../../providers/gocardless/mapping.js';
import { SandboxError } from './model.js';

export interface EventDefaults {
  action: string;
  cause: string;
  origin: string;
  description: string;
  fromBank?: boolean;
}

export function transitionDefaults(from: GoCardlessPaymentStatus, to: GoCardlessPaymentStatus): EventDefaults {
  switch (to) {
    case 'pending_customer_approval':
      return { action: 'created', cause: 'payment_created', origin: 'api', description: 'Payment created via the API.' };
    case 'pending_submission':
      if (from === 'failed' || from === 'charged_back' || from === 'cancelled') {
        return { action: 'resubmission_requested', cause: 'payment_retried', origin: 'api', description: 'An attempt to retry the payment was requested.' };
      }
      if (from === 'pending_customer_approval') {
        return { action: 'customer_approval_granted', cause: 'customer_approval_granted', origin: 'customer', description: 'The customer granted approval for this payment.' };
      }
      return { action: 'created', cause: 'payment_created', origin: 'api', description: 'Payment created via the API.' };
    case 'submitted':
      return { action: 'submitted', cause: 'payment_submitted', origin: 'gocardless', description: 'Payment submitted to the banks. As a result, it can no longer be cancelled.' };
    case 'confirmed':
    case 'paid_out':
      if (from === 'charged_back') {
        return { action: 'chargeback_cancelled', cause: 'payment_chargeback_cancelled', origin: 'bank', description: "The customer's bank has cancelled the chargeback request.", fromBank: true };
      }
      return to === 'confirmed'
        ? { action: 'confirmed', cause: 'payment_confirmed', origin: 'gocardless', description: 'Enough time has passed since the payment was submitted for the banks to return an error, so this payment is now confirmed.' }
        : { action: 'paid_out', cause: 'payment_paid_out', origin: 'gocardless', description: 'The payment has been paid out by GoCardless.' };
    case 'cancelled':
      return { action: 'cancelled', cause: 'payment_cancelled', origin: 'api', description: 'The payment was cancelled.' };
    case 'customer_approval_denied':
      return { action: 'customer_approval_denied', cause: 'customer_approval_denied', origin: 'customer', description: 'The customer denied approval for this payment.' };
    case 'failed':
      return { action: 'failed', cause: 'insufficient_funds', origin: 'bank', description: "The customer's account had insufficient funds to make this payment.", fromBank: true };
    case 'charged_back':
      return { action: 'charged_back', cause: 'authorisation_disputed', origin: 'bank', description: 'The customer has disputed that the amount taken from their account was authorised.', fromBank: true };
    default: {
      const unreachable: never = to;
      throw new SandboxError(400, `unknown status ${String(unreachable)}`);
    }
  }
}

export const SCHEME_BY_CURRENCY: Record<string, string> = {
  GBP: 'bacs', EUR: 'sepa_core', USD: 'ach', SEK: 'autogiro', DKK: 'betalingsservice', AUD: 'becs', NZD: 'becs_nz', CAD: 'pad',
};

/** Invented ids for `createEvent` when no links are given. */
export const LINK_FOR_RESOURCE: Record<string, [string, string]> = {
  payments: ['payment', 'PM'],
  mandates: ['mandate', 'MD'],
  subscriptions: ['subscription', 'SB'],
  refunds: ['refund', 'RF'],
  payouts: ['payout', 'PO'],
  billing_requests: ['billing_request', 'BRQ'],
  customers: ['customer', 'CU'],
  creditors: ['creditor', 'CR'],
  instalment_schedules: ['instalment_schedule', 'IS'],
};

