/**
 * Distributed tracing of the in-process gateway: W3C trace headers to every downstream call and
 * a span tree (request, branch, attempt) sent to a test OTLP receiver.
 */
import { assert, assertEquals } from "./_assert.ts";
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import { DownstreamCalls, type ReceivedCall } from "../sim/downstream_calls.ts";
import { defaultRegistry } from "../src/gateway/branch_registry.ts";
import type { Fetcher } from "../src/gateway/fetcher.ts";
import { parseTraceparent } from "../src/tracing/mod.ts";
import { tracingFromEnv } from "../adapters/_tracing_from_env.ts";
import type { Tracer } from "@opentelemetry/api";
import { type ReceivedSpan, startOtlpReceiver } from "./tracing/_otlp_receiver.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`;
const BRANCHES = ["price", "inventory", "reviews", "recommendations", "shipping"];

/**
 * The simulated downstream in process, answering at once, except: reviews fails (500), shipping
 * sleeps past its 200 ms timeout, and the primary call of recommendations (hedged after 1 ms)
 * sleeps until aborted while its hedge answers at once.
 */
function scriptedDownstream() {
  const calls = new DownstreamCalls();
  const app = createDownstream({ tailEvery: 0, calls });
  const fetcher: Fetcher = {
    fetch(request) {
      const url = new URL(request.url);
      const branch = url.pathname.split("/")[1];
      const primary = !url.searchParams.has("attempt");
      const slow = branch === "shipping" || (branch === "recommendations" && primary);
      url.searchParams.set("latencyMs", slow ? "10000" : "0");
      if (branch === "reviews") url.searchParams.set("fail", "1");
      return app.fetch(new Request(url, request));
    },
  };
  return { fetcher, calls };
}

/** A gateway over {@linkcode scriptedDownstream} with recommendations hedged, and its tracing. */
async function tracedGateway(endpoint: string) {
  const tracing = (await tracingFromEnv({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_SERVICE_NAME: "gateway-under-test",
  }))!;
  const { fetcher, calls } = scriptedDownstream();
  const registry = defaultRegistry(fetcher, { hedge: { recommendations: { delay: 1 } } });
  const app = createApp({ registry, tracer: tracing.tracer });
  return { app, calls, tracing };
}

function byName(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((span) => span.name === name);
  assertEquals(found.length, 1, `one span named ${name}: ${spans.map((s) => s.name)}`);
  return found[0];
}

