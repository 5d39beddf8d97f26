/**
 * The gateway's request span: a wrapper of the route's answer that starts it from the incoming
 * W3C trace headers, hands it to the route, answers with `traceresponse`, and ends it with the
 * status.
 *
 * @module
 */
import type { Tracer } from "@opentelemetry/api";
import type { Context } from "hono";
import {
  endRequestTrace,
  type RequestTrace,
  startRequestTrace,
  TRACERESPONSE_HEADER,
} from "../src/tracing/mod.ts";

/** Status of an answer to a client that went away (nginx's 499), as the product route sets it. */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * Answers a request through `answer` inside its server span.
 *
 * @example
 * ```ts
 * import type { TracedAnswer } from "./tracing.ts";
 * const passThrough: TracedAnswer = (_c, answer) => answer(undefined);
 * ```
 */
export type TracedAnswer = (
  c: Context,
  answer: (trace: RequestTrace | undefined) => Promise<Response>,
) => Promise<Response>;

/**
 * Traces each request it is given with `tracer` as a server span named `GET <route>`, the child
 * of the caller's `traceparent` (a malformed one is ignored and a new trace starts, never a
 * 4xx): `answer` gets the span (the product route passes it to `scatterGather`), the answer
 * carries `traceresponse: 00-<trace id>-<span id>-<flags>`, and the span ends with the status
 * (`ERROR` from 500 on, or when `answer` throws; an event `cancelled` for a client that went
 * away). With no tracer provider registered nothing is recorded, and the trace headers still
 * flow. The span starts at the context variable `receivedAt` when set.
 *
 * A function the route calls rather than a middleware: each Hono middleware hop costs a
 * dispatch and a promise on every request.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { Hono } from "hono";
 * import { traceRequests } from "./tracing.ts";
 *
 * const traced = traceRequests({ tracer: trace.getTracer("example"), route: "/a/:id" });
 * const app = new Hono().get(
 *   "/a/:id",
 *   (c) => traced(c, async (span) => c.json({ traceparent: span?.headers.traceparent })),
 * );
 * ```
 */
export function traceRequests({ tracer, route }: { tracer: Tracer; route: string }): TracedAnswer {
  const name = `GET ${route}`;
  return async function traceRequest(c, answer) {
    const requestTrace = startRequestTrace(tracer, {
      headers: c.req.raw.headers,
      name,
      startTime: c.get("receivedAt"),
    });
    // Only for a span that records: a request nothing records builds no attributes.
    if (requestTrace.recording) {
      requestTrace.span.setAttributes({
        "http.request.method": c.req.method,
        "http.route": route,
        "url.path": c.req.path,
      });
    }
    let status = 500;
    try {
      const response = await answer(requestTrace);
      status = response.status;
      // Set on the answer the handler made (c.json's, whose headers are mutable); a response
      // whose headers are immutable is copied.
      try {
        response.headers.set(TRACERESPONSE_HEADER, requestTrace.traceresponse);
        return response;
      } catch {
        const copy = new Response(response.body, response);
        copy.headers.set(TRACERESPONSE_HEADER, requestTrace.traceresponse);
        return copy;
      }
    } finally {
      endRequestTrace(requestTrace, { status, cancelled: status === CLIENT_CLOSED_REQUEST });
    }
  };
}
