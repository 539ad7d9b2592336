/**
 * The fake Mollie API under /v2: authentication, scripted faults, latency and the request
 * log in one middleware, then payments, refunds and chargebacks in Mollie's shapes.
 */
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { MollieFaults } from './faults.js';
import { SHARED_PROFILE_ID, type MollieStore } from './state.js';
import { halResponse, listBody, mollieError, pageOf, renderChargeback, renderPayment, renderRefund } from './wire.js';

export function mollieApiRoutes(store: MollieStore, faults: MollieFaults, site: { baseUrl: string }) {
  const { state, paymentOf } = store;
  const { sleep, takeFault } = faults;
  const app = new Hono<{ Bindings: HttpBindings }>();
  const PAYMENT_PATH = /^\/v2\/payments\/([^/]+)$/;

  app.use('/v2/*', async (c, next) => {
    const path = c.req.path;
    const paymentId = c.req.method === 'GET' ? PAYMENT_PATH.exec(path)?.[1] : undefined;
    const token = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
    if (paymentId) {
      state.requestCounts.set(paymentId, (state.requestCounts.get(paymentId) ?? 0) + 1);
      const tokens = state.fetchedBy.get(paymentId) ?? [];
      tokens.push(token);
      state.fetchedBy.set(paymentId, tokens);
    }

    await sleep(state.latencyMs + (paymentId ? (state.paymentLatencyMs.get(paymentId) ?? 0) : 0));

    if (state.down === 'reset') {
      // No answer at all: the client sees a dropped connection.
      c.env.incoming.socket.destroy();
      return new Response(null, { status: 503 });
    }
    let response: Response | null = null;
    if (state.down === 'error') response = mollieError(503);
    if (!response) {
      const auth = c.req.header('authorization') ?? '';
      const key = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
      if (!key || !store.acceptsKey(key)) response = mollieError(401);
    }
    if (!response) {
      const fault = takeFault(paymentId);
      if (fault) {
        const headers: Record<string, string> = fault.retryAfterS !== undefined ? { 'Retry-After': String(fault.retryAfterS) } : {};
        response = mollieError(fault.status, undefined, undefined, headers);
      }
    }
    const record = (status: number) => {
      state.requests.push({ method: c.req.method, path, status, at: new Date(), token });
      if (state.requests.length > 1000) state.requests.splice(0, state.requests.length - 1000);
    };
    if (response) {
      record(response.status);
      return response;
    }
    await next();
    record(c.res.status);
  });

  const bearerOf = (c: Context) => /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
  const testmodeOf = (c: Context) => c.req.query('testmode') === 'true';
  /** The payment when the bearer may see it (Mollie answers 404 for another merchant's payment). */
  const visiblePayment = (c: Context, id: string) => {
    const payment = state.payments.get(id);
    return payment && store.visibleTo(payment, bearerOf(c), testmodeOf(c)) ? payment : undefined;
  };
  const visiblePayments = (c: Context) => {
    const profileId = c.req.query('profileId');
    return [...state.payments.values()].filter(
      (payment) => store.visibleTo(payment, bearerOf(c), testmodeOf(c)) && (profileId === undefined || payment.profileId === profileId || payment.profileId === SHARED_PROFILE_ID),
    );
  };

  app.get('/v2/payments', (c) => {
    const query = new URL(c.req.url).searchParams;
    const page = pageOf(visiblePayments(c), query);
    if (!page.ok) return page.response;
    const now = Date.now();
    return halResponse(
      200,
      listBody('payments', page.items.map((p) => renderPayment(p, site.baseUrl, now)), page.next, site.baseUrl, '/v2/payments', query),
    );
  });

  app.get('/v2/payments/:id', (c) => {
    const payment = visiblePayment(c, c.req.param('id'));
    if (!payment) return mollieError(404, `No payment exists with token ${c.req.param('id')}.`);
    const body = renderPayment(payment, site.baseUrl);
    // `?embed=refunds,chargebacks`: Mollie adds the sub-resources under `_embedded`.
    const embed = new Set((c.req.query('embed') ?? '').split(',').filter(Boolean));
    const embedded: Record<string, unknown[]> = {};
    if (embed.has('refunds')) embedded.refunds = payment.refunds.map((r) => renderRefund(r, payment, site.baseUrl));
    if (embed.has('chargebacks')) embedded.chargebacks = payment.chargebacks.map((cb) => renderChargeback(cb, site.baseUrl));
    return halResponse(200, Object.keys(embedded).length > 0 ? { ...body, _embedded: embedded } : body);
  });

  // One payment's refunds and chargebacks, as lists in Mollie's shape (cursor with `from`).
  const subResourceList = (key: 'refunds' | 'chargebacks') => (c: Context) => {
    const payment = visiblePayment(c, c.req.param('id')!);
    if (!payment) return mollieError(404, `No payment exists with token ${c.req.param('id')}.`);
    const query = new URL(c.req.url).searchParams;
    const page = key === 'refunds' ? pageOf(payment.refunds, query) : pageOf(payment.chargebacks, query);
    if (!page.ok) return page.response;
    const items = page.items.map((item) => ('status' in item ? renderRefund(item, payment, site.baseUrl) : renderChargeback(item, site.baseUrl)));
    return halResponse(200, listBody(key, items, page.next, site.baseUrl, `/v2/payments/${payment.id}/${key}`, query));
  };
  app.get('/v2/payments/:id/refunds', subResourceList('refunds'));
  app.get('/v2/payments/:id/chargebacks', subResourceList('chargebacks'));

  app.get('/v2/refunds', (c) => {
    const query = new URL(c.req.url).searchParams;
    const all = visiblePayments(c).flatMap((p) => p.refunds);
    const page = pageOf(all, query);
    if (!page.ok) return page.response;
    const items = page.items.map((r) => renderRefund(r, paymentOf(r.paymentId), site.baseUrl));
    return halResponse(200, listBody('refunds', items, page.next, site.baseUrl, '/v2/refunds', query));
  });

  app.get('/v2/chargebacks', (c) => {
    const query = new URL(c.req.url).searchParams;
    const all = visiblePayments(c).flatMap((p) => p.chargebacks);
    const page = pageOf(all, query);
    if (!page.ok) return page.response;
    const items = page.items.map((cb) => renderChargeback(cb, site.baseUrl));
    return halResponse(200, listBody('chargebacks', items, page.next, site.baseUrl, '/v2/chargebacks', query));
  });

  return app;
}
