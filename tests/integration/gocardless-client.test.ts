/**
 * The GoCardless client driven through the GoCardless sandbox on a real port, and
 * the webhook sender driven against a real receiving server. No database, no Redis.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createGoCardlessProvider, GOCARDLESS_API_VERSION, type GoCardlessProvider } from '../../src/providers/gocardless/client.js';
import { verifyGoCardlessSignature } from '../../src/providers/gocardless/signature.js';
import { parseGoCardlessBatch, type GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import { ProviderError, type FetchResult } from '../../src/providers/types.js';
import { startGoCardlessSandbox, type GoCardlessSandbox, type SandboxPayment } from '../../src/sandbox/gocardless-api.js';
import { seededRandom, sendGoCardlessWebhooks, webhookRetryDelays } from '../../src/sandbox/gocardless-webhook-sender.js';

const TOKEN_A = 'sandbox_token_account_a';
const TOKEN_B = 'sandbox_token_account_b';

async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a ProviderError, but the call succeeded');
}

function found(result: FetchResult) {
  expect(result.kind).toBe('found');
  if (result.kind !== 'found') throw new Error('not found');
  return result.snapshot;
}

/** Every page of /events, following `after` until it is null. */
async function allPages(provider: GoCardlessProvider, options: Parameters<GoCardlessProvider['listEvents']>[1] = {}) {
  const pages: GoCardlessEvent[][] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 100; guard++) {
    const page = await provider.listEvents('a', { ...options, ...(after !== undefined && { after }) });
    pages.push(page.events);
    if (page.after === null) return pages;
    after = page.after;
  }
  throw new Error('paging never ended');
}

