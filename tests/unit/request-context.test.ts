/**
 * The request id on answers the context did not build: a handler's own Response, and one
 * whose headers cannot be changed (a redirect made by Response.redirect, a fetched answer).
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { requestContext, type AppEnv } from '../../src/http/middleware.js';
import { createLogger } from '../../src/observability/logger.js';

function app() {
  const lines: Record<string, unknown>[] = [];
  const hono = new Hono<AppEnv>();
  hono.use('*', requestContext(createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })));
  hono.get('/context', (c) => c.json({ ok: true }, 201));
  hono.get('/own', () => new Response('plain', { status: 202, headers: { 'x-extra': '1' } }));
  hono.get('/immutable', () => Response.redirect('https://example.com/next', 302));
  return { hono, lines };
}

describe('x-request-id', () => {
  it.each([
    ['a response built by the context', '/context', 201],
    ["a handler's own Response", '/own', 202],
    ['a response with immutable headers', '/immutable', 302],
  ])('is on %s, and is the id of its log line', async (_label, path, status) => {
    const { hono, lines } = app();
    const res = await hono.request(path);
    expect(res.status).toBe(status);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^req_[0-9a-f]{32}$/);
    expect(lines).toMatchObject([{ msg: 'request', requestId, status }]);
    if (path === '/own') expect(await res.text()).toBe('plain');
    if (path === '/immutable') expect(res.headers.get('location')).toBe('https://example.com/next');
  });

  it("keeps the caller's id when it is sane", async () => {
    const { hono } = app();
    const res = await hono.request('/own', { headers: { 'x-request-id': 'lb-7.x:y' } });
    expect(res.headers.get('x-request-id')).toBe('lb-7.x:y');
  });
});
