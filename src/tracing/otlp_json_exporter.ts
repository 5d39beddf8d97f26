/**
 * `OtlpJsonExporter`: the OpenTelemetry SDK's `SpanExporter` contract, sending spans as OTLP/JSON
 * over HTTP with `fetch`, so the same exporter runs on Deno, Bun and Cloudflare Workers.
 *
 * Why not `@opentelemetry/exporter-trace-otlp-http` (checked at 0.223): Deno and Bun resolve its
 * Node build, which sends over `node:http` through an agent of its own (kept-alive sockets a
 * Worker does not have and a test's resource sanitizer reports); only bundlers that read the
 * `browser` field get its `fetch` transport. And that build serialises through
 * `@opentelemetry/otlp-transformer`'s entry point, whose protobuf code comes along even for JSON:
 * about 24 KiB gzipped, which the gateway Worker has no room for. The encoding here is the
 * OTLP/JSON mapping of the SDK's `ReadableSpan` (hex ids, integer enums, 64-bit integers as
 * decimal strings), checked against the SDK's own JSON serializer in the tests.
 *
 * @module
 */
import type { Attributes, AttributeValue, HrTime, Link } from "@opentelemetry/api";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

/** The SDK's `ExportResult` (from `@opentelemetry/core`): 0 for success, 1 for failure. */
interface ExportResult {
  code: 0 | 1;
  error?: Error;
}

/**
 * Options of {@linkcode OtlpJsonExporter}.
 *
 * @example
 * ```ts
 * import type { OtlpJsonExporterOptions } from "./otlp_json_exporter.ts";
 * const options: OtlpJsonExporterOptions = {
 *   url: "http://127.0.0.1:4318/v1/traces",
 *   headers: { "x-honeycomb-team": "key" },
 * };
 * ```
 */
export interface OtlpJsonExporterOptions {
  /** The collector's traces URL, e.g. `http://collector:4318/v1/traces`. */
  url: string;
  /** Extra request headers (an API key, say). */
  headers?: Record<string, string>;
  /** Longest an export may take, in ms; 10,000 by default (the OTLP default). */
  timeoutMs?: number;
  /** The `fetch` to send with; the global one by default. */
  fetch?: (request: Request) => Promise<Response>;
}

/**
 * Sends batches of finished spans to an OTLP/HTTP collector as JSON (`POST`,
 * `content-type: application/json`), one request per batch, each bounded by `timeoutMs`. A
 * batch the collector refuses (non-2xx) or that cannot be sent is reported failed to the span
 * processor and dropped: tracing never retries at the cost of the requests it observes.
 * `forceFlush()` and `shutdown()` resolve when every batch under way has been answered.
 *
 * @example
 * ```ts
 * import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
 * import { OtlpJsonExporter } from "./otlp_json_exporter.ts";
 *
 * const exporter = new OtlpJsonExporter({ url: "http://127.0.0.1:4318/v1/traces" });
 * const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
 * provider.getTracer("example").startSpan("work").end();
 * await provider.shutdown();
 * ```
 */
export class OtlpJsonExporter implements SpanExporter {
  #url: string;
  #headers: Record<string, string>;
  #timeoutMs: number;
  #fetch: (request: Request) => Promise<Response>;
  #pending = new Set<Promise<void>>();
  #stopped = false;

  constructor(
    { url, headers = {}, timeoutMs = 10_000, fetch: send = (r) => fetch(r) }:
      OtlpJsonExporterOptions,
  ) {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError(
        `Cannot create the OTLP exporter as 'url' must be an http(s) URL: current value is ${url}`,
      );
    }
    this.#url = parsed.href;
    this.#headers = { ...headers, "content-type": "application/json" };
    this.#timeoutMs = timeoutMs;
    this.#fetch = send;
  }

  /** Sends `spans` as one OTLP/JSON request; `done` hears how it went. */
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.#stopped) {
      done({ code: 1, error: new Error("Cannot export spans as the exporter was shut down") });
      return;
    }
    const sending = this.#send(spans).then(
      () => done({ code: 0 }),
      (error) =>
        done({ code: 1, error: error instanceof Error ? error : new Error(String(error)) }),
    );
    this.#pending.add(sending);
    sending.finally(() => this.#pending.delete(sending));
  }

  /** Resolves when every batch under way has been answered. */
  async forceFlush(): Promise<void> {
    await Promise.all(this.#pending);
  }

  /** Refuses further batches and waits for those under way. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    await this.forceFlush();
  }

  async #send(spans: ReadableSpan[]): Promise<void> {
    const response = await this.#fetch(
      new Request(this.#url, {
        method: "POST",
        headers: this.#headers,
        body: JSON.stringify(toOtlpJson(spans)),
        signal: AbortSignal.timeout(this.#timeoutMs),
      }),
    );
    // Nothing in an OTLP answer changes what is sent next; the body is drained to free it.
    await response.body?.cancel();
    if (!response.ok) {
      throw new Error(
        `Cannot export spans as the collector answered ${response.status}: check the endpoint ${this.#url}`,
      );
    }
  }
}

/** OTLP/JSON's `AnyValue`. */
type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } };

