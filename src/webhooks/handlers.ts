import type { ReceiptHandlers } from './receipt-handlers.js';

/** Every provider's receipt handler, used by webhook routes and the retry worker alike. */
export const receiptHandlers: ReceiptHandlers = {};
