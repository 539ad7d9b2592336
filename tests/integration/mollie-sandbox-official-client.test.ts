/**
 * The Mollie sandbox read by a second official client, `@mollie/api-client` (the gateway
 * itself uses `mollie-api-typescript`): if the sandbox's answers drifted from Mollie's
 * shapes, this client's parsing (HAL lists, embeds, errors) is where it would show. That
 * client speaks only https and trusts only its own bundle of public CAs, so the sandbox is
 * put behind a TLS terminator with a certificate made for the test (openssl), and this
 * test process (and only it: a file runs in a process of its own) skips verification
 * while it runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createMollieClient, MollieApiError, PaymentEmbed, type MollieClient } from '@mollie/api-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_DEFAULT_API_KEY, startMollieSandbox, type MollieSandbox } from '../../src/sandbox/mollie-api.js';

let sandbox: MollieSandbox;
let terminator: Server;
let endpoint: string;
let tlsVerification: string | undefined;
let mollie: MollieClient;

/** An https server on 127.0.0.1 that forwards every request to the sandbox as it is. */
async function startTlsTerminator(target: string): Promise<{ server: Server; url: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gw-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = readFileSync(path.join(dir, 'key.pem'), 'utf8');
    const cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const upstream = new URL(target);
    const server = createServer({ key, cert }, (req, res) => {
      const forwarded = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forwarded.on('error', () => res.writeHead(502).end());
      req.pipe(forwarded);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const client = (apiKey: string) => createMollieClient({ apiKey, apiEndpoint: `${endpoint}/v2/` });

beforeAll(async () => {
  sandbox = await startMollieSandbox({ port: 0 });
  const tls = await startTlsTerminator(sandbox.url);
  terminator = tls.server;
  endpoint = tls.url;
  tlsVerification = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  mollie = client(SANDBOX_DEFAULT_API_KEY);
});

afterAll(async () => {
  if (tlsVerification === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  else process.env.NODE_TLS_REJECT_UNAUTHORIZED = tlsVerification;
  await new Promise((resolve) => terminator?.close(resolve));
  await sandbox?.close();
});

describe('the Mollie sandbox through @mollie/api-client', () => {
  it('reads a payment with its refunds and chargebacks embedded, and their own lists', async () => {
    const created = sandbox.createPayment({ status: 'paid', amount: { currency: 'EUR', value: '30.00' }, method: 'ideal', metadata: { order: 'A-1' } });
    const refund = sandbox.addRefund(created.id, { amount: { currency: 'EUR', value: '10.00' }, status: 'refunded' });
    const chargeback = sandbox.addChargeback(created.id, { amount: { currency: 'EUR', value: '5.00' } });

    const payment = await mollie.payments.get(created.id, { embed: [PaymentEmbed.refunds, PaymentEmbed.chargebacks] });
    expect(payment).toMatchObject({ resource: 'payment', id: created.id, status: 'paid', amount: { currency: 'EUR', value: '30.00' }, method: 'ideal', metadata: { order: 'A-1' } });
    expect(payment._embedded?.refunds?.map((r) => r.id)).toEqual([refund.id]);
    expect(payment._embedded?.chargebacks?.map((c) => c.id)).toEqual([chargeback.id]);

    const refunds = await mollie.paymentRefunds.page({ paymentId: created.id });
    expect(refunds.map((r) => ({ id: r.id, status: r.status, amount: r.amount, paymentId: r.paymentId }))).toEqual([
      { id: refund.id, status: 'refunded', amount: { currency: 'EUR', value: '10.00' }, paymentId: created.id },
    ]);
    const chargebacks = await mollie.paymentChargebacks.page({ paymentId: created.id });
    expect(chargebacks.map((c) => ({ id: c.id, amount: c.amount, paymentId: c.paymentId }))).toEqual([{ id: chargeback.id, amount: { currency: 'EUR', value: '5.00' }, paymentId: created.id }]);
  });

  it('pages the payments list and iterates past the first page', async () => {
    const ids = Array.from({ length: 7 }, () => sandbox.createPayment({ status: 'open' }).id);
    const first = await mollie.payments.page({ limit: 3 });
    expect(first).toHaveLength(3);
    expect(first.nextPageCursor).toBeTruthy();
    const seen: string[] = [];
    for await (const payment of mollie.payments.iterate()) seen.push(payment.id);
    for (const id of ids) expect(seen).toContain(id);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('answers errors in Mollie\'s shape: an unknown payment is a 404 MollieApiError, a wrong key a 401', async () => {
    const missing = await mollie.payments.get('tr_doesNotExist1').catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(MollieApiError);
    expect((missing as MollieApiError).statusCode).toBe(404);
    expect((missing as MollieApiError).message).toMatch(/tr_doesNotExist1|not found/i);

    const refused = await client('test_notTheSandboxKeyAtAll000000000').payments.page({ limit: 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MollieApiError);
    expect((refused as MollieApiError).statusCode).toBe(401);
  });
});
