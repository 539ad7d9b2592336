import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/deps.js';
import { API_BODY_LIMIT, createApp, WEBHOOK_BODY_LIMIT } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { auth, buildTestDeps } from '../helpers/deps.js';

let database: TestDatabase;
let deps: Deps;

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url });
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

describe('body limits', () => {
  it('answers 413 from the declared length, before reading the body', async () => {
    const app = createApp(deps);
    let pulled = 0;
    // A body that would take forever to produce: the answer must not wait for it.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close();
        else controller.enqueue(new Uint8Array(1024));
      },
    });
    const res = await app.request('/webhooks/gocardless', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'content-length': String(WEBHOOK_BODY_LIMIT + 1) },
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    const json = await res.json();
    expect(json.error).toMatchObject({ code: 'payload_too_large', message: `request body exceeds ${WEBHOOK_BODY_LIMIT} bytes` });
    expect(json.error.requestId).toMatch(/^req_/);
    expect(pulled).toBeLessThan(10);
  });

  it('stops a streamed body without a length once it passes the limit', async () => {
    const app = createApp(deps);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 64 * 1024;
        if (sent > API_BODY_LIMIT * 64) controller.close();
        else controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const res = await app.request('/v1/payments', { method: 'POST', body, headers: { ...auth, 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(API_BODY_LIMIT * 4);
  });
});