/** OTLP/JSON's `KeyValue`. */
interface KeyValue {
  key: string;
  value: AnyValue;
}

/**
 * The OTLP/JSON `ExportTraceServiceRequest` body of `spans`: grouped by resource, then by
 * instrumentation scope, in the order first seen.
 *
 * @example
 * ```ts
 * import { toOtlpJson } from "./otlp_json_exporter.ts";
 * toOtlpJson([]); // { resourceSpans: [] }
 * ```
 */
export function toOtlpJson(spans: readonly ReadableSpan[]): { resourceSpans: unknown[] } {
  const byResource = new Map<ReadableSpan["resource"], Map<string, ReadableSpan[]>>();
  for (const span of spans) {
    let scopes = byResource.get(span.resource);
    if (scopes === undefined) byResource.set(span.resource, scopes = new Map());
    const { name, version = "", schemaUrl = "" } = span.instrumentationScope;
    const key = `${name}@${version}@${schemaUrl}`;
    const list = scopes.get(key);
    if (list === undefined) scopes.set(key, [span]);
    else list.push(span);
  }
  const resourceSpans = [];
  for (const [resource, scopes] of byResource) {
    resourceSpans.push({
      resource: { attributes: keyValues(resource.attributes), droppedAttributesCount: 0 },
      scopeSpans: [...scopes.values()].map((list) => {
        const { name, version, schemaUrl } = list[0].instrumentationScope;
        return {
          scope: { name, version },
          spans: list.map(spanJson),
          ...(schemaUrl === undefined ? {} : { schemaUrl }),
        };
      }),
      ...(resource.schemaUrl === undefined ? {} : { schemaUrl: resource.schemaUrl }),
    });
  }
  return { resourceSpans };
}

function spanJson(span: ReadableSpan) {
  const context = span.spanContext();
  const parent = span.parentSpanContext;
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    ...(parent === undefined ? {} : { parentSpanId: parent.spanId }),
    ...(context.traceState === undefined ? {} : { traceState: context.traceState.serialize() }),
    name: span.name,
    // The API counts kinds from INTERNAL = 0, OTLP from SPAN_KIND_INTERNAL = 1.
    kind: span.kind + 1,
    startTimeUnixNano: nanos(span.startTime),
    endTimeUnixNano: nanos(span.endTime),
    attributes: keyValues(span.attributes),
    droppedAttributesCount: span.droppedAttributesCount,
    events: span.events.map((event) => ({
      timeUnixNano: nanos(event.time),
      name: event.name,
      attributes: keyValues(event.attributes ?? {}),
      droppedAttributesCount: event.droppedAttributesCount ?? 0,
    })),
    droppedEventsCount: span.droppedEventsCount,
    status: span.status.message === undefined
      ? { code: span.status.code }
      : { code: span.status.code, message: span.status.message },
    links: span.links.map((link: Link) => ({
      traceId: link.context.traceId,
      spanId: link.context.spanId,
      attributes: keyValues(link.attributes ?? {}),
      droppedAttributesCount: link.droppedAttributesCount ?? 0,
    })),
    droppedLinksCount: span.droppedLinksCount,
    // W3C trace flags, then "whether the parent is remote" known (0x100) and its answer (0x200).
    flags: (context.traceFlags & 0xff) | 0x100 | (parent?.isRemote ? 0x200 : 0),
  };
}

/** An `HrTime` ([seconds, nanoseconds]) as OTLP/JSON's decimal string of nanoseconds. */
function nanos([seconds, nanoseconds]: HrTime): string {
  return (BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds)).toString();
}

function keyValues(attributes: Attributes): KeyValue[] {
  const list: KeyValue[] = [];
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined) list.push({ key, value: anyValue(value) });
  }
  return list;
}

function anyValue(value: AttributeValue | null | undefined): AnyValue {
  switch (typeof value) {
    case "string":
      return { stringValue: value };
    case "boolean":
      return { boolValue: value };
    case "number":
      return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
    default:
      if (Array.isArray(value)) return { arrayValue: { values: value.map(anyValue) } };
      return { stringValue: String(value) };
  }
}
