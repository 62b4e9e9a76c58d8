// OpenTelemetry tracing, exported over OTLP/HTTP only when an endpoint is configured (the
// configuration's value, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
// OTEL_EXPORTER_OTLP_ENDPOINT); otherwise every span is a no-op and nothing is sent.
// `withSpan` wraps a step or a provider call: the span is active across its awaits (an
// AsyncLocalStorage context manager, so nested withSpan calls become children), records an
// exception (its message scrubbed of secrets) and ends with status ERROR or OK.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ROOT_CONTEXT,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
} from '@opentelemetry/api';

/** The tracer every lc2-backup span comes from. */
export const tracerName = 'lc2-backup';

/**
 * Keeps the active context across awaits with AsyncLocalStorage (what
 * @opentelemetry/context-async-hooks provides; that package is not a dependency here).
 */
export class AsyncLocalStorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args));
  }

  /** Binds functions; other targets (event emitters) are returned unchanged. */
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    const bound = (...args: unknown[]): unknown => this.#storage.run(ctx, () => fn(...args));
    return bound as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#storage.disable();
    return this;
  }
}

export interface TracingOptions {
  /** The collector's base URL (`/v1/traces` is appended), e.g. http://otel-collector:4318. */
  endpoint?: string;
  serviceName?: string;
  serviceVersion?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied to exception messages and string attributes (e.g. SecretScrubber.scrub). */
  scrub?: (text: string) => string;
  /** How often batched spans are sent (default 5000 ms). */
  exportDelayMs?: number;
}

export interface Tracing {
  /** Whether spans are exported (an endpoint was configured). */
  readonly enabled: boolean;
  /** Where spans go, when enabled. */
  readonly url: string | undefined;
  /** Sends the spans ended so far. */
  flush(): Promise<void>;
  /** Sends what is left and unregisters the provider (call on shutdown). */
  shutdown(): Promise<void>;
}

const identity = (text: string): string => text;
let scrubText: (text: string) => string = identity;
let started = false;

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function checkedUrl(base: string, what: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new Error(`tracing: ${what} "${base}" is not a URL (expected e.g. http://otel-collector:4318)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`tracing: ${what} "${base}" must be an http:// or https:// URL (OTLP over HTTP)`);
  }
  return url.toString();
}

/**
 * The OTLP/HTTP traces URL, or undefined when tracing is off: `endpoint` (a base URL), else
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else OTEL_EXPORTER_OTLP_ENDPOINT (a base URL).
 */
export function tracesUrl(
  endpoint: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const append = (base: string, what: string): string =>
    `${checkedUrl(base, what).replace(/\/+$/, '')}/v1/traces`;
  const configured = nonEmpty(endpoint);
  if (configured !== undefined) return append(configured, 'endpoint');
  const traces = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (traces !== undefined) return checkedUrl(traces, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (base !== undefined) return append(base, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  return undefined;
}

const disabled: Tracing = {
  enabled: false,
  url: undefined,
  flush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/**
 * Registers a tracer provider exporting to the configured endpoint; without one, returns a
 * disabled Tracing and registers nothing (spans stay no-ops). Once per process at a time. The
 * SDK and the exporter (~600 modules) are loaded only when tracing is on.
 */
export async function startTracing(options: TracingOptions = {}): Promise<Tracing> {
  const url = tracesUrl(options.endpoint, options.env ?? process.env);
  scrubText = options.scrub ?? identity;
  if (url === undefined) return disabled;
  if (started) throw new Error('tracing: already started; call shutdown() on the running Tracing first');
  started = true;
  try {
    return await register(url, options);
  } catch (err) {
    started = false;
    throw err;
  }
}

async function register(url: string, options: TracingOptions): Promise<Tracing> {
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, TracerProvider }] =
    await Promise.all([
      import('@opentelemetry/exporter-trace-otlp-http'),
      // a dependency of @opentelemetry/sdk-trace (same release); TracerProvider takes its Resource
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace'),
    ]);
  const exporter = new OTLPTraceExporter({ url });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName ?? 'lc2-backup',
      ...(options.serviceVersion === undefined ? {} : { 'service.version': options.serviceVersion }),
    }),
    spanProcessors: [
      new BatchSpanProcessor({ exporter, scheduledDelayMillis: options.exportDelayMs ?? 5000 }),
    ],
  });
  const contextManager = new AsyncLocalStorageContextManager();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    enabled: true,
    url,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        scrubText = identity;
        started = false;
      }
    },
  };
}

function safeAttributes(attributes: Attributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    out[key] = typeof value === 'string' ? scrubText(value) : value;
  }
  return out;
}

/**
 * Runs `fn` inside a span named `name` (active for everything `fn` awaits, so inner spans are
 * its children). A thrown error is recorded on the span (scrubbed), sets status ERROR and is
 * rethrown; otherwise the status is OK.
 */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  return trace
    .getTracer(tracerName)
    .startActiveSpan(name, { attributes: safeAttributes(attributes) }, async (span) => {
      try {
        const result = await fn(span);
        span.setStatus({ code: SpanStatusCode.OK });
        return result;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        const message = scrubText(error.message);
        span.recordException({
          name: error.name,
          message,
          ...(error.stack === undefined ? {} : { stack: scrubText(error.stack) }),
        });
        span.setStatus({ code: SpanStatusCode.ERROR, message });
        throw err;
      } finally {
        span.end();
      }
    });
}
