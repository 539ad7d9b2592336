import { gocardlessIntake } from './gocardless-receipts.js';
import { mollieIntake } from './mollie-receipts.js';
import type { ReceiptHandlers } from './process-receipts.js';

/** Every provider's intake, by name: the receipt worker runs their `handle` over due receipts. */
export const receiptHandlers: ReceiptHandlers = {
  mollie: mollieIntake,
  gocardless: gocardlessIntake,
};
