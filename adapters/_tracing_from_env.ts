/**
 * `tracingFromEnv`: the OpenTelemetry SDK and the OTLP/JSON exporter, set up from the standard
 * `OTEL_*` variables, and loaded only when an endpoint is set.
 *
 * It lives with the adapters, not in `src/tracing/`: a bundler follows a dynamic `import()` even
 * in code that is never called, so any entry point re-exporting it would carry the SDK (and, for
 * a neutral platform, fail on its Node-only resource detectors).
 *
 * @module
 */
import type { Tracer, TracerProvider } from "@opentelemetry/api";
import { OtlpJsonExporter, TRACER_NAME } from "../src/tracing/mod.ts";

/**
 * What {@linkcode tracingFromEnv} set up.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { tracingFromEnv } from "./_tracing_from_env.ts";
 *
 * const tracing = await tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" });
 * if (tracing !== undefined) trace.setGlobalTracerProvider(tracing.provider);
 * await tracing?.shutdown();
 * ```
 */
export interface Tracing {
  /** The SDK's provider, to register with `trace.setGlobalTracerProvider`. */
  readonly provider: TracerProvider;
  /** fanfare's tracer from {@linkcode provider}. */
  readonly tracer: Tracer;
  /** Where spans go: the collector's traces URL. */
  readonly url: string;
  /** Sends every finished span now; on Workers hand it to `waitUntil` after each request. */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * The standard OpenTelemetry variables {@linkcode tracingFromEnv} reads; all are optional.
 *
 * @example
 * ```ts
 * import type { TracingEnv } from "./_tracing_from_env.ts";
 * const env: TracingEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
 * ```
 */
export interface TracingEnv {
  /** The collector's base URL; traces go to `<it>/v1/traces`. */
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  /** The traces URL itself, used as given (wins over the base URL). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
  /** `key=value` pairs, comma-separated, values URL-encoded: sent with every export. */
  OTEL_EXPORTER_OTLP_HEADERS?: string;
  /** Same, for traces only; wins over the general headers of the same name. */
  OTEL_EXPORTER_OTLP_TRACES_HEADERS?: string;
  /** The resource's `service.name`; `fanfare-gateway` by default. */
  OTEL_SERVICE_NAME?: string;
  /** ms between two scheduled exports of the batch processor; 5000 by default. */
  OTEL_BSP_SCHEDULE_DELAY?: string;
  /** `true` turns tracing off whatever else is set. */
  OTEL_SDK_DISABLED?: string;
}

/**
 * Sets up span export when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set, and
 * resolves `undefined` otherwise, without loading any of it: the SDK (`@opentelemetry/sdk-trace-base`,
 * `@opentelemetry/resources`) is imported dynamically here and nowhere else. Spans are batched
 * (`BatchSpanProcessor`) and sent as OTLP/JSON with `fetch` ({@linkcode OtlpJsonExporter}); the
 * sampler is the SDK's default, parent-based and always on, so a caller's `traceparent` with the
 * sampled flag off is not recorded. Registering the provider globally is the caller's choice.
 * A bad variable throws a `TypeError` naming it.
 *
 * @example
 * ```ts
 * import { tracingFromEnv } from "./_tracing_from_env.ts";
 *
 * const tracing = await tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" });
 * tracing?.url; // "http://127.0.0.1:4318/v1/traces"
 * await tracing?.shutdown();
 * ```
 */
export async function tracingFromEnv(
  env: TracingEnv,
  { fetch: send }: { fetch?: (request: Request) => Promise<Response> } = {},
): Promise<Tracing | undefined> {
  const url = tracesUrl(env);
  if (url === undefined || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  const headers = {
    ...parseHeaders("OTEL_EXPORTER_OTLP_HEADERS", env.OTEL_EXPORTER_OTLP_HEADERS),
    ...parseHeaders("OTEL_EXPORTER_OTLP_TRACES_HEADERS", env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
  };
  const delayText = env.OTEL_BSP_SCHEDULE_DELAY ?? "5000";
  const scheduledDelayMillis = Number(delayText);
  if (!Number.isFinite(scheduledDelayMillis) || scheduledDelayMillis < 0 || delayText === "") {
    throw new TypeError(
      `Cannot set up tracing as 'OTEL_BSP_SCHEDULE_DELAY' must be a non-negative number of ms: current value is ${delayText}`,
    );
  }
  const exporter = new OtlpJsonExporter({ url, headers, fetch: send });
  const [{ BasicTracerProvider, BatchSpanProcessor }, { resourceFromAttributes }] = await Promise
    .all([import("@opentelemetry/sdk-trace-base"), import("@opentelemetry/resources")]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": env.OTEL_SERVICE_NAME || "fanfare-gateway",
    }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis })],
  });
  return {
    provider,
    tracer: provider.getTracer(TRACER_NAME),
    url,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** The traces URL the variables name, or `undefined` when none is set. */
function tracesUrl(env: TracingEnv): string | undefined {
  const own = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (own) return checkedUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", own);
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return undefined;
  // The specification: the signal's path is appended to the base URL, whatever path it has.
  return checkedUrl("OTEL_EXPORTER_OTLP_ENDPOINT", `${base.replace(/\/+$/, "")}/v1/traces`);
}

function checkedUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(
      `Cannot set up tracing as '${name}' must be an http(s) URL: current value is ${value}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(
      `Cannot set up tracing as '${name}' must be an http(s) URL: current value is ${value}`,
    );
  }
  return url.href;
}

/** `a=1,b=x%20y` as `{ a: "1", b: "x y" }`; a pair without `=` throws naming the variable. */
function parseHeaders(name: string, value: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (value === undefined || value.trim() === "") return headers;
  for (const pair of value.split(",")) {
    const at = pair.indexOf("=");
    const key = pair.slice(0, at).trim();
    if (at < 1 || key === "") {
      throw new TypeError(
        `Cannot set up tracing as '${name}' must be comma-separated key=value pairs: current value has '${pair.trim()}'`,
      );
    }
    headers[key.toLowerCase()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}
