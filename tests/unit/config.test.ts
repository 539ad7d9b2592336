import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../src/config/env.js';

describe('parseEnv', () => {
  it('applies defaults to an empty environment', () => {
    const env = parseEnv({});
    expect(env.PORT).toBe(8787);
    expect(env.REDIS_URL).toEqual([]);
    expect(env.MOLLIE_API_URL).toBe('https://api.mollie.com');
    expect(env.GOCARDLESS_API_URL).toBe('https://api.gocardless.com');
    expect(env.ADMIN_TOKEN).toBeUndefined();
  });

  it('splits comma-separated lists: Redlock nodes and webhook secrets for rotation', () => {
    const env = parseEnv({
      REDIS_URL: 'redis://a:6379, redis://b:6379,redis://c:6379',
      GOCARDLESS_WEBHOOK_SECRETS: 'new-secret,old-secret',
      MOLLIE_WEBHOOK_SECRETS: 'one',
      EVENT_SINK_URLS: 'http://127.0.0.1:9000/hook',
      EVENT_SINK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    });
    expect(env.REDIS_URL).toEqual(['redis://a:6379', 'redis://b:6379', 'redis://c:6379']);
    expect(env.GOCARDLESS_WEBHOOK_SECRETS).toEqual(['new-secret', 'old-secret']);
    expect(env.MOLLIE_WEBHOOK_SECRETS).toEqual(['one']);
    expect(env.EVENT_SINK_URLS).toEqual(['http://127.0.0.1:9000/hook']);
  });

  it('treats empty strings as unset', () => {
    expect(parseEnv({ PORT: '', ADMIN_TOKEN: '' }).PORT).toBe(8787);
  });

  it('lists every bad variable in one message', () => {
    let error: unknown;
    try {
      parseEnv({ PORT: 'eighty', DATABASE_URL: 'not a url', ADMIN_TOKEN: 'short', EVENT_SINK_SECRET: 'plain', LOG_LEVEL: 'loud' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^PORT: /),
        expect.stringMatching(/^DATABASE_URL: must be a URL/),
        expect.stringMatching(/^ADMIN_TOKEN: must be at least 16 characters/),
        expect.stringMatching(/^EVENT_SINK_SECRET: must look like whsec_/),
        expect.stringMatching(/^LOG_LEVEL: /),
      ]),
    );
    expect((error as Error).message).toMatch(/^invalid configuration:\n {2}- /);
  });

  it('bounds the shutdown grace and the fleet stall threshold', () => {
    const env = parseEnv({});
    expect(env.SHUTDOWN_GRACE_MS).toBe(5000);
    expect(env.POLLER_STALLED_AFTER_MS).toBe(300_000);
    expect(() => parseEnv({ SHUTDOWN_GRACE_MS: '-1' })).toThrow(/SHUTDOWN_GRACE_MS: /);
    expect(() => parseEnv({ SHUTDOWN_GRACE_MS: '600000' })).toThrow(/SHUTDOWN_GRACE_MS: must be at most 120000/);
    expect(() => parseEnv({ POLLER_STALLED_AFTER_MS: '500' })).toThrow(/POLLER_STALLED_AFTER_MS: must be at least 2000/);
    expect(() => parseEnv({ POLLER_STALLED_AFTER_MS: 'soon' })).toThrow(/POLLER_STALLED_AFTER_MS: /);
  });

  it('needs a signing secret when sinks are configured', () => {
    expect(() => parseEnv({ EVENT_SINK_URLS: 'http://127.0.0.1:9000/' })).toThrow(/EVENT_SINK_SECRET: required when EVENT_SINK_URLS is set/);
  });
});
