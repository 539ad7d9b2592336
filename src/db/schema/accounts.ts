import { sql } from 'drizzle-orm';
import { bigserial, index, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Provider accounts created at runtime (POST /v1/accounts); the env-configured `default`
 * accounts are not rows. The two unique indexes are what makes creation idempotent under
 * concurrency: one row per provider-side identity (a Mollie profile or organization, a
 * GoCardless creditor) and one per name, whichever request gets there first.
 *
 * Secrets are never stored in clear: each ciphertext is AES-256-GCM (src/accounts/secrets.ts)
 * with the id of the key that sealed it, so a key rotation can re-seal row by row.
 */
export const accounts = pgTable(
  'accounts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** mollie | gocardless */
    provider: text('provider').notNull(),
    /** The `:account` of /webhooks/<provider>/:account. */
    name: text('name').notNull(),
    /** The provider-side identity: Mollie pfl_/org_ id, GoCardless creditor id. */
    externalId: text('external_id').notNull(),
    /** active | broken | disabled */
    status: text('status').notNull().default('active'),
    /** apiKey | organizationToken | oauth | accessToken: which credential shape is sealed. */
    credentialsKind: text('credentials_kind').notNull(),
    /** The last four characters of the main secret, for telling keys apart in the console. */
    credentialsLast4: text('credentials_last4').notNull(),
    credentialsKeyId: text('credentials_key_id').notNull(),
    credentialsCiphertext: text('credentials_ciphertext').notNull(),
    /** Null: no webhook secrets of the account's own. */
    webhookSecretsKeyId: text('webhook_secrets_key_id'),
    webhookSecretsCiphertext: text('webhook_secrets_ciphertext'),
    lastCheckedAt: timestamp('last_checked_at', { withTimezone: true }),
    brokenSince: timestamp('broken_since', { withTimezone: true }),
    lastError: text('last_error'),
    /**
     * When the fleet-wide check (src/accounts/check-job.ts) next asks the provider about
     * this account. Claiming a due account moves it one interval on in the same statement,
     * so of N processes exactly one checks it per interval. Null: not scheduled yet (a new
     * account; the first pass gives it a random phase within the interval).
     */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('accounts_provider_name_uq').on(table.provider, table.name),
    uniqueIndex('accounts_provider_external_id_uq').on(table.provider, table.externalId),
    // The check job's claim: due accounts among those it checks.
    index('accounts_next_check_idx').on(table.nextCheckAt).where(sql`status in ('active', 'broken')`),
  ],
);

export type SelectAccount = typeof accounts.$inferSelect;
export type InsertAccount = typeof accounts.$inferInsert;
