import { describe, expect, it } from 'vitest';
import { formatDuration, formatMoney } from '../../src/console/format.js';
import type { PaymentHistory } from '../../src/console/queries.js';
import { createSessionValue, safeNextPath, tokenMatches, verifySessionValue } from '../../src/console/session.js';
import { buildTimeline } from '../../src/console/timeline.js';

const TOKEN = 'an-admin-token-of-some-length';

describe('console session values', () => {
  const now = new Date('2026-11-22T12:00:00Z');

  it('verifies its own value until it expires, and nothing else', () => {
    const value = createSessionValue(TOKEN, now, 60);
    expect(value).not.toContain(TOKEN);
    expect(verifySessionValue(value, TOKEN, now)).toBe(true);
    expect(verifySessionValue(value, TOKEN, new Date(now.getTime() + 59_000))).toBe(true);
    expect(verifySessionValue(value, TOKEN, new Date(now.getTime() + 60_000))).toBe(false);
    expect(verifySessionValue(value, `${TOKEN}x`, now)).toBe(false);
    expect(verifySessionValue(undefined, TOKEN, now)).toBe(false);
    expect(verifySessionValue('', TOKEN, now)).toBe(false);
    expect(verifySessionValue(`${value}x`, TOKEN, now)).toBe(false);
    // Moving the expiry invalidates the MAC.
    const [expiry, mac] = value.split('.');
    expect(verifySessionValue(`${Number(expiry) + 1}.${mac}`, TOKEN, now)).toBe(false);
  });

  it('accepts only the spelling it issued, not another that decodes to the same MAC', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // Enough expiries that the MAC's last character takes many values, the 'A' among them.
    for (let ttl = 1; ttl <= 200; ttl++) {
      const value = createSessionValue(TOKEN, now, ttl);
      const [expiry, mac] = value.split('.') as [string, string];
      const stem = `${expiry}.${mac.slice(0, -1)}`;
      const accepted = [...alphabet].filter((last) => verifySessionValue(`${stem}${last}`, TOKEN, now));
      expect(accepted, value).toEqual([mac.at(-1)]);
    }
  });

  it('compares tokens of any length', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokenMatches(`${TOKEN}${'x'.repeat(10_000)}`, TOKEN)).toBe(false);
  });

  it('only lets sign-in continue to a console path', () => {
    expect(safeNextPath('/console/payments/mollie/tr_1')).toBe('/console/payments/mollie/tr_1');
    expect(safeNextPath('/console/payments?status=paid&id=tr_1')).toBe('/console/payments?status=paid&id=tr_1');
    for (const bad of [undefined, '', 'https://evil.example', '//evil.example', '/console//evil', '/consolex', '/v1/payments', '/console/../v1', '/console/sign-in', '/console/sign-out', '/console/"><x']) {
      expect(safeNextPath(bad), String(bad)).toBe('/console');
    }
  });
});

describe('console timeline', () => {
  const at = (s: number) => new Date(Date.UTC(2026, 10, 22, 12, 0, s));

  it('merges receipts, transitions, events and deliveries by time, causes before effects at the same instant', () => {
    const history: PaymentHistory = {
      receipts: [
        { id: 7, provider: 'mollie', account: 'default', eventId: null, resourceType: 'payment', resourceId: 'tr_1', signature: 'absent', state: 'processed', attempts: 0, lastError: null, receivedAt: at(1), processedAt: at(2) },
      ],
      transitions: [
        { id: 2, version: 2, source: 'webhook', previousStatus: 'open', newStatus: 'paid', previousProviderStatus: 'open', newProviderStatus: 'paid', fence: 9, receiptId: 7, createdAt: at(2) },
        { id: 1, version: 1, source: 'sync', previousStatus: null, newStatus: 'open', previousProviderStatus: null, newProviderStatus: 'open', fence: 3, receiptId: null, createdAt: at(0) },
      ],
      events: [{ id: 11, eventId: 'evt_b', type: 'payment.paid', paymentVersion: 2, source: 'webhook', createdAt: at(2), relayedAt: at(3) }],
      deliveries: [
        { id: 21, outboxId: 11, eventId: 'evt_b', eventType: 'payment.paid', sinkId: 's', sinkKind: 'http', sinkTarget: 'https://x.example', state: 'dead', attempts: 3, lastStatus: 500, lastError: 'boom', createdAt: at(3), lastAttemptAt: at(5), nextAttemptAt: at(5), deliveredAt: null, deadLetteredAt: at(6) },
        { id: 22, outboxId: 11, eventId: 'evt_b', eventType: 'payment.paid', sinkId: 't', sinkKind: 'http', sinkTarget: 'https://y.example', state: 'delivered', attempts: 1, lastStatus: 204, lastError: null, createdAt: at(3), lastAttemptAt: at(4), nextAttemptAt: at(4), deliveredAt: at(4), deadLetteredAt: null },
      ],
    };
    const timeline = buildTimeline(history);
    expect(timeline.map((entry) => `${entry.kind}@${entry.at.getUTCSeconds()}`)).toEqual([
      'transition@0',
      'receipt@1',
      'transition@2',
      'event@2',
      'delivery@4',
      'delivery@6',
    ]);
    const paid = timeline[2]!;
    expect(paid.kind === 'transition' && paid.cause?.id).toBe(7);
    const event = timeline[3]!;
    expect(event.kind === 'event' && event.deliveries.map((d) => d.id)).toEqual([21, 22]);
  });
});

describe('console formatting', () => {
  it('formats spans and money for people', () => {
    expect(formatDuration(840)).toBe('840 ms');
    expect(formatDuration(4200)).toBe('4.2 s');
    expect(formatDuration(192_000)).toBe('3 min 12 s');
    expect(formatDuration(7_500_000)).toBe('2 h 5 min');
    expect(formatDuration(-1500)).toBe('-1.5 s');
    expect(formatMoney(4995, 'EUR')).toBe('49.95 EUR');
    expect(formatMoney(500, 'JPY')).toBe('500 JPY');
  });
});
