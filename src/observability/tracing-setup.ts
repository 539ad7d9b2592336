import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import packageJson from '../../package.json' with { type: 'json' };
import type { Env } from '../config/env.js';
import { tracesExporterKind } from './tracing.js';

export interface Tracing {
  /** Sends the spans still buffered. */
  flush(): Promise<void>;
  /** Flushes the spans still buffered; call before the process exits. */
  shutdown(): Promise<void>;
}

/**
 * Registers the OpenTelemetry SDK as the process's tracer provider (Node only). The OTLP
 * exporter reads its own OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout), as
 * every OpenTelemetry SDK does; spans are batched and sent off the request path.
 */
export function startTracing(env: Env, options: { exporter?: SpanExporter } = {}): Tracing | null {
  const kind = options.exporter ? 'custom' : tracesExporterKind(env);
  if (!kind) return null;
  const exporter = options.exporter ?? (kind === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter());
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME, 'service.version': packageJson.version }),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  });
  // Parent spans follow the request through awaits.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return {
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown().catch(() => {});
      trace.disable();
      context.disable();
    },
  };
}
