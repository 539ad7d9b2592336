import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { signGoCardlessBody, verifyGoCardlessSignature } from '../../src/providers/gocardless/signature.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// gocardless-nodejs's own vector (src/webhooks.test.ts, src/fixtures/webhook_body.json), minified
// to the exact bytes it was signed over; see docs/providers.md#test-vectors.
const fixtureDir = path.join(repoRoot, 'tests/fixtures/gocardless');

interface Vector {
  secret: string;
  bodyFile: string;
  bodyBytes: number;
  webhookSignature: string;
}

function loadVector(dir: string): { vector: Vector; body: Buffer } {
  const vector = JSON.parse(readFileSync(path.join(dir, 'vector.json'), 'utf8')) as Vector;
  return { vector, body: readFileSync(path.join(dir, vector.bodyFile)) };
}

const { vector, body } = loadVector(fixtureDir);

describe('GoCardless webhook signature: the official vector (gocardless-nodejs webhooks.test.ts)', () => {
  it('is the 550-byte minified body the vector was computed over', () => {
    expect(body.length).toBe(vector.bodyBytes);
    expect(body.length).toBe(550);
    expect(vector.webhookSignature).toBe('2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e');
  });

  it('signs the raw bytes to the published signature', () => {
    expect(signGoCardlessBody(body, vector.secret)).toBe(vector.webhookSignature);
    expect(signGoCardlessBody(body.toString('utf8'), vector.secret)).toBe(vector.webhookSignature);
    expect(signGoCardlessBody(new Uint8Array(body), vector.secret)).toBe(vector.webhookSignature);
  });

  it('accepts the published signature for bytes and for the same text', () => {
    expect(verifyGoCardlessSignature(body, vector.webhookSignature, [vector.secret])).toBe('valid');
    expect(verifyGoCardlessSignature(body.toString('utf8'), vector.webhookSignature, [vector.secret])).toBe('valid');
  });

  it('accepts upper-case hex and surrounding whitespace, as gc-node does', () => {
    expect(verifyGoCardlessSignature(body, vector.webhookSignature.toUpperCase(), [vector.secret])).toBe('valid');
    expect(verifyGoCardlessSignature(body, ` ${vector.webhookSignature}\t`, [vector.secret])).toBe('valid');
  });
});

describe('GoCardless webhook signature: failures', () => {
  it('reports a missing or empty header as absent, not invalid', () => {
    expect(verifyGoCardlessSignature(body, undefined, [vector.secret])).toBe('absent');
    expect(verifyGoCardlessSignature(body, null, [vector.secret])).toBe('absent');
    expect(verifyGoCardlessSignature(body, '', [vector.secret])).toBe('absent');
    expect(verifyGoCardlessSignature(body, '   ', [vector.secret])).toBe('absent');
  });

  it('rejects the wrong secret', () => {
    expect(verifyGoCardlessSignature(body, vector.webhookSignature, ['ED7D658C-D8EB-4941-948B-3973214F2D4A'])).toBe('invalid');
    // The secret is used as a string, not decoded: the lower-case spelling is another key.
    expect(verifyGoCardlessSignature(body, vector.webhookSignature, [vector.secret.toLowerCase()])).toBe('invalid');
  });

  it('rejects a body changed by one byte, or re-serialised JSON', () => {
    const tampered = Buffer.from(body);
    tampered[100] = tampered[100]! ^ 0x01;
    expect(tampered.equals(body)).toBe(false);
    expect(verifyGoCardlessSignature(tampered, vector.webhookSignature, [vector.secret])).toBe('invalid');

    const pretty = JSON.stringify(JSON.parse(body.toString('utf8')), null, 2);
    expect(verifyGoCardlessSignature(pretty, vector.webhookSignature, [vector.secret])).toBe('invalid');
    expect(verifyGoCardlessSignature(`${body.toString('utf8')}\n`, vector.webhookSignature, [vector.secret])).toBe('invalid');
  });

  it('rejects a signature with one hex digit changed', () => {
    const last = vector.webhookSignature.at(-1) === '0' ? '1' : '0';
    const flipped = vector.webhookSignature.slice(0, -1) + last;
    expect(verifyGoCardlessSignature(body, flipped, [vector.secret])).toBe('invalid');
  });

  it('rejects malformed headers without throwing: truncated, padded, non-hex, prefixed', () => {
    const signature = vector.webhookSignature;
    for (const header of [
      signature.slice(0, 62),
      `${signature}00`,
      // Buffer.from(hex) stops at the first bad character or odd digit, so these would
      // decode to exactly the right 32 bytes if the header's shape were not checked.
      `${signature}zz`,
      `${signature}0`,
      signature.slice(0, 32),
      `${signature.slice(0, 63)}z`,
      `sha256=${signature}`,
      'not a signature',
    ]) {
      expect(verifyGoCardlessSignature(body, header, [vector.secret]), header).toBe('invalid');
    }
  });

  it('never accepts with no secrets or only empty secrets', () => {
    expect(verifyGoCardlessSignature(body, vector.webhookSignature, [])).toBe('invalid');
    const signedWithEmptyKey = signGoCardlessBody(body, '');
    expect(verifyGoCardlessSignature(body, signedWithEmptyKey, [''])).toBe('invalid');
  });
});

describe('GoCardless webhook signature: secret rotation', () => {
  const oldSecret = 'old-endpoint-secret';
  const newSecret = 'new-endpoint-secret';
  const payload = '{"events":[],"meta":{"webhook_id":"WB123"}}';

  it('accepts a body signed with any configured secret, in any position', () => {
    const byOld = signGoCardlessBody(payload, oldSecret);
    const byNew = signGoCardlessBody(payload, newSecret);
    expect(byOld).not.toBe(byNew);
    expect(verifyGoCardlessSignature(payload, byOld, [newSecret, oldSecret])).toBe('valid');
    expect(verifyGoCardlessSignature(payload, byNew, [newSecret, oldSecret])).toBe('valid');
    expect(verifyGoCardlessSignature(payload, byOld, ['', oldSecret])).toBe('valid');
  });

  it('rejects a body signed with a secret that was rotated out', () => {
    const byOld = signGoCardlessBody(payload, oldSecret);
    expect(verifyGoCardlessSignature(payload, byOld, [newSecret])).toBe('invalid');
  });

  it('signs as lowercase hex of HMAC-SHA256', () => {
    expect(signGoCardlessBody(payload, newSecret)).toMatch(/^[0-9a-f]{64}$/);
  });
});
