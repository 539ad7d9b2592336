import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { fixedTextStatement, toQuery } from '../../src/db/prepared.js';
import type { OutboxEventRow, TrackedState } from '../../src/events/payment-events.js';
import { guardedUpsert, guardedUpsertSql, transitionAndEvents, transitionAndEventsSql } from '../../src/payments/apply-snapshot.js';
import type { PaymentSnapshot } from '../../src/providers/types.js';

// Every value distinct, so a parameter list in the wrong order cannot match by accident.
const full: PaymentSnapshot = {
  provider: 'mollie',
  account: 'acct-main',
  providerPaymentId: 'tr_distinct1',
  providerStatus: 'paid-provider',
  status: 'paid',
  amount: { minor: 12345, currency: 'EUR' },
  refundedMinor: 67,
  chargedBackMinor: 8,
  mode: 'test',
  method: 'ideal',
  metadata: { order: 'o-9' },
  providerCreatedAt: new Date('2026-11-01T10:00:00.000Z'),
  raw: { id: 'tr_distinct1' },
};
const sparse: PaymentSnapshot = { ...full, providerPaymentId: 'tr_sparse2', mode: null, method: null, metadata: null, providerCreatedAt: null };
const previous: TrackedState = { status: 'open', providerStatus: 'open-provider', amountMinor: 12345, currency: 'EUR', refundedMinor: 0, chargedBackMinor: 0 };
const events = [{ event_id: 'evt_1', dedupe_key: 'k1', type: 'payment.paid' }] as unknown as OutboxEventRow[];

describe('hot statements rendered once', () => {
  it.each([
    ['every value set', full, new Date('2026-11-02T00:00:00.000Z')],
    ['nullable values null', sparse, null],
  ] as const)('the guarded upsert matches what drizzle renders (%s)', (_name, snapshot, nextPollAt) => {
    const args = [snapshot, 991, nextPollAt, JSON.stringify(snapshot.raw), JSON.stringify(snapshot.metadata ?? null)] as const;
    // Twice: the first call may render, the second reuses the text.
    for (let i = 0; i < 2; i++) expect(guardedUpsert(...args).query()).toEqual(toQuery(guardedUpsertSql(...args)));
  });

  it.each<[string, { previous: TrackedState | null; settleReceiptIds?: number[] }]>([
    ['a change with receipts to settle and a previous state', { previous, settleReceiptIds: [31, 32] }],
    ['a first write with nothing to settle', { previous: null, settleReceiptIds: [] }],
    ['a first write with settleReceiptIds left out', { previous: null }],
  ])('the transition and events statement matches what drizzle renders (%s)', (_name, variant) => {
    const input = {
      paymentRowId: 42,
      version: 3,
      source: 'webhook' as const,
      snapshot: full,
      fence: 991,
      receiptId: 77,
      snapshotJson: '{"id":"tr_distinct1"}',
      events,
      ...variant,
    };
    for (let i = 0; i < 2; i++) expect(transitionAndEvents(input).query()).toEqual(toQuery(transitionAndEventsSql(input)));
  });

  it('refuses a parameter list that is out of step with its builder', () => {
    const wrongOrder = fixedTextStatement('test-wrong-order', () => sql`select ${'a'}::text, ${'b'}::text`, () => ['b', 'a']);
    expect(() => wrongOrder.query()).toThrow(/out of step/);
    const missing = fixedTextStatement('test-missing', () => sql`select ${1}::int, ${2}::int`, () => [1]);
    expect(() => missing.query()).toThrow(/out of step/);
  });
});
