import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import { DEFAULT_DELIVERY_DELAYS_MS } from '../../src/events/delivery-schedule.js';
import { natsSubject } from '../../src/events/nats-sink.js';
import { nextRetryDelayMs, RECEIPT_RETRY_DELAYS_MS } from '../../src/webhooks/receipts.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

function problems(source: Record<string, string>): string[] {
  try {
    parseEnv(source);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('retry schedules as configuration', () => {
  it('default to the schedules the code had (deliveries and receipts)', () => {
    const env = parseEnv({});
    expect(env.EVENT_SINK_RETRY_DELAYS).toEqual(DEFAULT_DELIVERY_DELAYS_MS);
    expect(env.RECEIPT_RETRY_DELAYS).toEqual(RECEIPT_RETRY_DELAYS_MS);
    expect(env.EVENT_SINK_PROBE_INTERVAL_MS).toBe(5000);
  });

  it('read delays with units', () => {
    const env = parseEnv({ EVENT_SINK_RETRY_DELAYS: '250ms, 5s,2m,1h,1d', RECEIPT_RETRY_DELAYS: '1s' });
    expect(env.EVENT_SINK_RETRY_DELAYS).toEqual([250, 5000, 120_000, 3_600_000, 86_400_000]);
    expect(env.RECEIPT_RETRY_DELAYS).toEqual([1000]);
    // The receipt worker's schedule is the configured one: past its end, the receipt fails.
    expect(nextRetryDelayMs(1, undefined, () => 0.5, env.RECEIPT_RETRY_DELAYS)).toBe(1000);
    expect(nextRetryDelayMs(2, undefined, () => 0.5, env.RECEIPT_RETRY_DELAYS)).toBeNull();
  });

  it('refuse a bad schedule at start with a message that says how to write one', () => {
    expect(problems({ EVENT_SINK_RETRY_DELAYS: '5s,soon' })).toEqual([
      'EVENT_SINK_RETRY_DELAYS: "soon" is not a delay between 1ms and 7d (write e.g. 5s,5m,30m,2h; units ms, s, m, h, d)',
    ]);
    expect(problems({ RECEIPT_RETRY_DELAYS: '8d' })[0]).toMatch(/^RECEIPT_RETRY_DELAYS: "8d" is not a delay/);
    expect(problems({ EVENT_SINK_RETRY_DELAYS: '0s' })[0]).toMatch(/"0s" is not a delay/);
    expect(problems({ EVENT_SINK_RETRY_DELAYS: Array.from({ length: 51 }, () => '1s').join(',') })).toEqual(['EVENT_SINK_RETRY_DELAYS: at most 50 delays']);
    expect(problems({ EVENT_SINK_PROBE_INTERVAL_MS: '10' })[0]).toMatch(/^EVENT_SINK_PROBE_INTERVAL_MS: /);
  });
});

describe('broker sinks as configuration', () => {
  it('take NATS servers, a subject prefix, a RabbitMQ URL and exchange', () => {
    const env = parseEnv({
      EVENT_SINK_SECRET: SECRET,
      EVENT_NATS_URL: 'nats://127.0.0.1:4222, tls://nats.example:4222',
      EVENT_NATS_SUBJECT: 'billing.events',
      EVENT_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/billing',
      EVENT_AMQP_EXCHANGE: 'gateway.events',
    });
    expect(env.EVENT_NATS_URL).toEqual(['nats://127.0.0.1:4222', 'tls://nats.example:4222']);
    expect(env.EVENT_NATS_SUBJECT).toBe('billing.events');
    expect(env.EVENT_AMQP_URL).toBe('amqp://guest:guest@127.0.0.1:5672/billing');
    expect(env.EVENT_AMQP_EXCHANGE).toBe('gateway.events');
    expect(parseEnv({}).EVENT_NATS_SUBJECT).toBe('events');
    expect(parseEnv({}).EVENT_AMQP_EXCHANGE).toBe('payment-events');
  });

  it('refuse bad values with clear messages, and need the signing secret', () => {
    expect(problems({ EVENT_SINK_SECRET: SECRET, EVENT_NATS_URL: 'http://127.0.0.1:4222' })).toEqual([
      'EVENT_NATS_URL: every entry must be a nats:// or tls:// URL (nats://127.0.0.1:4222)',
    ]);
    expect(problems({ EVENT_SINK_SECRET: SECRET, EVENT_NATS_SUBJECT: 'events.>' })[0]).toMatch(/^EVENT_NATS_SUBJECT: must be dot-separated tokens/);
    expect(problems({ EVENT_SINK_SECRET: SECRET, EVENT_AMQP_URL: 'redis://127.0.0.1' })).toEqual([
      'EVENT_AMQP_URL: must be an amqp:// or amqps:// URL (amqp://user:pass@127.0.0.1:5672/vhost)',
    ]);
    expect(problems({ EVENT_AMQP_EXCHANGE: 'amq.topic' })).toEqual(['EVENT_AMQP_EXCHANGE: names starting with amq. are reserved by the broker']);
    expect(problems({ EVENT_NATS_URL: 'nats://127.0.0.1:4222' })).toEqual(['EVENT_SINK_SECRET: required when EVENT_NATS_URL is set']);
    expect(problems({ EVENT_AMQP_URL: 'amqp://127.0.0.1' })).toEqual(['EVENT_SINK_SECRET: required when EVENT_AMQP_URL is set']);
  });

  it('put events on <prefix>.<type>.<provider>, with tokens a subject can hold', () => {
    const event = (type: string, provider?: string) => ({ id: 'evt_1', type, timestamp: '', data: provider ? { provider } : {} });
    expect(natsSubject('events', event('payment.paid', 'mollie'))).toBe('events.payment.paid.mollie');
    expect(natsSubject('billing.events', event('gocardless.mandates.cancelled', 'gocardless'))).toBe('billing.events.gocardless.mandates.cancelled.gocardless');
    expect(natsSubject('events', event('gateway.sink.disabled'))).toBe('events.gateway.sink.disabled.none');
    expect(natsSubject('events', event('payment.odd type*', 'a>b'))).toBe('events.payment.odd_type_.a_b');
  });
});
