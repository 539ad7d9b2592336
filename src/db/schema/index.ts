export * from './payments.js';
export * from './payment-transitions.js';
export * from './webhook-receipts.js';
export * from './outbox.js';
