/**
 * The GoCardless sandbox's scripting surface (status moves, timelines, events, refunds,
 * mandates, payouts, faults, the control API), observed through the client on a real port.
 */
import { describe, expect, it, vi } from 'vitest';
import type { GoCardlessProvider } from '../../src/providers/gocardless/client.js';
import type { GoCardlessEvent } from '../../src/providers/gocardless/webhook.js';
import type { GoCardlessSandbox, SandboxPayment } from '../../src/sandbox/gocardless-api.js';
import { allPages, found, providerError, useSandboxWithClient, waitFor } from '../helpers/gocardless-client.js';

describe('GoCardless sandbox scripting', () => {
  let sandbox: GoCardlessSandbox;
  let provider: GoCardlessProvider;
  useSandboxWithClient((started, client) => {
    sandbox = started;
    provider = client;
  });

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
