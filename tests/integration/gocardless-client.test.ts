/**
 * The GoCardless client (fetchPayment, listEvents) driven through the GoCardless sandbox
 * on a real port. No database, no Redis.
 */
import { describe, expect, it } from 'vitest';
import { createGoCardlessProvider, GOCARDLESS_API_VERSION, type GoCardlessProvider } from '../../src/providers/gocardless/client.js';
import type { GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import { startGoCardlessSandbox, type GoCardlessSandbox } from '../../src/sandbox/gocardless-api.js';
import { allPages, found, providerError, TOKEN_A, useSandboxWithClient } from '../helpers/gocardless-client.js';

describe('GoCardless client against the sandbox', () => {
  let sandbox: GoCardlessSandbox;
  let provider: GoCardlessProvider;
  useSandboxWithClient((started, client) => {
    sandbox = started;
    provider = client;
  });

  describe('fetchPayment', () => {
    it('finds a payment, maps it and sends the GoCardless headers', async () => {
      const payment = sandbox.createPayment({ amount: 4995, currency: 'EUR', metadata: { invoice_id: 'INV-1' }, status: 'pending_submission' });
      const snapshot = found(await provider.fetchPayment('a', payment.id));
      expect(snapshot).toMatchObject({
        provider: 'gocardless',
        account: 'a',
        providerPaymentId: payment.id,
        providerStatus: 'pending_submission',
        status: 'pending',
        amount: { minor: 4995, currency: 'EUR' },
        refundedMinor: 0,
        chargedBackMinor: 0,
        method: 'sepa_core',
        metadata: { invoice_id: 'INV-1' },
        mode: null,
      });
      expect(snapshot.providerCreatedAt?.toISOString()).toBe(payment.created_at);
      expect(snapshot.raw).toMatchObject({ id: payment.id, links: { mandate: payment.links.mandate } });

      expect(sandbox.fetchCount(payment.id)).toBe(1);
      const request = sandbox.state.requests.at(-1)!;
      expect(request).toMatchObject({ method: 'GET', path: `/payments/${payment.id}`, status: 200, tokenIndex: 0, version: GOCARDLESS_API_VERSION });
    });

    it('uses each account\'s own token', async () => {
      const payment = sandbox.createPayment();
      found(await provider.fetchPayment('b', payment.id));
      expect(sandbox.state.requests.at(-1)!.tokenIndex).toBe(1);
      expect(provider.hasAccount('b')).toBe(true);
      expect(provider.hasAccount('c')).toBe(false);
      expect(provider.hasAccount('constructor')).toBe(false);
    });

    it('answers not_found for an unknown payment', async () => {
      expect(await provider.fetchPayment('a', 'PM0000NOTHERE')).toEqual({ kind: 'not_found' });
      expect(sandbox.fetchCount('PM0000NOTHERE')).toBe(1);
    });

    it('refuses an unknown account without calling GoCardless', async () => {
      const before = sandbox.state.requests.length;
      const error = await providerError(provider.fetchPayment('nope', 'PM1'));
      expect(error).toMatchObject({ code: 'unknown_account', retryable: false, provider: 'gocardless' });
      expect(sandbox.state.requests.length).toBe(before);
    });

    it('turns 429 into rate_limited with retryAfterMs from ratelimit-reset', async () => {
      const payment = sandbox.createPayment();
      sandbox.rateLimitNext(1, { resetMs: 3000 });
      const error = await providerError(provider.fetchPayment('a', payment.id));
      expect(error).toMatchObject({ code: 'rate_limited', retryable: true });
      // ratelimit-reset is an HTTP date (whole seconds, rounded up by the sandbox).
      expect(error.retryAfterMs).toBeGreaterThan(2000);
      expect(error.retryAfterMs).toBeLessThanOrEqual(4000);
      expect(error.message).toMatch(/429 invalid_api_usage: Rate limit exceeded \(rate_limit_exceeded\) \[request_id [0-9A-F]+\]/);
      // Only the next request was limited.
      expect(found(await provider.fetchPayment('a', payment.id)).providerPaymentId).toBe(payment.id);
    });

    it('falls back to Retry-After when ratelimit-reset is absent', async () => {
      const payment = sandbox.createPayment();
      sandbox.rateLimitNext(1, { resetMs: 7000, header: 'retry-after' });
      const error = await providerError(provider.fetchPayment('a', payment.id));
      expect(error).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: 7000 });
    });

    it('hits the sandbox\'s own per-minute limit', async () => {
      const limited = await startGoCardlessSandbox({ accessTokens: [TOKEN_A], rateLimitPerMinute: 2 });
      try {
        const client = createGoCardlessProvider({ accounts: { a: { accessToken: TOKEN_A } }, apiUrl: limited.url });
        const payment = limited.createPayment();
        found(await client.fetchPayment('a', payment.id));
        found(await client.fetchPayment('a', payment.id));
        const error = await providerError(client.fetchPayment('a', payment.id));
        expect(error.code).toBe('rate_limited');
        expect(error.retryAfterMs).toBeGreaterThan(55_000);
        expect(error.retryAfterMs).toBeLessThanOrEqual(61_000);
      } finally {
        await limited.close();
      }
    });

    it('turns a 500 into a retryable unavailable error carrying GoCardless\'s message', async () => {
      const payment = sandbox.createPayment();
      sandbox.failNext(2);
      for (let i = 0; i < 2; i++) {
        const error = await providerError(provider.fetchPayment('a', payment.id));
        expect(error).toMatchObject({ code: 'unavailable', retryable: true });
        expect(error.message).toMatch(/HTTP 500 gocardless: Uh-oh! Something went wrong.*internal_server_error.*request_id/);
      }
      found(await provider.fetchPayment('a', payment.id));
      expect(sandbox.fetchCount(payment.id)).toBe(3);
    });

    it('treats a proxy\'s 503 HTML page and a dropped connection as unavailable', async () => {
      const payment = sandbox.createPayment();
      sandbox.setDown('unavailable');
      const html = await providerError(provider.fetchPayment('a', payment.id));
      expect(html).toMatchObject({ code: 'unavailable', retryable: true });
      expect(html.message).toMatch(/HTTP 503: <html>/);

      sandbox.setDown('reset');
      const reset = await providerError(provider.fetchPayment('a', payment.id));
      expect(reset).toMatchObject({ code: 'unavailable', retryable: true });

      sandbox.setDown(false);
      found(await provider.fetchPayment('a', payment.id));
    });

    it('turns a bad token into a non-retryable unauthorized error, and so a 403', async () => {
      const payment = sandbox.createPayment();
      const error = await providerError(provider.fetchPayment('revoked', payment.id));
      expect(error).toMatchObject({ code: 'unauthorized', retryable: false });
      expect(error.message).toMatch(/401 invalid_api_usage: Access token not found/);

      sandbox.failNext(1, 403);
      expect(await providerError(provider.fetchPayment('a', payment.id))).toMatchObject({ code: 'unauthorized', retryable: false });
    });

    it('times out a slow answer at timeoutMs', async () => {
      const payment = sandbox.createPayment();
      sandbox.setLatency(1500);
      const fast = createGoCardlessProvider({ accounts: { a: { accessToken: TOKEN_A } }, apiUrl: sandbox.url, timeoutMs: 150 });
      const started = Date.now();
      const error = await providerError(fast.fetchPayment('a', payment.id));
      const elapsed = Date.now() - started;
      expect(error).toMatchObject({ code: 'timeout', retryable: true });
      expect(error.message).toMatch(/timed out after 150 ms/);
      expect(elapsed).toBeGreaterThanOrEqual(140);
      expect(elapsed).toBeLessThan(1200);
    });

    it('stops when the caller aborts', async () => {
      const payment = sandbox.createPayment();
      sandbox.setLatency(1500);
      const controller = new AbortController();
      const pending = provider.fetchPayment('a', payment.id, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('lock lost')), 50);
      const error = await providerError(pending);
      expect(error).toMatchObject({ code: 'timeout', retryable: true });
      expect(error.message).toMatch(/aborted by the caller/);

      const already = AbortSignal.abort();
      expect((await providerError(provider.fetchPayment('a', payment.id, { signal: already }))).message).toMatch(/before it started/);
    });

    it('reports malformed bodies as bad_response', async () => {
      const body = (text: string, status = 200) => async () => new Response(text, { status, headers: { 'content-type': 'application/json' } });
      const make = (fetcher: typeof fetch) => createGoCardlessProvider({ accounts: { a: { accessToken: 't' } }, apiUrl: 'http://gc.invalid', fetcher });
      const payment = { id: 'PM1', amount: 100, currency: 'GBP', status: 'confirmed', created_at: '2024-01-01T00:00:00Z' };

      // Unparseable 2xx bodies (a proxy's page, a cut-off body) may be transient.
      for (const text of ['<html>gateway</html>', '{"payments":{"id":']) {
        const error = await providerError(make(body(text)).fetchPayment('a', 'PM1'));
        expect(error).toMatchObject({ code: 'bad_response', retryable: true });
        expect(error.message).toMatch(/not JSON/);
      }

      const noEnvelope = await providerError(make(body(JSON.stringify(payment))).fetchPayment('a', 'PM1'));
      expect(noEnvelope).toMatchObject({ code: 'bad_response', retryable: false });
      expect(noEnvelope.message).toMatch(/payments/);

      const unknownStatus = await providerError(make(body(JSON.stringify({ payments: { ...payment, status: 'teleported' } }))).fetchPayment('a', 'PM1'));
      expect(unknownStatus).toMatchObject({ code: 'bad_response', retryable: false });
      expect(unknownStatus.message).toMatch(/unknown status "teleported"/);

      const floatAmount = await providerError(make(body(JSON.stringify({ payments: { ...payment, amount: 10.5 } }))).fetchPayment('a', 'PM1'));
      expect(floatAmount).toMatchObject({ code: 'bad_response' });

      const otherPayment = await providerError(make(body(JSON.stringify({ payments: { ...payment, id: 'PM2' } }))).fetchPayment('a', 'PM1'));
      expect(otherPayment.message).toMatch(/asked for PM1 but got PM2/);

      const badEvents = await providerError(make(body('{"events":[{"id":"EV1"}],"meta":{"cursors":{"before":null,"after":null}}}')).listEvents('a'));
      expect(badEvents).toMatchObject({ code: 'bad_response', retryable: false });
      expect(badEvents.message).toMatch(/action/);

      const foreign404 = await providerError(make(body('<html>Not Found</html>', 404)).fetchPayment('a', 'PM1'));
      expect(foreign404).toMatchObject({ code: 'bad_response', retryable: false });
      expect(foreign404.message).toMatch(/is apiUrl right/);
      expect(await make(body('{"error":{"message":"Resource not found","code":404}}', 404)).fetchPayment('a', 'PM1')).toEqual({ kind: 'not_found' });

      const redirect = await providerError(make(async () => new Response(null, { status: 302, headers: { location: 'http://elsewhere' } })).fetchPayment('a', 'PM1'));
      expect(redirect).toMatchObject({ code: 'bad_response', retryable: false });
    });

    it('is answered 400 by the sandbox without the GoCardless-Version header, in GoCardless\'s envelope', async () => {
      const payment = sandbox.createPayment();
      const response = await fetch(`${sandbox.url}/payments/${payment.id}`, { headers: { Authorization: `Bearer ${TOKEN_A}` } });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({
        type: 'invalid_api_usage',
        code: 400,
        message: "Missing 'GoCardless-Version' header",
        errors: [{ reason: 'missing_version_header', message: "Missing 'GoCardless-Version' header" }],
        documentation_url: 'https://developer.gocardless.com/api-reference#missing_version_header',
      });
      expect(body.error.request_id).toEqual(expect.any(String));
      expect(response.headers.get('ratelimit-limit')).toBe('1000');

      const anonymous = await fetch(`${sandbox.url}/payments/${payment.id}`, { headers: { 'GoCardless-Version': GOCARDLESS_API_VERSION } });
      expect(anonymous.status).toBe(401);
      expect(((await anonymous.json()) as { error: { errors: Array<{ reason: string }> } }).error.errors[0]!.reason).toBe('missing_authorization_header');

      const ok = await fetch(`${sandbox.url}/payments/${payment.id}`, { headers: { Authorization: `Bearer ${TOKEN_A}`, 'GoCardless-Version': GOCARDLESS_API_VERSION } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('gocardless-version')).toBe(GOCARDLESS_API_VERSION);
      expect(Number(ok.headers.get('ratelimit-remaining'))).toBeLessThan(1000);
      expect(Date.parse(ok.headers.get('ratelimit-reset')!)).toBeGreaterThan(Date.now());
      expect(((await ok.json()) as { payments: { id: string } }).payments.id).toBe(payment.id);
    });
  });

  describe('listEvents', () => {
    /** 3 payments × (created, submitted, confirmed) = 9 events. */
    function seedEvents() {
      const ids = [1, 2, 3].map(() => sandbox.createPayment().id);
      for (const id of ids) sandbox.setPaymentStatus(id, 'submitted');
      for (const id of ids) sandbox.setPaymentStatus(id, 'confirmed');
      return ids;
    }

    it('pages newest first with cursors until after is null, each event once', async () => {
      seedEvents();
      const pages = await allPages(provider, { limit: 4 });
      expect(pages.map((page) => page.length)).toEqual([4, 4, 1]);
      const listed = pages.flat();
      const expected = [...sandbox.state.events].reverse();
      expect(listed.map((event) => event.id)).toEqual(expected.map((event) => event.id));
      expect(new Set(listed.map((event) => event.id)).size).toBe(9);
      for (let i = 1; i < listed.length; i++) {
        expect(Date.parse(listed[i - 1]!.created_at)).toBeGreaterThan(Date.parse(listed[i]!.created_at));
      }
    });

    it('returns cursors and rate-limit state from the headers', async () => {
      seedEvents();
      const first = await provider.listEvents('a', { limit: 2 });
      expect(first.before).toBeNull();
      expect(first.after).toBe(first.events[1]!.id);
      expect(first.rateLimit.limit).toBe(1000);
      expect(first.rateLimit.resetAt).toBeInstanceOf(Date);
      const second = await provider.listEvents('a', { limit: 2, after: first.after! });
      expect(second.before).toBe(second.events[0]!.id);
      expect(second.rateLimit.remaining).toBe(first.rateLimit.remaining! - 1);

      // `before` walks back to the first page.
      const back = await provider.listEvents('a', { limit: 2, before: second.before! });
      expect(back.events.map((event) => event.id)).toEqual(first.events.map((event) => event.id));
      expect(back.before).toBeNull();
    });

    it('uses the default limit of 50', async () => {
      const payment = sandbox.createPayment();
      for (let i = 0; i < 30; i++) sandbox.setPaymentStatus(payment.id, i % 2 === 0 ? 'submitted' : 'failed');
      for (let i = 0; i < 30; i++) sandbox.createEvent({ resourceType: 'subscriptions', action: 'created' });
      const first = await provider.listEvents('a');
      expect(first.events).toHaveLength(50);
      expect(first.after).not.toBeNull();
      const rest = await provider.listEvents('a', { after: first.after! });
      expect(rest.events).toHaveLength(11);
      expect(rest.after).toBeNull();
    });

    it('filters by created_at, resource type, action and single resource', async () => {
      const [first] = seedEvents();
      const checkpoint = sandbox.state.events.at(-1)!.created_at;
      const later = sandbox.createEvent({ resourceType: 'mandates', action: 'cancelled', links: { mandate: 'MD123' } });

      const since = await provider.listEvents('a', { createdAt: { gt: checkpoint } });
      expect(since.events.map((event) => event.id)).toEqual([later.id]);
      const sinceDate = await provider.listEvents('a', { createdAt: { gte: new Date(checkpoint) } });
      expect(sinceDate.events).toHaveLength(2);

      const mandates = await provider.listEvents('a', { resourceType: 'mandates' });
      expect(mandates.events.map((event) => event.id)).toEqual([later.id]);
      const confirmed = await provider.listEvents('a', { action: 'confirmed' });
      expect(confirmed.events).toHaveLength(3);
      const forFirst = await provider.listEvents('a', { links: { payment: first! } });
      expect(forFirst.events.map((event) => event.action)).toEqual(['confirmed', 'submitted', 'created']);

      const combined = await providerError(provider.listEvents('a', { resourceType: 'payments', links: { payment: first! } }));
      expect(combined).toMatchObject({ code: 'bad_response', retryable: false });
      expect(combined.message).toMatch(/400 invalid_api_usage.*cannot be combined/);
      const badLimit = await providerError(provider.listEvents('a', { limit: 501 }));
      expect(badLimit.message).toMatch(/limit/);
    });

    it('pages stay consistent while new events arrive; a created_at pass catches the new ones', async () => {
      seedEvents();
      const seen = new Map<string, GoCardlessEvent>();
      let page = await provider.listEvents('a', { limit: 3 });
      const newest = page.events[0]!.created_at;
      page.events.forEach((event) => seen.set(event.id, event));
      const added: string[] = [];
      while (page.after !== null) {
        sandbox.createPayment(); // its created event arrives mid-paging
        added.push(sandbox.state.events.at(-1)!.id);
        page = await provider.listEvents('a', { limit: 3, after: page.after });
        for (const event of page.events) {
          expect(seen.has(event.id)).toBe(false);
          seen.set(event.id, event);
        }
      }
      expect(seen.size).toBe(9);
      const next = await allPages(provider, { createdAt: { gt: newest }, limit: 2 });
      expect(next.flat().map((event) => event.id).sort()).toEqual([...added].sort());
    });

    it('can list oldest first instead', async () => {
      const ascending = await startGoCardlessSandbox({ accessTokens: [TOKEN_A], eventOrder: 'oldest_first' });
      try {
        const client = createGoCardlessProvider({ accounts: { a: { accessToken: TOKEN_A } }, apiUrl: ascending.url });
        const payment = ascending.createPayment();
        ascending.setPaymentStatus(payment.id, 'submitted');
        ascending.setPaymentStatus(payment.id, 'confirmed');
        const pages = await allPages(client, { limit: 2 });
        expect(pages.flat().map((event) => event.action)).toEqual(['created', 'submitted', 'confirmed']);
      } finally {
        await ascending.close();
      }
    });

    it('rejects an unknown cursor', async () => {
      seedEvents();
      const error = await providerError(provider.listEvents('a', { after: 'EV0000NOTHERE' }));
      expect(error.message).toMatch(/cursor EV0000NOTHERE/);
    });
  });
});