describe('GoCardless client against the sandbox', () => {
  let sandbox: GoCardlessSandbox;
  let provider: GoCardlessProvider;

  beforeAll(async () => {
    sandbox = await startGoCardlessSandbox({ port: 0, accessTokens: [TOKEN_A, TOKEN_B] });
    provider = createGoCardlessProvider({
      accounts: { a: { accessToken: TOKEN_A }, b: { accessToken: TOKEN_B }, revoked: { accessToken: 'revoked_token' } },
      apiUrl: sandbox.url,
      timeoutMs: 2000,
    });
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  beforeEach(() => {
    sandbox.reset();
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

  describe('sandbox scripting', () => {
    it('status moves append matching events and change what fetchPayment sees', async () => {
      const payment = sandbox.createPayment({ amount: 2500, currency: 'GBP', metadata: { order: 'o-1' } });
      const steps: Array<[Parameters<GoCardlessSandbox['setPaymentStatus']>[1], string, string, string]> = [
        ['submitted', 'submitted', 'payment_submitted', 'pending'],
        ['confirmed', 'confirmed', 'payment_confirmed', 'paid'],
        ['paid_out', 'paid_out', 'payment_paid_out', 'paid'],
        ['charged_back', 'charged_back', 'authorisation_disputed', 'charged_back'],
        ['paid_out', 'chargeback_cancelled', 'payment_chargeback_cancelled', 'paid'],
        ['failed', 'failed', 'insufficient_funds', 'failed'],
        ['pending_submission', 'resubmission_requested', 'payment_retried', 'pending'],
      ];
      for (const [status, action, cause, normalised] of steps) {
        const { event } = sandbox.setPaymentStatus(payment.id, status);
        expect(event).toMatchObject({ resource_type: 'payments', action, links: { payment: payment.id }, details: { cause }, resource_metadata: { order: 'o-1' } });
        expect(event!.id).toMatch(/^EV[0-9A-Z]{12}$/);
        const snapshot = found(await provider.fetchPayment('a', payment.id));
        expect(snapshot.providerStatus).toBe(status);
        expect(snapshot.status).toBe(normalised);
        expect(snapshot.chargedBackMinor).toBe(status === 'charged_back' ? 2500 : 0);
      }
      const failed = sandbox.state.events.find((event) => event.action === 'failed')!;
      expect(failed.details).toMatchObject({ origin: 'bank', scheme: 'bacs', will_attempt_retry: false });

      const listed = (await allPages(provider, { links: { payment: payment.id } })).flat();
      expect(listed.map((event) => event.action).reverse()).toEqual(['created', ...steps.map(([, action]) => action)]);
    });

    it('a silent status change (missed webhook) adds no event', async () => {
      const payment = sandbox.createPayment();
      const count = sandbox.state.events.length;
      expect(sandbox.setPaymentStatus(payment.id, 'submitted', { emitEvent: false }).event).toBeNull();
      expect(sandbox.state.events.length).toBe(count);
      expect(found(await provider.fetchPayment('a', payment.id)).providerStatus).toBe('submitted');
    });

    it('plays a timeline over time', async () => {
      const payment = sandbox.createPayment();
      const { dueAt } = sandbox.scheduleTimeline(payment.id, [
        { afterMs: 30, status: 'submitted' },
        { afterMs: 60, status: 'confirmed' },
        { afterMs: 90, status: 'paid_out', payoutId: 'PO123' },
      ]);
      expect(dueAt).toHaveLength(3);
      const final = await waitFor(async () => {
        const snapshot = found(await provider.fetchPayment('a', payment.id));
        return snapshot.providerStatus === 'paid_out' ? snapshot : undefined;
      }, 'the payment to be paid out');
      expect(final.raw.links).toMatchObject({ payout: 'PO123' });
      expect(sandbox.state.pendingTimelineSteps).toBe(0);
      const actions = sandbox.state.events.filter((event) => event.links.payment === payment.id).map((event) => event.action);
      expect(actions).toEqual(['created', 'submitted', 'confirmed', 'paid_out']);
    });

    it('plays a step whose timer fires before Date.now() reaches it', async () => {
      const payment = sandbox.createPayment();
      sandbox.scheduleTimeline(payment.id, [{ afterMs: 40, status: 'submitted' }]);
      // Timers run on the event loop's monotonic clock, the step's due time is wall-clock:
      // the timer can fire while Date.now() is still a little short of it. Made certain here
      // by holding the wall clock 5 ms back from now on.
      const wallClock = Date.now.bind(Date);
      const behind = vi.spyOn(Date, 'now').mockImplementation(() => wallClock() - 5);
      try {
        // Watched without API calls: every call to the sandbox also applies due steps.
        await waitFor(() => (sandbox.state.events.some((event) => event.links.payment === payment.id && event.action === 'submitted') ? true : undefined), 'the step to apply');
      } finally {
        behind.mockRestore();
      }
      expect(sandbox.state.pendingTimelineSteps).toBe(0);
      expect(sandbox.state.events.filter((event) => event.links.payment === payment.id).map((event) => event.action)).toEqual(['created', 'submitted']);
    });

    it('refunds raise amount_refunded and add a refunds event', async () => {
      const payment = sandbox.createPayment({ amount: 1000 });
      sandbox.setPaymentStatus(payment.id, 'confirmed');
      const { refundId, event } = sandbox.refundPayment(payment.id, { amount: 400 });
      expect(event).toMatchObject({ resource_type: 'refunds', action: 'created', links: { refund: refundId, payment: payment.id } });
      expect(found(await provider.fetchPayment('a', payment.id)).refundedMinor).toBe(400);
      expect(() => sandbox.refundPayment(payment.id, { amount: 601 })).toThrow(/exceeds/);
    });

    it('a cancelled mandate cancels its unsubmitted payments, with parent_event links', async () => {
      const pending = sandbox.createPayment({ mandate: 'MD0001' });
      const submitted = sandbox.createPayment({ mandate: 'MD0001' });
      sandbox.setPaymentStatus(submitted.id, 'submitted');
      const other = sandbox.createPayment({ mandate: 'MD0002' });
      const [mandateEvent, ...cascade] = sandbox.cancelMandate('MD0001');
      expect(mandateEvent).toMatchObject({ resource_type: 'mandates', action: 'cancelled', links: { mandate: 'MD0001' }, details: { cause: 'bank_account_closed' } });
      expect(cascade).toHaveLength(1);
      expect(cascade[0]).toMatchObject({ action: 'cancelled', links: { payment: pending.id, parent_event: mandateEvent!.id }, details: { cause: 'mandate_cancelled' } });
      expect(found(await provider.fetchPayment('a', pending.id)).status).toBe('canceled');
      expect(found(await provider.fetchPayment('a', submitted.id)).providerStatus).toBe('submitted');
      expect(found(await provider.fetchPayment('a', other.id)).providerStatus).toBe('pending_submission');
      expect(sandbox.expireMandate('MD0002')[0]).toMatchObject({ action: 'expired', details: { cause: 'mandate_expired' } });
    });

    it('pays out confirmed payments and records non-payment events', async () => {
      const confirmed = sandbox.createPayment();
      sandbox.setPaymentStatus(confirmed.id, 'confirmed');
      const { payoutId, events } = sandbox.payOut([confirmed.id]);
      expect(events.map((event) => [event.resource_type, event.action])).toEqual([['payouts', 'paid'], ['payments', 'paid_out']]);
      expect(events[1]!.links).toMatchObject({ payment: confirmed.id, payout: payoutId, parent_event: events[0]!.id });

      const subscription = sandbox.createEvent({ resourceType: 'subscriptions', action: 'created' });
      expect(subscription.links.subscription).toMatch(/^SB/);
      const billing = sandbox.createEvent({ resourceType: 'billing_requests', action: 'fulfilled', details: { origin: 'payer' } });
      expect(billing.links.billing_request).toMatch(/^BRQ/);
      expect(billing.details.origin).toBe('payer');
    });

    it('is scriptable over its JSON control API', async () => {
      const control = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${sandbox.url}/__sandbox${path}`, {
          method,
          headers: { 'content-type': 'application/json' },
          ...(body !== undefined && { body: JSON.stringify(body) }),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      const created = await control('POST', '/payments', { id: 'PMCONTROL0001', amount: 777, currency: 'EUR' });
      expect(created.status).toBe(201);
      expect(created.body.payments).toMatchObject({ id: 'PMCONTROL0001', amount: 777, status: 'pending_submission' });
      expect((await control('POST', '/payments', { id: 'PMCONTROL0001' })).status).toBe(409);
      expect((await control('POST', '/payments', { amount: 'lots' })).status).toBe(400);

      const moved = await control('POST', '/payments/PMCONTROL0001/status', { status: 'failed', cause: 'refer_to_payer', willAttemptRetry: true });
      expect(moved.body.events).toMatchObject({ action: 'failed', details: { cause: 'refer_to_payer', will_attempt_retry: true } });
      expect((await control('POST', '/payments/PMNOPE/status', { status: 'failed' })).status).toBe(404);

      await control('PUT', '/faults', { errorNext: 1 });
      expect((await providerError(provider.fetchPayment('a', 'PMCONTROL0001'))).code).toBe('unavailable');
      expect(found(await provider.fetchPayment('a', 'PMCONTROL0001')).providerStatus).toBe('failed');
      expect((await control('GET', '/fetch-counts')).body.counts).toEqual({ PMCONTROL0001: 2 });

      await control('POST', '/payments/PMCONTROL0001/timeline', { steps: [{ afterMs: 20, status: 'pending_submission' }] });
      await waitFor(async () => {
        const { payments } = (await control('GET', '/payments/PMCONTROL0001')).body as { payments: SandboxPayment };
        return payments.status === 'pending_submission' ? true : undefined;
      }, 'the timeline step');

      const event = await control('POST', '/events', { resourceType: 'mandates', action: 'expired', links: { mandate: 'MD9' } });
      expect(event.status).toBe(201);
      const state = await control('GET', '/state');
      expect((state.body.events as GoCardlessEvent[]).map((e) => e.action)).toEqual(['created', 'failed', 'resubmission_requested', 'expired']);
      expect((await control('DELETE', '/faults')).body.faults).toMatchObject({ errorNext: 0, latencyMs: 0, down: false });
      expect((await control('POST', '/reset')).body.payments).toEqual([]);
      expect((await control('GET', '/nothing')).status).toBe(404);
    });
  });
});

// ---------------------------------------------------------------------------

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** A real HTTP receiver that answers with whatever `respond` says. */
async function startReceiver(respond: (request: Received, index: number) => number | { status: number; headers?: Record<string, string> }) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
      received.push(request);
      const answer = respond(request, received.length - 1);
      const { status, headers = {} } = typeof answer === 'number' ? { status: answer } : answer;
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/gocardless`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function fakeEvents(count: number): GoCardlessEvent[] {
  const base = Date.parse('2024-03-22T17:05:25.000Z');
  return Array.from({ length: count }, (_, i) => ({
    id: `EV${String(i).padStart(12, '0')}`,
    created_at: new Date(base + i * 1000).toISOString(),
    resource_type: 'payments',
    action: 'confirmed',
    links: { payment: `PM${String(i).padStart(12, '0')}` },
    details: { origin: 'gocardless', cause: 'payment_confirmed' },
    metadata: {},
  }));
}

describe('GoCardless webhook sender', () => {
  const secret = 'endpoint-secret-1';
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  it('batches, signs and sends GoCardless\'s headers and envelope', async () => {
    receiver = await startReceiver(() => 204);
    const events = fakeEvents(7);
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events, batchSize: 3, retry: false });
    expect(report.delivered).toBe(true);
    expect(report.batches.map((batch) => batch.eventIds.length)).toEqual([3, 3, 1]);
    expect(report.batches.map((batch) => batch.status)).toEqual([204, 204, 204]);
    expect(receiver.received).toHaveLength(3);

    const seen: string[] = [];
    const webhookIds = new Set<string>();
    for (const request of receiver.received) {
      expect(request.headers['user-agent']).toBe('gocardless-webhook-service/1.2');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers.origin).toBe('https://api-sandbox.gocardless.com');
      expect(verifyGoCardlessSignature(request.body, request.headers['webhook-signature'] as string, [secret])).toBe('valid');
      const parsed = parseGoCardlessBatch(request.body);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) continue;
      expect(parsed.webhookId).toMatch(/^WB[0-9A-F]{12}$/);
      webhookIds.add(parsed.webhookId!);
      seen.push(...parsed.events.map((event) => event.id));
    }
    expect(webhookIds.size).toBe(3);
    expect(seen).toEqual(events.map((event) => event.id));
  });

  it('caps batches at 250 events by default', async () => {
    receiver = await startReceiver(() => 200);
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(251), retry: false });
    expect(report.batches.map((batch) => batch.eventIds.length)).toEqual([250, 1]);
    await expect(sendGoCardlessWebhooks({ url: receiver.url, secret, events: [], batchSize: 251 })).rejects.toThrow(RangeError);
  });

  it('retries non-2xx on the scaled schedule until it succeeds', async () => {
    receiver = await startReceiver((_request, index) => (index < 2 ? 500 : 204));
    const retry = { delaysMs: [60_000, 120_000, 600_000], scale: 0.001 };
    expect(webhookRetryDelays(retry)).toEqual([60, 120, 600]);
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(2), retry });
    const [batch] = report.batches;
    expect(batch!.attempts.map((attempt) => attempt.status)).toEqual([500, 500, 204]);
    expect(batch!.delivered).toBe(true);
    // The same webhook (id, body, signature) is retried.
    expect(new Set(receiver.received.map((request) => request.body.toString()))).toHaveProperty('size', 1);
    const [first, second, third] = receiver.received.map((request) => request.at);
    expect(second! - first!).toBeGreaterThanOrEqual(55);
    expect(third! - second!).toBeGreaterThanOrEqual(115);
  });

  it('gives up after the last retry, and counts redirects and timeouts as failures', async () => {
    receiver = await startReceiver((_request, index) => (index === 0 ? { status: 302, headers: { location: '/elsewhere' } } : 503));
    const report = await sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(1), retry: { delaysMs: [5, 5], scale: 1 } });
    expect(report.delivered).toBe(false);
    expect(report.batches[0]!.attempts.map((attempt) => attempt.status)).toEqual([302, 503, 503]);
    expect(receiver.received).toHaveLength(3);

    const silent = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
      const timedOut = await sendGoCardlessWebhooks({ url, secret, events: fakeEvents(1), retry: false, timeoutMs: 100 });
      expect(timedOut.batches[0]!.attempts[0]).toMatchObject({ status: null, error: 'no response within 100 ms' });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('reorders and duplicates deterministically with a seeded random', async () => {
    receiver = await startReceiver(() => 204);
    const events = fakeEvents(20);
    const run = () =>
      sendGoCardlessWebhooks({
        url: receiver!.url,
        secret,
        events,
        batchSize: 5,
        order: 'shuffle',
        duplicateRate: 0.3,
        duplicateEventIds: [events[0]!.id],
        random: seededRandom(42),
        retry: false,
      });
    const first = await run();
    const second = await run();
    const ids = (report: typeof first) => report.batches.map((batch) => batch.eventIds);
    expect(ids(first)).toEqual(ids(second));

    const originals = first.batches.filter((batch) => !batch.duplicate).flatMap((batch) => batch.eventIds);
    expect([...originals].sort()).toEqual(events.map((event) => event.id));
    expect(originals).not.toEqual(events.map((event) => event.id));
    const duplicates = first.batches.filter((batch) => batch.duplicate).flatMap((batch) => batch.eventIds);
    expect(duplicates).toContain(events[0]!.id);
    expect(duplicates.length).toBeGreaterThan(1);
    expect(new Set(duplicates).size).toBe(duplicates.length);
  });

  it('can sign wrongly, omit the signature or tamper with the body', async () => {
    receiver = await startReceiver(() => 498);
    const events = fakeEvents(1);
    await sendGoCardlessWebhooks({ url: receiver.url, secret, events, retry: false, signWith: 'another-secret' });
    await sendGoCardlessWebhooks({ url: receiver.url, secret, events, retry: false, omitSignature: true });
    await sendGoCardlessWebhooks({ url: receiver.url, secret, events, retry: false, tamperBody: (body) => body.replace('confirmed', 'failed') });
    const [wrong, missing, tampered] = receiver.received;
    expect(verifyGoCardlessSignature(wrong!.body, wrong!.headers['webhook-signature'] as string, [secret])).toBe('invalid');
    expect(verifyGoCardlessSignature(missing!.body, missing!.headers['webhook-signature'] as string | undefined, [secret])).toBe('absent');
    expect(tampered!.body.toString()).toContain('"failed"');
    expect(verifyGoCardlessSignature(tampered!.body, tampered!.headers['webhook-signature'] as string, [secret])).toBe('invalid');
  });

  it('stops retrying when aborted', async () => {
    receiver = await startReceiver(() => 500);
    const controller = new AbortController();
    const sending = sendGoCardlessWebhooks({ url: receiver.url, secret, events: fakeEvents(1), retry: { delaysMs: [60_000], scale: 1 }, signal: controller.signal });
    await waitFor(() => (receiver!.received.length === 1 ? true : undefined), 'the first attempt');
    controller.abort();
    const report = await sending;
    expect(report.delivered).toBe(false);
    expect(report.batches[0]!.attempts).toHaveLength(1);
  });

  describe('from the sandbox', () => {
    let sandbox: GoCardlessSandbox;
    beforeEach(async () => {
      sandbox = await startGoCardlessSandbox({ webhookSecret: secret });
    });
    afterEach(async () => {
      await sandbox.close();
    });

    it('pushes new events to a configured endpoint, batched, signed and retried', async () => {
      receiver = await startReceiver((_request, index) => (index === 0 ? 500 : 200));
      sandbox.setWebhookEndpoint({ url: receiver.url, debounceMs: 20, batchSize: 2, retry: { delaysMs: [10, 10], scale: 1 } });
      const payment = sandbox.createPayment();
      sandbox.setPaymentStatus(payment.id, 'submitted');
      sandbox.setPaymentStatus(payment.id, 'confirmed');
      await waitFor(() => (sandbox.state.webhookDeliveries.length === 2 && sandbox.state.webhookDeliveries.every((batch) => batch.delivered) ? true : undefined), 'two delivered batches');
      await sandbox.webhooksIdle();

      const delivered = new Set<string>();
      for (const request of receiver.received) {
        expect(verifyGoCardlessSignature(request.body, request.headers['webhook-signature'] as string, [secret])).toBe('valid');
        const parsed = parseGoCardlessBatch(request.body);
        if (parsed.ok) parsed.events.forEach((event) => delivered.add(event.id));
      }
      expect([...delivered].sort()).toEqual(sandbox.state.events.map((event) => event.id).sort());
      expect(sandbox.state.webhookDeliveries[0]!.attempts.map((attempt) => attempt.status)).toEqual([500, 200]);

      // Later events go out in a later webhook; earlier ones are not resent.
      const before = receiver.received.length;
      sandbox.setPaymentStatus(payment.id, 'paid_out');
      await waitFor(() => (receiver!.received.length > before ? true : undefined), 'the next webhook');
      await sandbox.webhooksIdle();
      const last = parseGoCardlessBatch(receiver.received.at(-1)!.body);
      expect(last.ok && last.events.map((event) => event.action)).toEqual(['paid_out']);
    });

    it('delivers on request through the control API', async () => {
      receiver = await startReceiver(() => 204);
      const payment = sandbox.createPayment();
      sandbox.setPaymentStatus(payment.id, 'failed');
      const response = await fetch(`${sandbox.url}/__sandbox/webhooks/deliver`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: receiver.url, order: 'reverse' }),
      });
      expect(response.status).toBe(200);
      const report = (await response.json()) as { delivered: boolean; batches: Array<{ eventIds: string[] }> };
      expect(report.delivered).toBe(true);
      expect(report.batches[0]!.eventIds).toEqual(sandbox.state.events.map((event) => event.id).reverse());

      // Nothing new: an empty delivery sends nothing.
      const again = await sandbox.deliverWebhooks({ url: receiver.url });
      expect(again.batches).toHaveLength(0);
      // Explicit ids are sent again (a GoCardless "retry webhook").
      const resent = await sandbox.deliverWebhooks({ url: receiver.url, eventIds: [sandbox.state.events[0]!.id] });
      expect(resent.batches[0]!.status).toBe(204);
      expect(receiver.received).toHaveLength(2);
    });
  });
});
