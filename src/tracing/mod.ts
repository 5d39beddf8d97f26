/**
 * Distributed tracing: W3C Trace Context headers (`traceparent`, `tracestate`, `traceresponse`),
 * a request's server span and its children through `@opentelemetry/api` (no-ops unless a tracer
 * provider is registered), and an OTLP/JSON `fetch` exporter for the SDK ({@linkcode OtlpJsonExporter};
 * the adapters load the SDK with it only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { endRequestTrace, startRequestTrace } from "./mod.ts";
 *
 * const requestTrace = startRequestTrace(trace.getTracer("fanfare"), {
 *   headers: new Headers({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }),
 * });
 * await fetch("https://downstream.example/", { headers: { ...requestTrace.headers } });
 * endRequestTrace(requestTrace, { status: 200 });
 * ```
 *
 * @module
 */
export {
  formatTraceparent,
  newRootContext,
  parseTraceparent,
  TRACEPARENT_HEADER,
  TRACERESPONSE_HEADER,
  TRACESTATE_HEADER,
} from "./traceparent.ts";
export {
  endRequestTrace,
  hrTimeOf,
  type RequestTrace,
  type RequestTraceOptions,
  startChildSpan,
  startRequestTrace,
  type TraceHeaders,
  traceHeadersOf,
} from "./request_trace.ts";
export {
  OtlpJsonExporter,
  type OtlpJsonExporterOptions,
  toOtlpJson,
} from "./otlp_json_exporter.ts";
export { defaultTracer, TRACER_NAME } from "./default_tracer.ts";
