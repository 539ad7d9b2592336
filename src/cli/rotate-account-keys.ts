/**
 * Re-encrypts every account's credentials and webhook secrets under ACCOUNT_SECRETS_KEY
 * (npm run accounts:rotate-keys). Rotation: set the new key as ACCOUNT_SECRETS_KEY and the
 * old one in ACCOUNT_SECRETS_PREVIOUS_KEYS on every gateway, run this, then drop the old key.
 */
import { accountSecretsFromEnv } from '../accounts/accounts.js';
import { resealAccountSecrets } from '../accounts/rotate-keys.js';
import { ConfigError, parseEnv } from '../config/env.js';
import { createDatabase } from '../db/client.js';

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

let env;
try {
  env = parseEnv(process.env);
} catch (error) {
  if (error instanceof ConfigError) fail(error.message, 78);
  throw error;
}
const secrets = accountSecretsFromEnv(env);
if (!secrets) fail('ACCOUNT_SECRETS_KEY is required: it is the key every account is re-encrypted under', 78);
if (!env.DATABASE_URL) fail('DATABASE_URL is required', 78);

const database = createDatabase(env.DATABASE_URL, { max: 2 });
try {
  const result = await resealAccountSecrets(database.db, secrets);
  process.stdout.write(`re-encrypted ${result.resealed} account(s) under key ${await secrets.currentKeyId()}${result.raced > 0 ? ` (${result.raced} changed meanwhile and were re-read)` : ''}\n`);
} catch (error) {
  process.stderr.write(`rotation failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await database.close();
}
