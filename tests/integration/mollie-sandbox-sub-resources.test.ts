/**
 * The Mollie sandbox serves a payment's refunds and chargebacks as Mollie does: the
 * per-payment lists, and `?embed=refunds,chargebacks` on the payment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';

let sandbox: MollieSandbox;
const get = async (path: string) => {
  const res = await fetch(`${sandbox.url}${path}`, { headers: { authorization: `Bearer ${SANDBOX_DEFAULT_API_KEY}` } });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Mollie's JSON, read loosely
  const body = (await res.json()) as Record<string, any>;
  return { status: res.status, type: res.headers.get('content-type'), body };
};

beforeAll(async () => {
  sandbox = await startMollieSandbox({ port: 0 });
});

afterAll(async () => {
  await sandbox?.close();
});

describe('Mollie sandbox sub-resources', () => {
  it('lists a payment\'s refunds and chargebacks, and embeds them on request', async () => {
    const payment = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '30.00' } });
    const refund = sandbox.addRefund(payment.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'refunded' });
    const chargeback = sandbox.addChargeback(payment.id, { amount: { currency: 'EUR', value: '5.00' } });

    const refunds = await get(`/v2/payments/${payment.id}/refunds`);
    expect(refunds.status).toBe(200);
    expect(refunds.type).toMatch(/application\/hal\+json/);
    expect(refunds.body).toMatchObject({ count: 1, _embedded: { refunds: [{ resource: 'refund', id: refund.id, paymentId: payment.id, status: 'refunded', amount: { currency: 'EUR', value: '10.00' } }] } });
    expect(refunds.body._links.self.href).toBe(`${sandbox.url}/v2/payments/${payment.id}/refunds`);

    const chargebacks = await get(`/v2/payments/${payment.id}/chargebacks`);
    expect(chargebacks.body).toMatchObject({ count: 1, _embedded: { chargebacks: [{ resource: 'chargeback', id: chargeback.id, paymentId: payment.id, reversedAt: null }] } });

    const embedded = await get(`/v2/payments/${payment.id}?embed=refunds,chargebacks`);
    expect(embedded.body._embedded.refunds.map((r: { id: string }) => r.id)).toEqual([refund.id]);
    expect(embedded.body._embedded.chargebacks.map((c: { id: string }) => c.id)).toEqual([chargeback.id]);
    expect((await get(`/v2/payments/${payment.id}`)).body._embedded).toBeUndefined();
    expect((await get(`/v2/payments/${payment.id}?embed=refunds`)).body._embedded.chargebacks).toBeUndefined();

    expect((await get('/v2/payments/tr_nope/refunds')).status).toBe(404);
    expect((await get(`/v2/payments/${payment.id}/refunds?limit=0`)).status).toBe(400);
  });
});