Deno.test("a traced request sends a span tree whose attempts are the downstream calls' parents", async () => {
  const receiver = startOtlpReceiver();
  const { app, calls, tracing } = await tracedGateway(receiver.endpoint);
  try {
    const response = await app.request("/product/sku-7?budget=1000", {
      headers: { traceparent: TRACEPARENT, tracestate: "vendor=opaque" },
    });
    const body = await response.json();
    assertEquals(response.status, 200, JSON.stringify(body));
    assertEquals(body.reasons.reviews, "error: Downstream 'reviews' answered 500");
    assertEquals(body.reasons.shipping, "timeout");
    assertEquals(body.timings.recommendations.winner, 2);
    await tracing.flush();
    const spans = receiver.spans();

    // The request's span continues the caller's trace and answers with it.
    const request = byName(spans, "GET /product/:id");
    assertEquals(request.traceId, TRACE_ID);
    assertEquals(request.parentSpanId, CALLER_SPAN_ID);
    assertEquals(request.kind, 2); // SERVER
    assertEquals(request.serviceName, "gateway-under-test");
    assertEquals(request.attributes["http.response.status_code"], 200);
    assertEquals(response.headers.get("traceresponse"), `00-${TRACE_ID}-${request.spanId}-01`);
    assert(spans.every((span) => span.traceId === TRACE_ID), "every span is of the caller's trace");

    // One span per branch under the request, with its outcome.
    for (const name of BRANCHES) assertEquals(byName(spans, name).parentSpanId, request.spanId);
    assertEquals(byName(spans, "reviews").attributes["fanfare.outcome"], "error");
    assertEquals(byName(spans, "reviews").status.code, 2);
    assertEquals(byName(spans, "shipping").attributes["fanfare.outcome"], "timeout");
    assertEquals(byName(spans, "shipping").status, { code: 2, message: "timeout" });
    assert(byName(spans, "shipping").events.some((event) => event.name === "timeout"));
    assertEquals(byName(spans, "recommendations").attributes["fanfare.hedged"], true);
    assertEquals(byName(spans, "recommendations").attributes["fanfare.winner"], 2);
    assertEquals(
      byName(spans, "price").attributes["fanfare.deadline_ms"],
      body.timings.price.deadlineMs,
    );

    // One span per attempt under its branch; the hedge won and the primary was cut.
    const attempts = spans.filter((span) => span.name.includes(" attempt "));
    assertEquals(attempts.map((span) => span.name).sort(), [
      "inventory attempt 1",
      "price attempt 1",
      "recommendations attempt 1",
      "recommendations attempt 2",
      "reviews attempt 1",
      "shipping attempt 1",
    ]);
    for (const attempt of attempts) {
      const branch = attempt.attributes["fanfare.branch"] as string;
      assertEquals(attempt.parentSpanId, byName(spans, branch).spanId, attempt.name);
    }
    const primary = byName(spans, "recommendations attempt 1");
    const hedge = byName(spans, "recommendations attempt 2");
    assertEquals(primary.attributes["fanfare.attempt.kind"], "primary");
    assertEquals(primary.attributes["fanfare.hedge.role"], "loser-aborted");
    assertEquals(primary.attributes["fanfare.outcome"], "aborted");
    assert(primary.events.some((event) => event.name === "cancelled"));
    assertEquals(hedge.attributes["fanfare.attempt.kind"], "hedge");
    assertEquals(hedge.attributes["fanfare.hedge.role"], "winner");
    assertEquals(byName(spans, "shipping attempt 1").attributes["fanfare.outcome"], "timeout");

    // Every downstream call carried a child of the request's span: its own attempt's span.
    const received = calls.snapshot({ id: "sku-7" });
    assertEquals(received.length, attempts.length);
    const attemptIds = new Set(attempts.map((span) => span.spanId));
    for (const call of received) {
      const parent = parseTraceparent(call.traceparent);
      assertEquals(parent?.traceId, TRACE_ID, JSON.stringify(call));
      assert(
        attemptIds.delete(parent!.spanId),
        `an attempt span per call: ${JSON.stringify(call)}`,
      );
      assertEquals(call.tracestate, "vendor=opaque");
    }
  } finally {
    await tracing.shutdown();
    await receiver.close();
  }
});

Deno.test("the branch spans end where the answer's waterfall says the branches ended", async () => {
  const receiver = startOtlpReceiver();
  const { app, tracing } = await tracedGateway(receiver.endpoint);
  try {
    const response = await app.request("/product/sku-8?budget=1000", {
      headers: { traceparent: TRACEPARENT },
    });
    const { timings } = await response.json();
    await tracing.flush();
    const spans = receiver.spans();
    const start = BigInt(byName(spans, "GET /product/:id").startTimeUnixNano);
    for (const name of BRANCHES) {
      const endMs = Number(BigInt(byName(spans, name).endTimeUnixNano) - start) / 1e6;
      // The answer rounds to the µs.
      assert(
        Math.abs(endMs - timings[name].endMs) < 0.002,
        `${name}: ${endMs} vs ${timings[name].endMs}`,
      );
    }
  } finally {
    await tracing.shutdown();
    await receiver.close();
  }
});

