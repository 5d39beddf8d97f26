/**
 * One incoming request's place in a distributed trace: its server span, started as the child of
 * the caller's `traceparent` (or as a new trace), and the trace headers its downstream calls
 * carry when no span of their own is recorded.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  type HrTime,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import {
  formatTraceparent,
  newRootContext,
  parseTraceparent,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from "./traceparent.ts";

/**
 * The W3C trace headers of one outgoing call.
 *
 * @example
 * ```ts
 * import type { TraceHeaders } from "./request_trace.ts";
 * const headers: TraceHeaders = {
 *   traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
 * };
 * ```
 */
export interface TraceHeaders {
  traceparent: string;
  /** Present when the caller sent one worth forwarding. */
  tracestate?: string;
}

/**
 * What {@linkcode startRequestTrace} started for one request.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { startRequestTrace } from "./request_trace.ts";
 *
 * const requestTrace = startRequestTrace(trace.getTracer("example"), { headers: new Headers() });
 * requestTrace.headers.traceparent; // what every downstream call sends when not recording
 * requestTrace.span.end();
 * ```
 */
export interface RequestTrace {
  /** The tracer that started it; children are started with it. */
  readonly tracer: Tracer;
  /** The request's server span; a non-recording one when nothing records. */
  readonly span: Span;
  /** A context holding {@linkcode span}: the parent of the request's child spans. */
  readonly context: Context;
  /**
   * Whether {@linkcode span} records. When it does not (no tracer provider registered, or the
   * trace not sampled), no child span is started: children would not record either.
   */
  readonly recording: boolean;
  /**
   * The trace headers of a downstream call that has no span of its own: the request's span as
   * parent (or, when nothing records, the caller's span unchanged, or a new root).
   */
  readonly headers: TraceHeaders;
  /** The `traceresponse` value: this trace and the span that served the request. */
  readonly traceresponse: string;
}

/** Options of {@linkcode startRequestTrace}. */
export interface RequestTraceOptions {
  /** The incoming request's headers, `traceparent` and `tracestate` read from them. */
  headers: Headers;
  /** The span's name; `"request"` by default (use the HTTP method and route, e.g. `GET /a/:id`). */
  name?: string;
  /** When the request arrived, in `performance.now()` time; now by default. */
  startTime?: number;
}

/**
 * Starts the server span of an incoming request as the child of its `traceparent` (a malformed
 * one is ignored and a new trace starts, as the W3C recommendation says), through `tracer`
 * (an `@opentelemetry/api` tracer: with no provider registered it records nothing and costs a
 * few small objects per request). When nothing records and the caller sent no trace, a new trace
 * id is made here all the same, so the downstream calls and the `traceresponse` share one.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { endRequestTrace, startRequestTrace } from "./request_trace.ts";
 *
 * const headers = new Headers({
 *   traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
 * });
 * const requestTrace = startRequestTrace(trace.getTracer("example"), { headers, name: "GET /" });
 * await fetch("https://downstream.example/", { headers: { ...requestTrace.headers } });
 * endRequestTrace(requestTrace, { status: 200 });
 * ```
 */
export function startRequestTrace(
  tracer: Tracer,
  { headers, name = "request", startTime }: RequestTraceOptions,
): RequestTrace {
  const tracestate = headers.get(TRACESTATE_HEADER);
  const parent = parseTraceparent(headers.get(TRACEPARENT_HEADER), tracestate);
  const parentContext = parent === undefined
    ? ROOT_CONTEXT
    : trace.setSpanContext(ROOT_CONTEXT, parent);
  const span = tracer.startSpan(
    name,
    { kind: SpanKind.SERVER, startTime: hrTimeOf(startTime ?? performance.now()) },
    parentContext,
  );
  const recording = span.isRecording();
  let own: SpanContext = span.spanContext();
  if (!isSpanContextValid(own)) own = newRootContext();
  const traceparent = formatTraceparent(own);
  const state = own.traceState?.serialize() ?? (parent === undefined ? undefined : tracestate);
  return {
    tracer,
    span,
    context: recording ? trace.setSpan(ROOT_CONTEXT, span) : parentContext,
    recording,
    headers: state ? { traceparent, tracestate: state } : { traceparent },
    traceresponse: traceparent,
  };
}

/**
 * Ends the request's span with its HTTP status: status `ERROR` for a 5xx, and an event
 * `cancelled` when the client went away first (`cancelled: true`).
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { endRequestTrace, startRequestTrace } from "./request_trace.ts";
 *
 * const requestTrace = startRequestTrace(trace.getTracer("example"), { headers: new Headers() });
 * endRequestTrace(requestTrace, { status: 503 });
 * ```
 */
export function endRequestTrace(
  { span, recording }: RequestTrace,
  { status, cancelled = false }: { status: number; cancelled?: boolean },
): void {
  if (recording) {
    span.setAttribute("http.response.status_code", status);
    if (cancelled) span.addEvent("cancelled", { "fanfare.reason": "client went away" });
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${status}` });
  }
  span.end(hrTimeOf(performance.now()));
}

/**
 * `performance.now()` time `ms` as an OpenTelemetry `HrTime` ([seconds, nanoseconds] since the
 * epoch). Pass it as every start, end and event time of related spans: the SDK anchors a time
 * it reads itself to `Date.now()` once per span, whole milliseconds apart from span to span, so
 * that a child could seem to start before its parent and the spans would disagree with the
 * gateway's own timings by up to a millisecond.
 *
 * @example
 * ```ts
 * import { hrTimeOf } from "./request_trace.ts";
 * const [seconds, nanoseconds] = hrTimeOf(performance.now());
 * ```
 */
export function hrTimeOf(ms: number): HrTime {
  const total = performance.timeOrigin + ms;
  const seconds = Math.floor(total / 1000);
  const nanoseconds = Math.min(999_999_999, Math.round((total - seconds * 1000) * 1e6));
  return [seconds, nanoseconds];
}

/**
 * Starts a child span of `parent` (a request's, or any span's context) at `startTime`
 * (`performance.now()` time; now by default), or returns `undefined` when `parent` does not
 * record.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { startChildSpan, startRequestTrace } from "./request_trace.ts";
 *
 * const requestTrace = startRequestTrace(trace.getTracer("example"), { headers: new Headers() });
 * const child = startChildSpan(requestTrace, "price", { attributes: { "fanfare.branch": "price" } });
 * child?.end();
 * ```
 */
export function startChildSpan(
  parent: Pick<RequestTrace, "tracer" | "context" | "recording">,
  name: string,
  { startTime = performance.now(), ...options }: {
    attributes?: Attributes;
    startTime?: number;
    kind?: SpanKind;
  } = {},
): Span | undefined {
  if (!parent.recording) return undefined;
  return parent.tracer.startSpan(
    name,
    { ...options, startTime: hrTimeOf(startTime) },
    parent.context,
  );
}

/**
 * The trace headers of a call made within `span`: the span as parent, the trace's `tracestate`
 * along.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { traceHeadersOf } from "./request_trace.ts";
 *
 * const span = trace.getTracer("example").startSpan("call");
 * const headers = traceHeadersOf(span); // { traceparent: "00-…" } once a provider records it
 * span.end();
 * ```
 */
export function traceHeadersOf(span: Span): TraceHeaders {
  const context = span.spanContext();
  const traceparent = formatTraceparent(context);
  const tracestate = context.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
