import { describe, expect, it } from 'vitest';
import { censorSecrets, createLogger, REDACTED } from '../../src/observability/logger.js';

function logged(write: (logger: ReturnType<typeof createLogger>) => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  write(logger);
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('log lines never carry secrets', () => {
  it('replaces sensitive keys at the top level and one level down, and headers.authorization', () => {
    const [line] = logged((logger) =>
      logger.info(
        {
          authorization: 'Bearer top',
          secret: 's-top',
          config: { apiKey: 'k-nested', accessToken: 't-nested', password: 'p-nested', keep: 'visible' },
          request: { headers: { authorization: 'Bearer nested', accept: 'application/json' }, url: '/v2/payments' },
          headers: { authorization: 'Bearer direct' },
        },
        'call',
      ),
    );
    expect(line).toMatchObject({
      authorization: REDACTED,
      secret: REDACTED,
      config: { apiKey: REDACTED, accessToken: REDACTED, password: REDACTED, keep: 'visible' },
      request: { headers: { authorization: REDACTED, accept: 'application/json' }, url: '/v2/payments' },
      headers: { authorization: REDACTED },
      msg: 'call',
    });
    expect(JSON.stringify(line)).not.toMatch(/Bearer|s-top|-nested/);
  });

  it('censors child bindings and errors carrying a secret, keeping the error readable', () => {
    const error = Object.assign(new Error('provider said no'), { apiKey: 'k-on-error', status: 401 });
    const [line] = logged((logger) => logger.child({ job: 'poller', secret: 's-binding' }).error({ err: error }, 'fetch failed'));
    expect(line).toMatchObject({ job: 'poller', secret: REDACTED, msg: 'fetch failed' });
    expect(line!.err).toMatchObject({ type: 'Error', message: 'provider said no', apiKey: REDACTED, status: 401 });
    expect(String((line!.err as { stack?: string }).stack)).toContain('provider said no');
    expect(JSON.stringify(line)).not.toMatch(/k-on-error|s-binding/);
  });

  it('logs an error without secrets exactly as pino does', () => {
    const [line] = logged((logger) => logger.warn(new Error('plain failure')));
    expect(line).toMatchObject({ msg: 'plain failure', err: { type: 'Error', message: 'plain failure' } });
  });

  it('never changes the caller\'s objects, and passes a clean line through without copying it', () => {
    const headers = { authorization: 'Bearer keep-me' };
    const fields = { request: { headers }, token: { secret: 'x' } };
    const censored = censorSecrets(fields);
    expect(headers.authorization).toBe('Bearer keep-me');
    expect(fields.token.secret).toBe('x');
    expect(censored).not.toBe(fields);
    const clean = { method: 'POST', path: '/webhooks/mollie', status: 200, ms: 4, nested: { outcome: 'processed' } };
    expect(censorSecrets(clean)).toBe(clean);
  });

  it('leaves deeper levels and arrays as they are (the same reach as before)', () => {
    const fields = { a: { b: { secret: 'deep' } }, list: [{ secret: 'in-array' }] };
    expect(censorSecrets(fields)).toBe(fields);
  });
});