Deno.test("a malformed traceparent is ignored: a new trace starts and the answer is not an error", async () => {
  const receiver = startOtlpReceiver();
  const { app, calls, tracing } = await tracedGateway(receiver.endpoint);
  const malformed = {
    "wrong length": `00-${TRACE_ID}-${CALLER_SPAN_ID}-1`,
    "version ff": `ff-${TRACE_ID}-${CALLER_SPAN_ID}-01`,
    "all-zero trace id": `00-${"0".repeat(32)}-${CALLER_SPAN_ID}-01`,
    "all-zero parent id": `00-${TRACE_ID}-${"0".repeat(16)}-01`,
    "garbage": "not a traceparent at all",
  };
  try {
    for (const [name, header] of Object.entries(malformed)) {
      const id = `bad-${name.replaceAll(" ", "_")}`;
      const response = await app.request(`/product/${id}?budget=1000`, {
        headers: { traceparent: header, tracestate: "vendor=dropped" },
      });
      await response.body?.cancel();
      assert(response.status < 500 && response.status !== 400, `${name}: ${response.status}`);
      const answered = parseTraceparent(response.headers.get("traceresponse"));
      assert(answered !== undefined && answered.traceId !== TRACE_ID, `${name}: a new trace`);
      for (const call of calls.snapshot({ id })) {
        assertEquals(parseTraceparent(call.traceparent)?.traceId, answered.traceId, name);
        assertEquals(call.tracestate, undefined, `${name}: no tracestate without a parent`);
      }
    }
    await tracing.flush();
    const roots = receiver.spans().filter((span) => span.name === "GET /product/:id");
    assertEquals(roots.length, Object.keys(malformed).length);
    assert(roots.every((span) => span.parentSpanId === undefined), "each a root span");
  } finally {
    await tracing.shutdown();
    await receiver.close();
  }
});

Deno.test("with no tracer provider the trace headers still reach every downstream", async () => {
  const calls = new DownstreamCalls();
  const app = createApp({ registry: defaultRegistry(createDownstream({ tailEvery: 0, calls })) });
  const continued = await app.request("/product/kept?budget=1000", {
    headers: { traceparent: TRACEPARENT },
  });
  await continued.body?.cancel();
  // Nothing records: the gateway passes the caller's context on unchanged.
  assertEquals(continued.headers.get("traceresponse"), TRACEPARENT);
  const kept: ReceivedCall[] = calls.snapshot({ id: "kept" });
  assertEquals(kept.length, BRANCHES.length);
  assert(kept.every((call) => call.traceparent === TRACEPARENT), JSON.stringify(kept));

  const started = await app.request("/product/new?budget=1000");
  await started.body?.cancel();
  const root = parseTraceparent(started.headers.get("traceresponse"));
  assert(root !== undefined, "a new trace was started");
  const fresh = calls.snapshot({ id: "new" });
  assertEquals(fresh.length, BRANCHES.length);
  assert(fresh.every((call) => call.traceparent === started.headers.get("traceresponse")));
});

Deno.test("tracer: null sends no trace headers downstream and answers no traceresponse", async () => {
  const calls = new DownstreamCalls();
  const app = createApp({
    registry: defaultRegistry(createDownstream({ tailEvery: 0, calls })),
    tracer: null,
  });
  const response = await app.request("/product/untraced?budget=1000", {
    headers: { traceparent: TRACEPARENT },
  });
  assertEquals(response.status, 200);
  await response.body?.cancel();
  assertEquals(response.headers.get("traceresponse"), null);
  const untraced = calls.snapshot({ id: "untraced" });
  assertEquals(untraced.length, BRANCHES.length);
  assert(untraced.every((call) => call.traceparent === null), JSON.stringify(untraced));
});

Deno.test("a tracer that throws answers a JSON 500, counted in /metrics, with no downstream called", async () => {
  const calls = new DownstreamCalls();
  const broken = {
    startSpan() {
      throw new Error("tracer broken");
    },
    startActiveSpan() {
      throw new Error("tracer broken");
    },
  } as unknown as Tracer;
  const app = createApp({
    registry: defaultRegistry(createDownstream({ tailEvery: 0, calls })),
    tracer: broken,
  });
  const logged: unknown[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  let response: Response;
  try {
    response = await app.request("/product/sku-1");
  } finally {
    console.error = error;
  }
  assertEquals(response.status, 500);
  assertEquals(await response.json(), { error: "internal error" });
  assertEquals(logged.length, 1);
  assertEquals(calls.snapshot({ id: "sku-1" }).length, 0);
  const metrics = await (await app.request("/metrics")).text();
  assert(
    metrics.includes('fanfare_http_requests_total{route="/product/:id",status="500"} 1'),
    metrics,
  );
});
