import { gocardlessReceiptHandler } from './gocardless-receipts.js';
import { mollieReceiptHandler } from './mollie-receipts.js';
import type { ReceiptHandlers } from './receipt-handlers.js';

/** Every provider's receipt handler, used by webhook routes and the retry worker alike. */
export const receiptHandlers: ReceiptHandlers = {
  mollie: mollieReceiptHandler,
  gocardless: gocardlessReceiptHandler,
};
