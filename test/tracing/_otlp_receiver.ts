/**
 * A test OTLP/HTTP receiver: a small server on 127.0.0.1 that takes `POST /v1/traces` with an
 * OTLP/JSON body, keeps every span it decodes, and answers 200 `{}` as a collector does.
 *
 * @example
 * ```ts
 * import { startOtlpReceiver } from "./_otlp_receiver.ts";
 *
 * const receiver = startOtlpReceiver();
 * // point an exporter at receiver.endpoint (the base URL, as OTEL_EXPORTER_OTLP_ENDPOINT)
 * receiver.spans(); // every span received so far
 * await receiver.close();
 * ```
 *
 * @module
 */

/** One decoded OTLP/JSON attribute value. */
// deno-lint-ignore no-explicit-any -- OTLP's AnyValue, checked by the assertions.
export type OtlpValue = Record<string, any>;

/** One span as received, with its resource's and scope's names beside it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  /** Attributes decoded to plain values (ints as numbers). */
  attributes: Record<string, unknown>;
  events: { name: string; timeUnixNano: string; attributes: Record<string, unknown> }[];
  status: { code: number; message?: string };
  serviceName: unknown;
  scope: string;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it. */
  readonly endpoint: string;
  /** Every span received so far, in arrival order. */
  spans(): ReceivedSpan[];
  /** Raw bodies received, parsed. */
  bodies(): unknown[];
  close(): Promise<void>;
}

/** Starts a receiver on a free port of 127.0.0.1. */
export function startOtlpReceiver(): OtlpReceiver {
  const received: ReceivedSpan[] = [];
  const bodies: unknown[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async function receive(request) {
      const { pathname } = new URL(request.url);
      if (request.method !== "POST" || pathname !== "/v1/traces") {
        await request.body?.cancel();
        return new Response("not found", { status: 404 });
      }
      if (request.headers.get("content-type") !== "application/json") {
        await request.body?.cancel();
        return new Response("unsupported media type", { status: 415 });
      }
      const body = await request.json();
      bodies.push(body);
      for (const resourceSpans of body.resourceSpans ?? []) {
        const resource = decode(resourceSpans.resource?.attributes ?? []);
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            received.push({
              ...span,
              attributes: decode(span.attributes ?? []),
              events: (span.events ?? []).map((event: OtlpValue) => ({
                ...event,
                attributes: decode(event.attributes ?? []),
              })),
              serviceName: resource["service.name"],
              scope: scopeSpans.scope?.name,
            });
          }
        }
      }
      return Response.json({});
    },
  );
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    spans: () => [...received],
    bodies: () => [...bodies],
    close: () => server.shutdown(),
  };
}

function decode(attributes: { key: string; value: OtlpValue }[]): Record<string, unknown> {
  return Object.fromEntries(attributes.map(({ key, value }) => [key, plain(value)]));
}

function plain(value: OtlpValue): unknown {
  if ("stringValue" in value) return value.stringValue;
  if ("boolValue" in value) return value.boolValue;
  if ("intValue" in value) return Number(value.intValue);
  if ("doubleValue" in value) return value.doubleValue;
  if ("arrayValue" in value) return (value.arrayValue.values ?? []).map(plain);
  return value;
}
