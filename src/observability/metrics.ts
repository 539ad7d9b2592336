import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per gateway instance, so several instances can share a process (tests). */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
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
    providerFetches: new Counter({
      name: 'gateway_provider_fetches_total',
      help: 'Provider API payment fetches by provider and outcome',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'gateway_dependency_up',
      help: '1 when the dependency answered the last readiness probe',
      labelNames: ['dependency'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
