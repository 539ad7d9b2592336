/**
 * Account secrets at rest: AES-256-GCM through WebCrypto (`globalThis.crypto.subtle`),
 * which Node 20 and Workers both have. Every ciphertext names the key that sealed it, so
 * rows sealed under ACCOUNT_SECRETS_PREVIOUS_KEYS stay readable during a rotation while
 * everything new is sealed under ACCOUNT_SECRETS_KEY.
 *
 * The additional data binds a ciphertext to its row and purpose (e.g.
 * `mollie/shop-1/credentials`): a ciphertext copied into another row, or into the other
 * column, fails to open instead of handing one merchant's key to another.
 */

const KEY_BYTES = 32;
const IV_BYTES = 12;
/** Bytes of the key's SHA-256 that name it: enough to tell keys apart, nothing to attack. */
const KEY_ID_BYTES = 8;

/** A sealed secret as stored: the key's id and base64 of IV || ciphertext || tag. */
export interface SealedSecret {
  keyId: string;
  ciphertext: string;
}

export interface AccountSecrets {
  /** The id of the key new secrets are sealed with. */
  currentKeyId(): Promise<string>;
  seal(plaintext: string, context: string): Promise<SealedSecret>;
  /** Throws SecretsError when the key is unknown or the ciphertext or context do not match. */
  open(sealed: SealedSecret, context: string): Promise<string>;
}

export class SecretsError extends Error {
  override readonly name = 'SecretsError';
  constructor(
    readonly code: 'unknown_key' | 'tampered',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The raw bytes of a configured key, or a sentence saying what is wrong with it. Shared by
 * the environment's parsing (to report a bad key at start-up) and by the keyring.
 */
export function decodeAccountKey(value: string): Uint8Array<ArrayBuffer> | string {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || trimmed.length % 4 !== 0) {
    return 'must be base64 (generate one with: openssl rand -base64 32)';
  }
  const bytes = fromBase64(trimmed);
  if (bytes.length !== KEY_BYTES) return `must be the base64 of exactly ${KEY_BYTES} bytes, got ${bytes.length} (generate one with: openssl rand -base64 32)`;
  return bytes;
}

interface LoadedKey {
  id: string;
  key: CryptoKey;
}

/**
 * The keyring for `current` (ACCOUNT_SECRETS_KEY) and `previous` (older keys, still
 * opened, never sealed with). The keys are checked at once; importing them waits for the
 * first use, since WebCrypto is asynchronous and construction is not.
 */
export function createAccountSecrets(current: string, previous: readonly string[] = []): AccountSecrets {
  const raw = [current, ...previous].map((value, index) => {
    const decoded = decodeAccountKey(value);
    if (typeof decoded === 'string') {
      throw new Error(`${index === 0 ? 'ACCOUNT_SECRETS_KEY' : `ACCOUNT_SECRETS_PREVIOUS_KEYS entry ${index}`} ${decoded}`);
    }
    return decoded;
  });
  let loaded: Promise<LoadedKey[]> | undefined;
  const keys = () => (loaded ??= Promise.all(raw.map(loadKey)));

  return {
    async currentKeyId() {
      return (await keys())[0]!.id;
    },
    async seal(plaintext, context) {
      const { id, key } = (await keys())[0]!;
      const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const sealed = await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encode(context) }, key, encode(plaintext));
      const out = new Uint8Array(IV_BYTES + sealed.byteLength);
      out.set(iv, 0);
      out.set(new Uint8Array(sealed), IV_BYTES);
      return { keyId: id, ciphertext: toBase64(out) };
    },
    async open(sealed, context) {
      const entry = (await keys()).find((candidate) => candidate.id === sealed.keyId);
      if (!entry) {
        throw new SecretsError('unknown_key', `secret sealed with key ${sealed.keyId}, which is neither ACCOUNT_SECRETS_KEY nor in ACCOUNT_SECRETS_PREVIOUS_KEYS`);
      }
      const bytes = fromBase64(sealed.ciphertext);
      try {
        const plain = await globalThis.crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: bytes.subarray(0, IV_BYTES), additionalData: encode(context) },
          entry.key,
          bytes.subarray(IV_BYTES),
        );
        return new TextDecoder().decode(plain);
      } catch {
        // GCM's tag check: the ciphertext, its IV or its context is not what was sealed.
        throw new SecretsError('tampered', `secret sealed with key ${sealed.keyId} does not open for ${context}: altered or moved`);
      }
    },
  };
}

async function loadKey(bytes: Uint8Array<ArrayBuffer>): Promise<LoadedKey> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
  const id = `k_${[...digest.subarray(0, KEY_ID_BYTES)].map((byte) => byte.toString(16).padStart(2, '0')).join('')}`;
  const key = await globalThis.crypto.subtle.importKey('raw', bytes, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  return { id, key };
}

function encode(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}

// atob/btoa rather than Buffer: Workers have no Buffer without the Node compatibility flag.
function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}
