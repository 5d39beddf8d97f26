/**
 * The gateway's request span: a Hono middleware that starts it from the incoming W3C trace
 * headers, hands it to the route (`c.get("trace")`), answers with `traceresponse`, and ends it
 * with the status.
 *
 * @module
 */
import type { Tracer } from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import {
  endRequestTrace,
  type RequestTrace,
  startRequestTrace,
  TRACERESPONSE_HEADER,
} from "../src/tracing/mod.ts";

/** Status of an answer to a client that went away (nginx's 499), as the product route sets it. */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * Traces each request it sees with `tracer` as a server span named `GET <route>`, the child of
 * the caller's `traceparent` (a malformed one is ignored and a new trace starts, never a 4xx):
 * the span is set as `trace` for the handler (which passes it to `scatterGather`), the answer
 * carries `traceresponse: 00-<trace id>-<span id>-<flags>`, and the span ends with the status
 * (`ERROR` from 500 on; an event `cancelled` for a client that went away). With no tracer
 * provider registered nothing is recorded, and the trace headers still flow.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { Hono } from "hono";
 * import { traceRequests } from "./tracing.ts";
 *
 * const app = new Hono<{ Variables: { trace: import("../src/tracing/mod.ts").RequestTrace } }>()
 *   .use("/a/:id", traceRequests({ tracer: trace.getTracer("example"), route: "/a/:id" }))
 *   .get("/a/:id", (c) => c.json({ traceparent: c.get("trace").headers.traceparent }));
 * ```
 */
export function traceRequests(
  { tracer, route }: { tracer: Tracer; route: string },
): MiddlewareHandler<{ Variables: { trace: RequestTrace; receivedAt: number } }> {
  const name = `GET ${route}`;
  return async function traceRequest(c, next) {
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
    c.set("trace", requestTrace);
    let status = 500;
    try {
      await next();
      status = c.res.status;
      // Set on the answer the handler made (c.json's, whose headers are mutable), rather than
      // prepared with c.header() before it: Hono then merges prepared headers into a new
      // Headers object, or, after the answer exists, copies the whole Response.
      try {
        c.res.headers.set(TRACERESPONSE_HEADER, requestTrace.traceresponse);
      } catch {
        c.header(TRACERESPONSE_HEADER, requestTrace.traceresponse);
      }
    } finally {
      endRequestTrace(requestTrace, { status, cancelled: status === CLIENT_CLOSED_REQUEST });
    }
  };
}
