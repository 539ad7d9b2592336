import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { toErrorResponse } from '../../src/http/errors.js';

function failingWith(error: unknown) {
  const app = new Hono();
  app.onError((err, c) => toErrorResponse(err, c));
  app.get('/', () => {
    throw error;
  });
  return app.request('/');
}

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
/** drizzle wraps the driver's error and keeps it as the cause. */
const wrapped = (cause: Error) => new Error('Failed query: select 1', { cause });

describe('a database that went away is a 503, not a 500', () => {
  it.each([
    ['a write on a socket Postgres already closed (restart mid-query)', withCode('write EPIPE', 'EPIPE')],
    ['the same, wrapped by drizzle', wrapped(withCode('write EPIPE', 'EPIPE'))],
    ['a reset connection', withCode('read ECONNRESET', 'ECONNRESET')],
    ['the driver saw the close', wrapped(withCode('write CONNECTION_CLOSED 127.0.0.1:5432', 'CONNECTION_CLOSED'))],
    ['an administrator shut the server down', withCode('terminating connection due to administrator command', '57P01')],
    ['the server crashed', withCode('terminating connection because of crash of another server process', '57P02')],
    ['a connection failure reported by the server', withCode('connection failure', '08006')],
  ])('%s', async (_name, error) => {
    const res = await failingWith(error);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: 'database_unavailable', retryable: true } });
  });

  it('anything else stays an internal error, without its details', async () => {
    for (const error of [new Error('boom'), withCode('duplicate key value violates unique constraint', '23505')]) {
      const res = await failingWith(error);
      expect(res.status).toBe(500);
      const body = await res.json();
      expect(body).toMatchObject({ error: { code: 'internal', message: 'internal error' } });
      expect(JSON.stringify(body)).not.toMatch(/boom|duplicate/);
    }
  });
});
