import { describe, expect, it } from 'vitest';
import { SWEEP_MAX_LOOKBACK_MS, sweepCutoff } from '../../src/reconciliation/mollie-sweep.js';
import { parseMollieWebhook } from '../../src/providers/mollie/webhook.js';
import { buildMollieEvent } from '../../src/sandbox/mollie-webhook-sender.js';
import { mollieReceiptTarget, mollieWebhookTarget } from '../../src/webhooks/mollie-receipts.js';

const form = (body: string) => parseMollieWebhook('application/x-www-form-urlencoded', new TextEncoder().encode(body));
const event = (type: string, entityId: string) =>
  parseMollieWebhook('application/json', new TextEncoder().encode(JSON.stringify(buildMollieEvent({ type, entityId }))));

describe('what a Mollie webhook asks for', () => {
  it('classic ids: payments sync, refunds and chargebacks are looked up, the rest is ignored', () => {
    expect(mollieWebhookTarget(form('id=tr_WDqYK6vllg'))).toEqual({ kind: 'payment', paymentId: 'tr_WDqYK6vllg' });
    expect(mollieWebhookTarget(form('id=re_4qqhO89gsT'))).toEqual({ kind: 'lookup', resourceId: 're_4qqhO89gsT' });
    expect(mollieWebhookTarget(form('id=chb_n9z0tp'))).toEqual({ kind: 'lookup', resourceId: 'chb_n9z0tp' });
    for (const id of ['sub_8JfGzs6v3K', 'ord_kEn1PlbGa', 'pl_4Y0eZitmBnQ6', 'cst_8wmqcHMN4U']) {
      expect(mollieWebhookTarget(form(`id=${id}`))).toMatchObject({ kind: 'ignore', note: expect.stringContaining(id) });
    }
  });

  it('events: payment.* on a payment and refund.* on a refund lead to a payment; nothing else does', () => {
    expect(mollieWebhookTarget(event('payment.paid', 'tr_WDqYK6vllg'))).toEqual({ kind: 'payment', paymentId: 'tr_WDqYK6vllg' });
    expect(mollieWebhookTarget(event('refund.refunded', 're_4qqhO89gsT'))).toEqual({ kind: 'lookup', resourceId: 're_4qqhO89gsT' });
    expect(mollieWebhookTarget(event('payment-link.paid', 'pl_4Y0eZitmBnQ6'))).toMatchObject({ kind: 'ignore' });
    expect(mollieWebhookTarget(event('payout.completed', 'po_1234'))).toMatchObject({ kind: 'ignore' });
    // A type that does not match its entity is not followed.
    expect(mollieWebhookTarget(event('payment.paid', 're_4qqhO89gsT'))).toMatchObject({ kind: 'ignore' });
  });

  it('reads a stored receipt by its own content type', () => {
    const body = new TextEncoder().encode('id=tr_WDqYK6vllg');
    expect(mollieReceiptTarget({ body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })).toEqual({ kind: 'payment', paymentId: 'tr_WDqYK6vllg' });
    expect(mollieReceiptTarget({ body: new TextEncoder().encode('garbage'), headers: { 'content-type': 'text/plain' } })).toMatchObject({ kind: 'ignore' });
  });
});

describe('sweepCutoff', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  const hours = (h: number) => h * 3_600_000;

  it('is the window when no run has completed, or the last one is recent', () => {
    expect(sweepCutoff(now, hours(48), null)).toEqual(new Date(now.getTime() - hours(48)));
    expect(sweepCutoff(now, hours(48), new Date(now.getTime() - hours(1)))).toEqual(new Date(now.getTime() - hours(48)));
  });

  it('reaches back to the last complete run after an outage, bounded', () => {
    const watermark = new Date(now.getTime() - hours(24 * 5));
    expect(sweepCutoff(now, hours(48), watermark).getTime()).toBe(watermark.getTime() - 5 * 60_000);
    expect(sweepCutoff(now, hours(48), new Date(0)).getTime()).toBe(now.getTime() - SWEEP_MAX_LOOKBACK_MS);
  });
});
