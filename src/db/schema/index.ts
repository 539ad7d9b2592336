export * from './payments.js';
export * from './payment-transitions.js';
export * from './webhook-receipts.js';
export * from './outbox.js';
export * from './provider-cursors.js';
export * from './poller-health.js';
export * from './event-deliveries.js';
export * from './audit-log.js';
