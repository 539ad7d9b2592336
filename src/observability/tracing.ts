import { SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import packageJson from '../../package.json' with { type: 'json' };
import type { Env } from '../config/env.js';
import { errorMessage } from '../primitives/error-message.js';

/**
 * Spans around the steps of one trigger: webhook -> receipt -> sync -> lock -> provider
 * fetch -> write. Only the OpenTelemetry API is used here: until a tracer provider is
 * registered (src/observability/tracing-setup.ts, when the OTEL_* variables ask for it)
 * every span is a no-op that costs a function call, on Node and on Workers alike.
 */
const tracer = () => trace.getTracer('payment-webhook-gateway', packageJson.version);

/**
 * Runs `work` inside a child span of the current one (or, with `root`, the first span of a
 * trace of its own); a thrown error marks the span failed and is rethrown.
 */
export function withSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, kind = SpanKind.INTERNAL, root = false): Promise<T> {
  return tracer().startActiveSpan(name, { attributes, kind, root }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Attribute names, in one place so every span spells them the same. */
export const SPAN_ATTRIBUTES = {
  provider: 'payment.provider',
  paymentId: 'payment.id',
  account: 'payment.account',
  source: 'payment.sync_source',
  outcome: 'gateway.outcome',
} as const;

/**
 * Which exporter the standard OTEL_* variables ask for, or null: tracing stays off unless
 * an OTLP endpoint or OTEL_TRACES_EXPORTER configures it, and OTEL_SDK_DISABLED wins.
 */
export function tracesExporterKind(env: Env): 'otlp' | 'console' | null {
  if (env.OTEL_SDK_DISABLED) return null;
  if (env.OTEL_TRACES_EXPORTER) return env.OTEL_TRACES_EXPORTER === 'none' ? null : env.OTEL_TRACES_EXPORTER;
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : null;
}
