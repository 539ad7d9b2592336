import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY_DELAYS_MS, MAX_RETRY_AFTER_MS, nextDeliveryDelayMs } from '../../src/events/delivery-schedule.js';
import { describeUrl, signedHeaders } from '../../src/events/http-sink.js';
import { eventBody, sinkId } from '../../src/events/sinks.js';

describe('the delivery retry schedule', () => {
  it('follows the schedule with ±20% jitter, then gives up', () => {
    const schedule = [1000, 60_000];
    expect(nextDeliveryDelayMs(1, schedule, undefined, () => 0)).toBe(800);
    expect(nextDeliveryDelayMs(1, schedule, undefined, () => 0.5)).toBe(1000);
    expect(nextDeliveryDelayMs(1, schedule, undefined, () => 1)).toBe(1200);
    expect(nextDeliveryDelayMs(2, schedule, undefined, () => 0.5)).toBe(60_000);
    expect(nextDeliveryDelayMs(3, schedule)).toBeNull();
  });

  it('defaults to Standard Webhooks’ example: 9 retries over about three days', () => {
    expect(DEFAULT_DELIVERY_DELAYS_MS).toHaveLength(9);
    const total = DEFAULT_DELIVERY_DELAYS_MS.reduce((sum, delay) => sum + delay, 0);
    expect(total).toBe((75 * 3600 + 35 * 60 + 5) * 1000);
    expect(nextDeliveryDelayMs(10)).toBeNull();
  });

  it('honours a longer Retry-After, never a shorter one, and caps absurd ones', () => {
    expect(nextDeliveryDelayMs(1, [1000], 30_000, () => 0.5)).toBe(30_000);
    expect(nextDeliveryDelayMs(1, [1000], 10, () => 0.5)).toBe(1000);
    expect(nextDeliveryDelayMs(1, [1000], 10 * 365 * 86_400_000, () => 0.5)).toBe(MAX_RETRY_AFTER_MS);
    // Retry-After does not buy attempts past the schedule.
    expect(nextDeliveryDelayMs(2, [1000], 30_000)).toBeNull();
  });

});

describe('outbound signing', () => {
  it('matches the Standard Webhooks test vector', () => {
    const signer = new Webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    const headers = signedHeaders([signer], 'msg_p5jXN8AQM9LWM0D4loKWxJek', new Date(1614265330 * 1000), '{"test": 2432232314}');
    expect(headers).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('signs with every secret during a rotation, current first, and either verifies', () => {
    const current = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const previous = 'whsec_c2VjcmV0LWJlZm9yZS10aGUtcm90YXRpb24=';
    const body = eventBody({ id: 'evt_1', type: 'payment.paid', timestamp: '2026-03-20T09:14:52.000Z', data: { paymentId: 'tr_1' } });
    const headers = signedHeaders([new Webhook(current), new Webhook(previous)], 'evt_1', new Date(), body);
    const [first, second] = headers['webhook-signature']!.split(' ');
    expect(first).toBe(new Webhook(current).sign('evt_1', new Date(Number(headers['webhook-timestamp']) * 1000), body));
    expect(second).toMatch(/^v1,/);
    expect(new Webhook(current).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(previous).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('keeps the documented key order, and sink ids and targets free of secrets', () => {
    expect(eventBody({ data: { a: 1 }, timestamp: 't', type: 'x', id: 'evt_1' } as never)).toBe('{"id":"evt_1","type":"x","timestamp":"t","data":{"a":1}}');
    expect(describeUrl('https://user:pass@billing.example.com:8443/hooks/in?token=abc')).toBe('https://billing.example.com:8443/hooks/in');
    expect(sinkId('http', 'https://a.example/x')).toMatch(/^snk_[0-9a-f]{16}$/);
    expect(sinkId('http', 'https://a.example/x')).toBe(sinkId('http', 'https://a.example/x'));
    expect(sinkId('http', 'https://a.example/x?token=1')).not.toBe(sinkId('http', 'https://a.example/x?token=2'));
    expect(sinkId('stream', 'events')).not.toBe(sinkId('http', 'events'));
  });
});
