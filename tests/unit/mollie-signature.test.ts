import { SignatureValidator } from 'mollie-api-typescript';
import { describe, expect, it } from 'vitest';
import { signMollieBody, verifyMollieSignature } from '../../src/providers/mollie/signature.js';

const SECRET = 'whsec_mollie_current';
const OLD_SECRET = 'whsec_mollie_previous';
const BODY = '{"resource":"event","id":"event_GvJ8WHrp5isUdRub9CJyH","type":"payment.paid","entityId":"tr_5B8cwPMGnU6qLbRvo7qEZo"}';

describe('signMollieBody', () => {
  it('matches a fixed HMAC-SHA256 vector (openssl dgst -sha256 -hmac k <<< "x")', () => {
    expect(signMollieBody('x', 'k')).toBe('c38edc8815c8489f64738978f44008f8596345545f0baa68ef6fcf5c53e57189');
  });

  it("agrees with Mollie's own SDK, including for non-ASCII bodies and secrets", async () => {
    for (const [body, secret] of [
      [BODY, SECRET],
      ['{"description":"Café — €10"}', 'sécret'],
    ] as const) {
      expect(signMollieBody(body, secret)).toBe(await SignatureValidator.createSignature(body, secret));
    }
  });

  it('signs the same bytes the same way whether given as a string or bytes', () => {
    expect(signMollieBody(new TextEncoder().encode(BODY), SECRET)).toBe(signMollieBody(BODY, SECRET));
  });
});

describe('verifyMollieSignature', () => {
  const good = signMollieBody(BODY, SECRET);

  it('accepts a good signature over the raw bytes', () => {
    expect(verifyMollieSignature(new TextEncoder().encode(BODY), good, [SECRET])).toBe('valid');
    expect(verifyMollieSignature(BODY, good, [SECRET])).toBe('valid');
  });

  it('rejects a signature over a different body (one byte changed)', () => {
    expect(verifyMollieSignature(BODY.replace('paid', 'pAid'), good, [SECRET])).toBe('invalid');
  });

  it('rejects a signature made with another secret', () => {
    expect(verifyMollieSignature(BODY, signMollieBody(BODY, 'someone-else'), [SECRET])).toBe('invalid');
  });

  it('accepts either secret during rotation, in any order', () => {
    const signedWithOld = signMollieBody(BODY, OLD_SECRET);
    expect(verifyMollieSignature(BODY, signedWithOld, [SECRET, OLD_SECRET])).toBe('valid');
    expect(verifyMollieSignature(BODY, signedWithOld, [OLD_SECRET, SECRET])).toBe('valid');
    expect(verifyMollieSignature(BODY, signedWithOld, [SECRET])).toBe('invalid');
  });

  it('accepts the sha256= prefix', () => {
    expect(verifyMollieSignature(BODY, `sha256=${good}`, [SECRET])).toBe('valid');
  });

  it('rejects an upper-cased hex digest, like the SDKs do', () => {
    expect(verifyMollieSignature(BODY, good.toUpperCase(), [SECRET])).toBe('invalid');
    expect(verifyMollieSignature(BODY, `sha256=${good.toUpperCase()}`, [SECRET])).toBe('invalid');
  });

  it('treats a missing or empty header as absent (a classic webhook)', () => {
    expect(verifyMollieSignature(BODY, undefined, [SECRET])).toBe('absent');
    expect(verifyMollieSignature(BODY, null, [SECRET])).toBe('absent');
    expect(verifyMollieSignature(BODY, '', [SECRET])).toBe('absent');
  });

  it('rejects malformed headers of any length without throwing', () => {
    for (const header of ['sha256=', 'abc', good.slice(0, 63), `${good}0`, `${good},${good}`, 'ü'.repeat(32)]) {
      expect(verifyMollieSignature(BODY, header, [SECRET])).toBe('invalid');
    }
  });

  it('never accepts anything when no usable secret is configured', () => {
    expect(verifyMollieSignature(BODY, good, [])).toBe('invalid');
    // An empty secret from a blank config value must not become a key anyone can use.
    expect(verifyMollieSignature(BODY, signMollieBody(BODY, ''), [''])).toBe('invalid');
  });
});
