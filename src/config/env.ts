import { z } from 'zod';
import { decodeAccountKey } from '../accounts/secrets.js';

/** WRITE_BATCH_MAX's default (also for databases opened without it, as tests do). */
export const DEFAULT_WRITE_BATCH_MAX = 64;

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

/** A key for account secrets at rest: base64 of 32 bytes. */
const accountKey = z.string().superRefine((value, ctx) => {
  const decoded = decodeAccountKey(value);
  if (typeof decoded === 'string') ctx.addIssue({ code: 'custom', message: decoded });
});

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_RETRY_DELAY_MS = 7 * 86_400_000;

/** A retry schedule: comma-separated delays with a unit each, e.g. `5s,5m,30m,2h`. */
const durations = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const delays: number[] = [];
      for (const item of value.split(',').map((entry) => entry.trim())) {
        const match = /^(\d+)(ms|s|m|h|d)$/.exec(item);
        const ms = match ? Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS] : NaN;
        if (!(ms >= 1 && ms <= MAX_RETRY_DELAY_MS)) {
          ctx.addIssue({ code: 'custom', message: `"${item}" is not a delay between 1ms and 7d (write e.g. 5s,5m,30m,2h; units ms, s, m, h, d)` });
          return z.NEVER;
        }
        delays.push(ms);
      }
      if (delays.length > 50) {
        ctx.addIssue({ code: 'custom', message: 'at most 50 delays' });
        return z.NEVER;
      }
      return delays as readonly number[];
    });

const schemeList = (schemes: string[], example: string) =>
  list.refine(
    (items) => items.every((item) => URL.canParse(item) && schemes.includes(new URL(item).protocol)),
    `every entry must be a ${schemes.map((scheme) => `${scheme}//`).join(' or ')} URL (${example})`,
  );

