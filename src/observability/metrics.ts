import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import packageJson from '../../package.json' with { type: 'json' };

/**
 * One spelling for every `outcome` label: snake_case, and an error class's name without
 * its `Error` suffix (`LockBusyError` -> `lock_busy`), so dashboards and alerts match one
 * vocabulary whichever layer counted.
 */
export function outcomeLabel(value: string): string {
  const snake = value
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase();
  const trimmed = snake === 'error' ? snake : snake.replace(/_error$/, '');
  return trimmed || 'error';
}

/** Request-duration buckets: webhook acknowledgements are judged at p99 against the providers' timeouts (10 to 15 s). */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15];

/** One registry per gateway instance, so several instances can share a process (tests). */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const buildInfo = new Gauge({
    name: 'gateway_build_info',
    help: 'Always 1; the labels say which gateway version runs on which Node.js',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: packageJson.version, node_version: process.versions.node ?? 'unknown' }, 1);
  return {
    registry,
    buildInfo,
    httpRequestDuration: new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'HTTP request duration until the response is ready, by method, route pattern and outcome (ok, client_error, server_error)',
      labelNames: ['method', 'route', 'status', 'outcome'] as const,
      buckets: HTTP_BUCKETS,
      registers: [registry],
    }),
    // Read from the database at each scrape (src/observability/database-gauges.ts): they
    // describe the whole fleet, whichever process is scraped.
    receipts: new Gauge({
      name: 'gateway_webhook_receipts',
      help: 'Webhook receipts waiting for work (pending) or given up on (failed), by provider, fleet-wide',
      labelNames: ['provider', 'state'] as const,
      registers: [registry],
    }),
    oldestPendingReceipt: new Gauge({
      name: 'gateway_webhook_receipt_oldest_pending_seconds',
      help: 'Age of the oldest pending webhook receipt (0 when none), fleet-wide',
      registers: [registry],
    }),
    deadLetters: new Gauge({
      name: 'gateway_dead_letters',
      help: 'Outbound deliveries given up on and waiting for an operator, by sink, fleet-wide',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    retentionDeleted: new Counter({
      name: 'gateway_retention_deleted_rows_total',
      help: 'Rows deleted by retention, by table',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    inboundLogSuppressed: new Counter({
      name: 'gateway_inbound_log_suppressed_total',
      help: 'Webhook requests not written to the inbound log because their source was over its rate',
      registers: [registry],
    }),
    oldestDuePoll: new Gauge({
      name: 'gateway_poller_oldest_due_seconds',
      help: 'How long the most overdue scheduled poll has been due (0 when none), all accounts, fleet-wide',
      registers: [registry],
    }),
    syncs: new Counter({
      name: 'gateway_syncs_total',
      help: 'syncPayment calls by provider, source and outcome',
      labelNames: ['provider', 'source', 'outcome'] as const,
      registers: [registry],
    }),
    syncDuration: new Histogram({
      name: 'gateway_sync_duration_seconds',
      help: 'syncPayment duration, lock wait and provider fetch included',
      labelNames: ['provider', 'source'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    lockOutcomes: new Counter({
      name: 'gateway_lock_outcomes_total',
      help: 'Lock attempts: acquired, busy (held elsewhere too long), unavailable (ran on database guarantees alone), lost (expired mid-work)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    recentFetchErrors: new Counter({
      name: 'gateway_recent_fetch_errors_total',
      help: 'Reads and writes of the shared recent-fetch record that Redis did not answer (op: get, record); each may cost one more provider call for an id another process fetched a moment ago',
      labelNames: ['op'] as const,
      registers: [registry],
    }),
    lockWait: new Histogram({
      name: 'gateway_lock_wait_seconds',
      help: 'Time spent waiting for a payment lock',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    webhooks: new Counter({
      name: 'gateway_webhooks_total',
      help: 'Webhook requests by provider and outcome',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    sweepPayments: new Counter({
      name: 'gateway_sweep_payments_total',
      help: 'Payments seen by the reconciliation sweep, by outcome: in_sync, changed, unchanged, not_found, busy, failed',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    sweepRuns: new Counter({
      name: 'gateway_sweep_runs_total',
      help: 'Reconciliation sweep runs by outcome: complete, incomplete (stopped early; the watermark stays), error',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    providerFetches: new Counter({
      name: 'gateway_provider_fetches_total',
      help: 'Provider API payment fetches by provider and outcome',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    providerEvents: new Counter({
      name: 'gateway_provider_events_total',
      help: 'Provider events received (GoCardless batches, events API recovery) by origin and outcome: new or duplicate',
      labelNames: ['provider', 'origin', 'outcome'] as const,
      registers: [registry],
    }),
    eventRecoveryPasses: new Counter({
      name: 'gateway_event_recovery_passes_total',
      help: 'Passes over a provider events API that recover missed webhooks, by outcome',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'gateway_dependency_up',
      help: '1 when the dependency answered the last readiness probe',
      labelNames: ['dependency'] as const,
      registers: [registry],
    }),
    // Poller: the per-account gauges are read from the shared poller_health table on each scrape.
    pollerPolls: new Counter({
      name: 'gateway_poller_polls_total',
      help: 'Polls by provider and outcome: changed, unchanged, not_found, busy, rate_limited, failed, skipped',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    pollerLastSuccess: new Gauge({
      name: 'gateway_poller_last_success_timestamp_seconds',
      help: 'Unix time of the last successful poll per provider account, any process (0: never)',
      labelNames: ['provider', 'account'] as const,
      registers: [registry],
    }),
    pollerConsecutiveFailures: new Gauge({
      name: 'gateway_poller_consecutive_failures',
      help: 'Failed polls in a row per provider account, any process',
      labelNames: ['provider', 'account'] as const,
      registers: [registry],
    }),
    pollerLag: new Gauge({
      name: 'gateway_poller_lag_seconds',
      help: 'Age of the oldest due payment not yet polled, per provider account (0 when none is due)',
      labelNames: ['provider', 'account'] as const,
      registers: [registry],
    }),
    pollerDegraded: new Gauge({
      name: 'gateway_poller_degraded',
      help: '1 while the provider account is in a degraded polling episode',
      labelNames: ['provider', 'account'] as const,
      registers: [registry],
    }),
    pollerFleetStalled: new Gauge({
      name: 'gateway_poller_fleet_stalled',
      help: '1 while the fleet is in a stalled episode: payments due and no poller pass completed anywhere for POLLER_STALLED_AFTER_MS',
      registers: [registry],
    }),
    pollerLastPass: new Gauge({
      name: 'gateway_poller_last_pass_timestamp_seconds',
      help: "Unix time this process's poller last finished a pass (0: not running here)",
      registers: [registry],
    }),
    // Accounts: by provider and status only, never per account (thousands of merchants must not make thousands of series).
    accounts: new Gauge({
      name: 'gateway_accounts',
      help: 'Stored accounts by provider and status (active, broken, disabled), read from the database at each scrape',
      labelNames: ['provider', 'status'] as const,
      registers: [registry],
    }),
    accountChecks: new Counter({
      name: 'gateway_account_checks_total',
      help: 'Checks of stored accounts by this process, by provider and outcome: working, refused, identity_changed, outage, unreadable',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    outboxLag: new Gauge({
      name: 'gateway_outbox_lag_seconds',
      help: 'Age of the oldest committed outbox event not yet handed to the sinks (0 when none), read at each scrape and after each relay pass',
      registers: [registry],
    }),
    eventDeliveries: new Counter({
      name: 'gateway_event_deliveries_total',
      help: 'Outbound delivery attempts by sink and outcome: delivered, retry, dead (dead letter), gone (410, sink disabled)',
      labelNames: ['sink', 'kind', 'outcome'] as const,
      registers: [registry],
    }),
    eventDeliveryDuration: new Histogram({
      name: 'gateway_event_delivery_duration_seconds',
      help: 'Duration of one outbound delivery attempt',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
