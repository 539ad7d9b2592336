import { z } from 'zod';

/**
 * The gateway's whole configuration, parsed once from a plain record:
 * Node passes process.env, Workers pass their env binding, tests pass a literal.
 */

const list = z
  .string()
  .optional()
  .transform((value) => (value ?? '').split(',').map((item) => item.trim()).filter(Boolean));

const url = (what: string) =>
  z
    .string()
    .refine((value) => URL.canParse(value), { message: `must be a URL (${what})` });

const port = z.coerce
  .number({ message: 'must be a number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

const whsec = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must look like whsec_<base64>');

export const envSchema = z.object({
  PORT: port.default(8787),
  /** Unset on Node: an embedded Postgres (PGlite) in EMBEDDED_DATA_DIR. Required on Workers. */
  DATABASE_URL: url('postgres://user@host:5432/db').optional(),
  EMBEDDED_DATA_DIR: z.string().min(1).default('.data/pglite'),
  /** Comma-separated: several entries are independent Redis nodes forming a Redlock quorum. */
  REDIS_URL: z
    .string()
    .optional()
    .transform((value) => (value ?? '').split(',').map((item) => item.trim()).filter(Boolean))
    .refine((items) => items.every((item) => URL.canParse(item)), 'every entry must be a redis:// URL'),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  MOLLIE_API_KEY: z.string().min(1).optional(),
  MOLLIE_API_URL: url('https://api.mollie.com').default('https://api.mollie.com'),
  MOLLIE_WEBHOOK_SECRETS: list,
  GOCARDLESS_ACCESS_TOKEN: z.string().min(1).optional(),
  GOCARDLESS_API_URL: url('https://api.gocardless.com').default('https://api.gocardless.com'),
  GOCARDLESS_WEBHOOK_SECRETS: list,
  /** How often GET /events is paged to recover events whose webhooks never came; 0 disables it. */
  GOCARDLESS_EVENTS_INTERVAL_MS: z.coerce.number().int().min(0).default(300_000),
  EVENT_SINK_URLS: list.refine((items) => items.every((item) => URL.canParse(item)), 'every entry must be an http(s) URL'),
  EVENT_SINK_SECRET: whsec.optional(),
  /** Comma-separated whsec_ secrets still signed with during a rotation, after EVENT_SINK_SECRET. */
  EVENT_SINK_PREVIOUS_SECRETS: list.pipe(z.array(whsec)),
  /** Bound on each outbound HTTP delivery attempt. */
  EVENT_SINK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(15_000),
  EVENT_STREAM: z.string().min(1).optional(),
  /** Approximate cap on the Redis Stream's length (XADD MAXLEN ~). */
  EVENT_STREAM_MAXLEN: z.coerce.number().int().min(1).default(100_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long a trigger waits for a payment's lock before leaving the work due for later. */
  LOCK_WAIT_MS: z.coerce.number().int().min(0).default(2000),
  /** Lock time-to-live; the lock is extended automatically while work runs. */
  LOCK_TTL_MS: z.coerce.number().int().min(100).default(10_000),
  /** Bound on every Redis call, so an unreachable Redis costs little before falling back. */
  REDIS_TIMEOUT_MS: z.coerce.number().int().min(10).default(500),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /** Poller: due payments leased per pass, and how many of them are polled at once. */
  POLLER_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(50),
  POLLER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(8),
  /** How long a lease keeps other processes off a payment; a crashed process's leases lapse after this. */
  POLLER_LEASE_MS: z.coerce.number().int().min(100).default(60_000),
  /** Pause between passes when nothing was due. */
  POLLER_IDLE_MS: z.coerce.number().int().min(10).default(1000),
  /** Token bucket per provider account, per process: set it to about the provider's limit / number of processes. */
  POLLER_RATE_PER_SECOND: z.coerce.number().positive().default(5),
  POLLER_RATE_BURST: z.coerce.number().int().min(1).default(10),
  /** An account is degraded after this many failed polls in a row... */
  POLLER_DEGRADED_AFTER_FAILURES: z.coerce.number().int().min(1).default(5),
  /** ...or after two or more failures in a row and no successful poll for this long. */
  POLLER_DEGRADED_AFTER_MS: z.coerce.number().int().min(1000).default(900_000),
  /** How long a Mollie webhook is processed inline before it is answered and left to finish in the background. */
  MOLLIE_WEBHOOK_DEADLINE_MS: z.coerce.number().int().min(0).max(12_000, 'must stay well inside Mollie\'s 15 s (at most 12000)').default(5000),
  /** How often the Mollie reconciliation sweep runs, across all gateway processes; 0 disables it. */
  MOLLIE_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(600_000),
  /** How far back (by creation time) the sweep compares Mollie's payments with ours. */
  MOLLIE_SWEEP_WINDOW_MS: z.coerce.number().int().min(60_000, 'must be at least 60000').default(172_800_000),
  /** GoCardless Bank Account Data (bank feeds): off unless both secrets are set. */
  GOCARDLESS_BANK_SECRET_ID: z.string().min(1).optional(),
  GOCARDLESS_BANK_SECRET_KEY: z.string().min(1).optional(),
  GOCARDLESS_BANK_API_URL: url('https://bankaccountdata.gocardless.com').default('https://bankaccountdata.gocardless.com'),
  /** How often each bank account is synced: four times a day keeps inside the banks' four calls and uses the access often enough that banks do not drop it. */
  BANK_SYNC_INTERVAL_MS: z.coerce.number().int().min(100).default(21_600_000),
  /** Successful calls per bank account and scope per day, fleet-wide. */
  BANK_DAILY_CALLS: z.coerce.number().int().min(1).max(1000).default(4),
  /** How far before the last booked date each sync fetches again (banks book late and back-date). */
  BANK_OVERLAP_DAYS: z.coerce.number().int().min(0).max(730).default(7),
  /** How long a pending transaction may be missing from the bank's answers before it is called removed. */
  BANK_PENDING_GRACE_MS: z.coerce.number().int().min(0).default(259_200_000),
  /** Days before the consent ends at which bank.connection.expiring is announced (decimals allowed). */
  BANK_EXPIRY_WARNING_DAYS: z
    .string()
    .optional()
    .transform((value) => (value ?? '7,1').split(',').map((item) => item.trim()).filter(Boolean).map(Number))
    .refine((days) => days.every((day) => Number.isFinite(day) && day > 0), 'must be a comma-separated list of positive numbers of days'),
  /** Bank accounts synced at once by one process. */
  BANK_SYNC_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** How often the bank scheduler looks for due work when nothing was due. */
  BANK_SCHEDULER_IDLE_MS: z.coerce.number().int().min(10).default(1000),
});

export type Env = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** Parses the environment, reporting every bad variable at once. */
export function parseEnv(source: Record<string, string | undefined>): Env {
  // Empty strings mean "unset": shells and compose files often export VAR= .
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ''));
  const result = envSchema.safeParse(cleaned);
  if (result.success) {
    if (result.data.EVENT_SINK_URLS.length > 0 && !result.data.EVENT_SINK_SECRET) {
      throw new ConfigError(['EVENT_SINK_SECRET: required when EVENT_SINK_URLS is set']);
    }
    return result.data;
  }
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    return `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}