export const envSchema = z.object({
  PORT: port.default(8787),
  /**
   * Optional internal port for /metrics, /readyz with detail and the operator console; when set,
   * the public PORT serves only webhooks, /v1, /healthz and a plain /readyz.
   */
  ADMIN_PORT: port.optional(),
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
  /** How a payment is read on the webhook path: one plain GET (direct) or the official SDK (sdk). */
  MOLLIE_PAYMENT_FETCH: z.enum(['direct', 'sdk']).default('direct'),
  MOLLIE_WEBHOOK_SECRETS: list,
  GOCARDLESS_ACCESS_TOKEN: z.string().min(1).optional(),
  GOCARDLESS_API_URL: url('https://api.gocardless.com').default('https://api.gocardless.com'),
  GOCARDLESS_WEBHOOK_SECRETS: list,
  /**
   * Seals the credentials and webhook secrets of accounts created through /v1/accounts
   * (AES-256-GCM). Without it, creating an account answers 503; the env-configured
   * `default` accounts need no key.
   */
  ACCOUNT_SECRETS_KEY: accountKey.optional(),
  /** Comma-separated older keys, still opened during a rotation (`npm run accounts:rotate-keys` re-seals every row). */
  ACCOUNT_SECRETS_PREVIOUS_KEYS: list.pipe(z.array(accountKey)),
  /**
   * How often every active and broken stored account's credentials are checked against its
   * provider (src/accounts/check-job.ts): once per interval per account fleet-wide, spread
   * over the interval, even with no traffic.
   */
  ACCOUNT_CHECK_INTERVAL_MS: z.coerce.number().int().min(100).default(300_000),
  /**
   * Mollie OAuth (Connect): the app's client id and secret from Mollie's dashboard. Without
   * both, GET /v1/accounts/mollie/connect answers 503 and OAuth tokens are not refreshed.
   */
  MOLLIE_OAUTH_CLIENT_ID: z.string().min(1).optional(),
  MOLLIE_OAUTH_CLIENT_SECRET: z.string().min(1).optional(),
  /**
   * One origin for both OAuth endpoints (<url>/oauth2/authorize and <url>/oauth2/tokens),
   * e.g. the sandbox's. Unset: Mollie's own, which live on two hosts
   * (https://my.mollie.com/oauth2/authorize, https://api.mollie.com/oauth2/tokens).
   */
  MOLLIE_OAUTH_URL: url('https://api.mollie.com').optional(),
  /**
   * The callback URL registered with the Mollie app; Mollie sends the merchant back there.
   * Unset: <origin of the connect request>/v1/accounts/mollie/connect/callback.
   */
  MOLLIE_OAUTH_REDIRECT_URI: url('https://gateway.example.com/v1/accounts/mollie/connect/callback').optional(),
  /** An OAuth access token is refreshed once it expires within this much (Mollie's last an hour). */
  MOLLIE_OAUTH_REFRESH_MARGIN_MS: z.coerce.number().int().min(0).default(300_000),
  /** How often GET /events is paged to recover events whose webhooks never came; 0 disables it. */
  GOCARDLESS_EVENTS_INTERVAL_MS: z.coerce.number().int().min(0).default(300_000),
  EVENT_SINK_URLS: list.refine(
    (items) => items.every((item) => URL.canParse(item) && ['http:', 'https:'].includes(new URL(item).protocol)),
    'every entry must be an http(s) URL',
  ),
  EVENT_SINK_SECRET: whsec.optional(),
  /** Comma-separated whsec_ secrets still signed with during a rotation, after EVENT_SINK_SECRET. */
  EVENT_SINK_PREVIOUS_SECRETS: list.pipe(z.array(whsec)),
  /** Bound on each outbound HTTP delivery attempt. */
  EVENT_SINK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(15_000),
  EVENT_STREAM: z.string().min(1).optional(),
  /** Approximate cap on the Redis Stream's length (XADD MAXLEN ~). */
  EVENT_STREAM_MAXLEN: z.coerce.number().int().min(1).default(100_000),
  /**
   * On SIGTERM: how long idle keep-alive connections and requests still sending their body
   * get before they are cut off (requests being handled always finish and are answered).
   */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(120_000, 'must be at most 120000 (2 min)').default(5000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long a trigger waits for a payment's lock before leaving the work due for later. */
  LOCK_WAIT_MS: z.coerce.number().int().min(0).default(2000),
  /** Lock time-to-live; the lock is extended automatically while work runs. */
  LOCK_TTL_MS: z.coerce.number().int().min(100).default(10_000),
  /** Bound on every Redis call, so an unreachable Redis costs little before falling back. */
  REDIS_TIMEOUT_MS: z.coerce.number().int().min(10).default(500),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * Group commit: concurrent receipt inserts, fence draws and snapshot writes that wait for
   * the one in flight go together as the next, at most this many; 1 writes each alone.
   */
  WRITE_BATCH_MAX: z.coerce.number().int().min(1).max(1000).default(DEFAULT_WRITE_BATCH_MAX),
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
  /**
   * Fleet-wide: when payments are due and no poller pass has completed in any process for
   * this long, every process's watcher announces gateway.poller.stalled (once per episode).
   */
  POLLER_STALLED_AFTER_MS: z.coerce.number().int().min(2000, 'must be at least 2000').max(86_400_000, 'must be at most 86400000 (a day)').default(300_000),
  /** How long a Mollie webhook is processed inline before it is answered and left to finish in the background. */
  MOLLIE_WEBHOOK_DEADLINE_MS: z.coerce.number().int().min(0).max(12_000, 'must stay well inside Mollie\'s 15 s (at most 12000)').default(5000),
  /** How often the Mollie reconciliation sweep runs, across all gateway processes; 0 disables it. */
  MOLLIE_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(600_000),
  /** How far back (by creation time) the sweep compares Mollie's payments with ours. */
  /** Webhook bodies (unauthenticated until read) held at once by one process, in bytes; past it: 503 + Retry-After. */
  WEBHOOK_BODY_BUDGET_BYTES: z.coerce.number().int().min(4 * 1024 * 1024, 'must be at least 4194304 (two of the largest webhook bodies)').default(32 * 1024 * 1024),
  /**
   * How long an idle keep-alive connection stays open (Node's server keepAliveTimeout). Behind a
   * load balancer it must outlast the balancer's idle timeout, or the balancer may reuse a
   * connection just as the gateway closes it and answer the provider 502.
   */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(5_000),
  /** How long a webhook body may take to arrive once its headers are in; past it: 408. */
  WEBHOOK_BODY_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** A webhook for a payment fetched less than this ago waits for the window's end instead of fetching again. */
  WEBHOOK_REFETCH_WINDOW_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  /** The same for an id the provider answered 404 (a negative cache); 0 disables either. */
  WEBHOOK_NOT_FOUND_WINDOW_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  MOLLIE_SWEEP_WINDOW_MS: z.coerce.number().int().min(60_000, 'must be at least 60000').default(172_800_000),
  /** Delays after each failed delivery attempt, for every sink; past the last, a dead letter. */
  EVENT_SINK_RETRY_DELAYS: durations('5s,5m,30m,2h,5h,10h,14h,20h,24h'),
  /** While a sink has retries waiting, how often one of them is tried early to learn whether the sink answers again. */
  EVENT_SINK_PROBE_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
  /** Delays after each failed attempt at processing a stored webhook; past the last, the receipt is `failed`. */
  RECEIPT_RETRY_DELAYS: durations('5s,15s,1m,5m,15m,1h,3h,6h,12h,24h,24h,24h'),
  /** NATS servers (one cluster) for the JetStream sink; events are published to EVENT_NATS_SUBJECT.<type>.<provider>. */
  EVENT_NATS_URL: schemeList(['nats:', 'tls:'], 'nats://127.0.0.1:4222'),
  EVENT_NATS_SUBJECT: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated tokens of letters, digits, _ and - (e.g. billing.events)')
    .default('events'),
  /** RabbitMQ (AMQP 0-9-1) for the topic-exchange sink. */
  EVENT_AMQP_URL: z
    .string()
    .refine((value) => URL.canParse(value) && ['amqp:', 'amqps:'].includes(new URL(value).protocol), 'must be an amqp:// or amqps:// URL (amqp://user:pass@127.0.0.1:5672/vhost)')
    .optional(),
  EVENT_AMQP_EXCHANGE: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,255}$/, 'must be 1-255 letters, digits, -, _, . or :')
    .refine((value) => !value.startsWith('amq.'), 'names starting with amq. are reserved by the broker')
    .default('payment-events'),
  // Retention (README "Retention"): days after which settled rows are deleted; 0 keeps them all.
  /** Processed and ignored webhook receipts. Pending and failed ones are never deleted. */
  RETENTION_RECEIPTS_DAYS: z.coerce.number().min(0).default(30),
  /** Delivered attempts. Pending deliveries and dead letters are never deleted. */
  RETENTION_DELIVERIES_DAYS: z.coerce.number().min(0).default(30),
  /** Outbox events every sink is done with; also the pull API's horizon. */
  RETENTION_OUTBOX_DAYS: z.coerce.number().min(0).default(90),
  /** The inbound log: one row per request to a webhook route. */
  RETENTION_REQUESTS_DAYS: z.coerce.number().min(0).default(30),
  /** Audit trail entries (operators' actions). */
  RETENTION_AUDIT_DAYS: z.coerce.number().min(0).default(365),
  /** How often retention runs, once across the fleet; 0 disables it. */
  RETENTION_INTERVAL_MS: z.coerce.number().int().min(0).default(3_600_000),
  /** Rows per DELETE statement: small, so no statement holds locks for long. */
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
  // OpenTelemetry traces: off unless an OTLP endpoint or OTEL_TRACES_EXPORTER asks for them.
  // The SDK reads the rest of the standard OTEL_* variables (headers, timeout, sampler) itself.
  OTEL_SDK_DISABLED: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .optional()
    .transform((value) => value === 'true'),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url('http://collector:4318').optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url('http://collector:4318/v1/traces').optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('payment-webhook-gateway'),
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
    if (Boolean(result.data.MOLLIE_OAUTH_CLIENT_ID) !== Boolean(result.data.MOLLIE_OAUTH_CLIENT_SECRET)) {
      throw new ConfigError(['MOLLIE_OAUTH_CLIENT_ID and MOLLIE_OAUTH_CLIENT_SECRET: set both (the Mollie app\'s credentials) or neither']);
    }
    if (result.data.ACCOUNT_SECRETS_PREVIOUS_KEYS.length > 0 && !result.data.ACCOUNT_SECRETS_KEY) {
      throw new ConfigError(['ACCOUNT_SECRETS_PREVIOUS_KEYS: set only together with ACCOUNT_SECRETS_KEY (the key new secrets are sealed with)']);
    }
    // Broker sinks carry the same Standard Webhooks signature as HTTP ones.
    for (const name of ['EVENT_NATS_URL', 'EVENT_AMQP_URL'] as const) {
      if (result.data[name]?.length && !result.data.EVENT_SINK_SECRET) throw new ConfigError([`EVENT_SINK_SECRET: required when ${name} is set`]);
    }
    return result.data;
  }
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    return `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}
