import {
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import packageJson from '../../package.json' with { type: 'json' };
import type { Env } from '../config/env.js';
import { errorMessage } from '../primitives/error-message.js';

/**
 * Spans around the steps of one trigger: webhook -> receipt -> sync -> lock -> provider
 * fetch -> write. Only the OpenTelemetry API is used here: until a tracer provider is
 * registered (src/observability/tracing-setup.ts, when the OTEL_* variables ask for it)
 * every span is a no-op that costs a function call, on Node and on Workers alike.
 */
const TRACER_NAME = 'payment-webhook-gateway';

/**
 * The registered tracer provider's tracer, or null while none is registered (tracing off).
 * Asked on every span, so a provider registered (or removed) after start-up is followed.
 */
function activeTracer(): Tracer | null {
  const provider = trace.getTracerProvider();
  if (provider instanceof ProxyTracerProvider) return provider.getDelegateTracer(TRACER_NAME, packageJson.version) ?? null;
  return provider.getTracer(TRACER_NAME, packageJson.version);
}

/** True when a tracer provider is registered: spans are recorded (and maybe sampled). */
export function tracingEnabled(): boolean {
  return activeTracer() !== null;
}

/** The span a no-op tracer starts without a parent: records nothing, shared by every such call. */
const UNPARENTED_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * With tracing off, the span the API's no-op tracer would hand `work` (a non-recording span
 * carrying the parent's context, if any), without the context switch and the closures
 * around it: nothing reads that context while no provider is registered.
 */
function untracedSpan(parent: SpanContext | null, root: boolean): Span {
  const inherited = parent ?? (root ? undefined : trace.getSpanContext(context.active()));
  return inherited && isSpanContextValid(inherited) ? trace.wrapSpanContext(inherited) : UNPARENTED_SPAN;
}

/**
 * Runs `work` inside a child span of the current one (or, with `root`, the first span of a
 * trace of its own, or, with a `traceParent`, a child of that stored span); a thrown error
 * marks the span failed and is rethrown.
 */
export function withSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, kind = SpanKind.INTERNAL, root = false, traceParent?: string | null): Promise<T> {
  const parent = traceParent ? parseTraceParent(traceParent) : null;
  const tracer = activeTracer();
  if (!tracer) {
    try {
      return work(untracedSpan(parent, root));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  const parentContext = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : root ? ROOT_CONTEXT : context.active();
  return tracer.startActiveSpan(name, { attributes, kind, root: root && !parent }, parentContext, async (span) => {
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

/**
 * The current span as a W3C `traceparent` (version 00), to be stored with work that runs
 * later in another place (an outbox event and its deliveries); null when tracing is off.
 */
export function currentTraceParent(): string | null {
  const span = trace.getActiveSpan();
  if (!span) return null;
  const { traceId, spanId, traceFlags } = span.spanContext();
  if (!isSpanContextValid({ traceId, spanId, traceFlags })) return null;
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

const TRACE_PARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A stored `traceparent` as a remote span context; null when it is not one. */
export function parseTraceParent(value: string): { traceId: string; spanId: string; traceFlags: number; isRemote: true } | null {
  const match = TRACE_PARENT.exec(value);
  if (!match) return null;
  const parsed = { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16), isRemote: true as const };
  return isSpanContextValid(parsed) ? parsed : null;
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
