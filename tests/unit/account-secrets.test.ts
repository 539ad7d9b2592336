import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAccountSecrets, decodeAccountKey, SecretsError } from '../../src/accounts/secrets.js';
import { ConfigError, parseEnv } from '../../src/config/env.js';

const newKey = () => randomBytes(32).toString('base64');
const CONTEXT = 'mollie/shop-1/credentials';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('account secrets', () => {
  it('round-trips a secret, names its key, and never holds the plaintext in the ciphertext', async () => {
    const secrets = createAccountSecrets(newKey());
    const sealed = await secrets.seal('live_abcdefghijklmnopqrstuvwxyz123456', CONTEXT);
    expect(sealed.keyId).toBe(await secrets.currentKeyId());
    expect(sealed.keyId).toMatch(/^k_[0-9a-f]{16}$/);
    expect(sealed.ciphertext).not.toContain('live_');
    expect(Buffer.from(sealed.ciphertext, 'base64').toString('latin1')).not.toContain('live_');
    expect(await secrets.open(sealed, CONTEXT)).toBe('live_abcdefghijklmnopqrstuvwxyz123456');
    // A fresh IV each time: the same secret never seals to the same bytes.
    expect((await secrets.seal('live_abcdefghijklmnopqrstuvwxyz123456', CONTEXT)).ciphertext).not.toBe(sealed.ciphertext);
  });

  it('refuses to open with another key, naming the key it needs', async () => {
    const sealed = await createAccountSecrets(newKey()).seal('secret', CONTEXT);
    const error = await rejection(createAccountSecrets(newKey()).open(sealed, CONTEXT));
    expect(error).toBeInstanceOf(SecretsError);
    expect((error as SecretsError).code).toBe('unknown_key');
    expect((error as Error).message).toContain(sealed.keyId);
    // The right key id but other key bytes (a forged id): the tag check fails.
    const impostor = createAccountSecrets(newKey());
    const forged = { ...sealed, keyId: await impostor.currentKeyId() };
    expect(((await rejection(impostor.open(forged, CONTEXT))) as SecretsError).code).toBe('tampered');
  });

  it('opens secrets sealed under a previous key during a rotation and seals new ones under the current key', async () => {
    const oldKey = newKey();
    const before = createAccountSecrets(oldKey);
    const sealedBefore = await before.seal('token-1', CONTEXT);
    const rotated = createAccountSecrets(newKey(), [oldKey]);
    expect(await rotated.open(sealedBefore, CONTEXT)).toBe('token-1');
    const sealedAfter = await rotated.seal('token-1', CONTEXT);
    expect(sealedAfter.keyId).not.toBe(sealedBefore.keyId);
    expect(sealedAfter.keyId).toBe(await rotated.currentKeyId());
    // The old process, not yet given the new key, cannot read what the new one sealed.
    expect(((await rejection(before.open(sealedAfter, CONTEXT))) as SecretsError).code).toBe('unknown_key');
  });

  it('detects a flipped bit anywhere and a ciphertext moved to another row or column', async () => {
    const secrets = createAccountSecrets(newKey());
    const sealed = await secrets.seal('gocardless-token', CONTEXT);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    for (const position of [0, 11, 12, bytes.length - 1]) {
      const altered = Buffer.from(bytes);
      altered[position]! ^= 0x01;
      const error = await rejection(secrets.open({ ...sealed, ciphertext: altered.toString('base64') }, CONTEXT));
      expect((error as SecretsError).code).toBe('tampered');
    }
    expect(((await rejection(secrets.open(sealed, 'mollie/shop-2/credentials'))) as SecretsError).code).toBe('tampered');
    expect(((await rejection(secrets.open(sealed, 'mollie/shop-1/webhook-secrets'))) as SecretsError).code).toBe('tampered');
  });

  it('explains a bad key', () => {
    expect(decodeAccountKey('not base64!')).toMatch(/must be base64/);
    expect(decodeAccountKey(randomBytes(16).toString('base64'))).toMatch(/exactly 32 bytes, got 16/);
    expect(decodeAccountKey(newKey())).toBeInstanceOf(Uint8Array);
    expect(() => createAccountSecrets(newKey(), ['short'])).toThrow(/ACCOUNT_SECRETS_PREVIOUS_KEYS entry 1 must be base64/);
  });

  it('reports bad keys in the environment with the variable named, all at once', () => {
    let error: unknown;
    try {
      parseEnv({ ACCOUNT_SECRETS_KEY: randomBytes(31).toString('base64'), ACCOUNT_SECRETS_PREVIOUS_KEYS: `${newKey()},nope!` });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^ACCOUNT_SECRETS_KEY: must be the base64 of exactly 32 bytes, got 31/),
      expect.stringMatching(/^ACCOUNT_SECRETS_PREVIOUS_KEYS\.1: must be base64/),
    ]);
    expect(() => parseEnv({ ACCOUNT_SECRETS_PREVIOUS_KEYS: newKey() })).toThrow(/set only together with ACCOUNT_SECRETS_KEY/);
    const env = parseEnv({ ACCOUNT_SECRETS_KEY: newKey() });
    expect(env.ACCOUNT_SECRETS_PREVIOUS_KEYS).toEqual([]);
    expect(env.ACCOUNT_CHECK_INTERVAL_MS).toBe(300_000);
  });
});
