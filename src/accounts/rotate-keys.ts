/**
 * Re-seals every account secret under the current key (ACCOUNT_SECRETS_KEY), so a
 * previous key can be dropped from ACCOUNT_SECRETS_PREVIOUS_KEYS afterwards. Runs while
 * gateways keep serving: each row is rewritten only if it still holds the ciphertext that
 * was read (a guarded UPDATE), so a PATCH landing in between is never overwritten; such a
 * row is read again on the next pass.
 */
import { and, eq, isNotNull, ne, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { accounts, type SelectAccount } from '../db/schema/accounts.js';
import { credentialsContext, webhookSecretsContext } from './accounts.js';
import type { AccountSecrets, SealedSecret } from './secrets.js';

export interface ResealResult {
  /** Rows rewritten under the current key. */
  resealed: number;
  /** Rows that changed under us and were read again. */
  raced: number;
}

async function reseal(secrets: AccountSecrets, currentKeyId: string, sealed: SealedSecret, context: string): Promise<SealedSecret> {
  if (sealed.keyId === currentKeyId) return sealed;
  return secrets.seal(await secrets.open(sealed, context), context);
}

export async function resealAccountSecrets(db: DbOrTx, secrets: AccountSecrets, options: { batchSize?: number; maxPasses?: number } = {}): Promise<ResealResult> {
  const currentKeyId = await secrets.currentKeyId();
  const batchSize = options.batchSize ?? 100;
  const result: ResealResult = { resealed: 0, raced: 0 };
  const stale = or(ne(accounts.credentialsKeyId, currentKeyId), and(isNotNull(accounts.webhookSecretsKeyId), ne(accounts.webhookSecretsKeyId, currentKeyId)));
  for (let pass = 0; pass < (options.maxPasses ?? 100); pass++) {
    const rows: SelectAccount[] = await db.select().from(accounts).where(stale).orderBy(accounts.id).limit(batchSize);
    if (rows.length === 0) return result;
    for (const row of rows) {
      const credentials = await reseal(secrets, currentKeyId, { keyId: row.credentialsKeyId, ciphertext: row.credentialsCiphertext }, credentialsContext(row.provider, row.name));
      const webhookSecrets =
        row.webhookSecretsKeyId && row.webhookSecretsCiphertext
          ? await reseal(secrets, currentKeyId, { keyId: row.webhookSecretsKeyId, ciphertext: row.webhookSecretsCiphertext }, webhookSecretsContext(row.provider, row.name))
          : null;
      // Guarded: only if the row still holds what was read (a PATCH in between wins, and is re-read).
      const updated = await db
        .update(accounts)
        .set({
          credentialsKeyId: credentials.keyId,
          credentialsCiphertext: credentials.ciphertext,
          webhookSecretsKeyId: webhookSecrets?.keyId ?? null,
          webhookSecretsCiphertext: webhookSecrets?.ciphertext ?? null,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(accounts.id, row.id),
            eq(accounts.credentialsCiphertext, row.credentialsCiphertext),
            row.webhookSecretsCiphertext === null ? sql`${accounts.webhookSecretsCiphertext} is null` : eq(accounts.webhookSecretsCiphertext, row.webhookSecretsCiphertext),
          ),
        )
        .returning({ id: accounts.id });
      if (updated.length > 0) result.resealed++;
      else result.raced++;
    }
  }
  throw new Error(`accounts still sealed under older keys after ${options.maxPasses ?? 100} passes (are gateways still sealing with an older ACCOUNT_SECRETS_KEY?)`);
}
