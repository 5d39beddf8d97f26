/**
 * Tracing conformance over HTTP: the gateway served by Deno, by Bun and by workerd (`workerd
 * serve`), each with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a test OTLP receiver in this
 * process, in front of the scripted downstream, which logs the `traceparent` of every call.
 *
 * One request with a failed branch (reviews answers 500), a timed-out one (shipping sleeps past
 * its 200 ms timeout) and a hedged one (recommendations: the primary sleeps, its hedge answers at
 * once): the receiver must get the whole span tree, in the caller's trace, and every downstream
 * call must name one attempt span as its parent.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseTraceparent } from "../src/tracing/mod.ts";
import { type Runtime, type ServedProcess, startDownstream, startGateway } from "./_servers.ts";
import { type ReceivedSpan, startOtlpReceiver } from "./tracing/_otlp_receiver.ts";

const RUNTIMES: Runtime[] = ["deno", "bun", "workerd"];
const BRANCHES = ["price", "inventory", "reviews", "recommendations", "shipping"];
const CALLER_SPAN_ID = "00f067aa0ba902b7";

interface Call {
  branch: string;
  attempt: number;
  traceparent: string | null;
}

/** A fresh trace id per runtime, so the receiver's spans of one run are told apart. */
function traceIdFor(runtime: Runtime): string {
  return `${"0".repeat(24)}${
    [...new TextEncoder().encode(runtime.padEnd(4, "_").slice(0, 4))]
      .map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/**
 * Calls `probe` until `done` accepts its value, at most `attempts` times with `pauseMs` between
 * calls (the bound keeps a broken exporter from hanging the suite; nothing waits a fixed time).
 */
async function pollUntil<T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (value: T) => boolean,
  { attempts = 400, pauseMs = 25 } = {},
): Promise<T> {
  let value = await probe();
  for (let attempt = 1; attempt < attempts && !done(value); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    value = await probe();
  }
  assert.ok(done(value), `${what}: still not the case after ${attempts} polls`);
  return value;
}

function one(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((span) => span.name === name);
  assert.equal(found.length, 1, `one span named ${name}: ${spans.map((s) => s.name)}`);
  return found[0];
}

for (const runtime of RUNTIMES) {
  Deno.test(`tracing over HTTP: gateway served by ${runtime} exports the span tree of a request`, async (t) => {
    const receiver = startOtlpReceiver();
    const downstream = await startDownstream();
    let gateway: ServedProcess | undefined;
    try {
      gateway = await startGateway(runtime, downstream.url, {
        vars: {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          OTEL_SERVICE_NAME: `gateway-on-${runtime}`,
          OTEL_BSP_SCHEDULE_DELAY: "20",
          HEDGE: "optional-reads",
        },
      });
      const traceId = traceIdFor(runtime);
      const id = `traced-fail_reviews-slow_shipping-slow1_recommendations`;
      const response = await fetch(`${gateway.url}product/${id}?budget=1000`, {
        headers: { traceparent: `00-${traceId}-${CALLER_SPAN_ID}-01`, tracestate: "t=1" },
      });
      const body = await response.json();

      await t.step(
        "the answer degrades the failed and the timed-out branch, and names the trace",
        () => {
          assert.equal(response.status, 200, JSON.stringify(body));
          assert.equal(body.reasons.shipping, "timeout");
          assert.match(body.reasons.reviews, /^error/);
          assert.equal(body.timings.recommendations.winner, 2);
          assert.equal(parseTraceparent(response.headers.get("traceresponse"))?.traceId, traceId);
        },
      );

      const calls: Call[] = (await (await fetch(`${downstream.url}calls?id=${id}`)).json()).calls;
      // Every call the downstream saw has its attempt span, once all of them have been exported.
      const spans = await pollUntil(
        "the receiver holds the request span and one attempt span per downstream call",
        () => receiver.spans().filter((span) => span.traceId === traceId),
        (spans) =>
          spans.some((span) => span.name === "GET /product/:id") &&
          spans.filter((span) => span.name.includes(" attempt ")).length >= calls.length &&
          BRANCHES.every((name) => spans.some((span) => span.name === name)),
      );

      await t.step("the request span continues the caller's trace", () => {
        const request = one(spans, "GET /product/:id");
        assert.equal(request.parentSpanId, CALLER_SPAN_ID);
        assert.equal(request.serviceName, `gateway-on-${runtime}`);
        assert.equal(
          response.headers.get("traceresponse"),
          `00-${traceId}-${request.spanId}-01`,
        );
        for (const name of BRANCHES) assert.equal(one(spans, name).parentSpanId, request.spanId);
      });

      await t.step("each branch span carries its outcome", () => {
        assert.equal(one(spans, "reviews").attributes["fanfare.outcome"], "error");
        assert.equal(one(spans, "shipping").attributes["fanfare.outcome"], "timeout");
        assert.equal(one(spans, "shipping").status.code, 2);
        assert.equal(one(spans, "recommendations").attributes["fanfare.winner"], 2);
      });

      await t.step("one attempt span per downstream call, each the parent of its call", () => {
        const attempts = spans.filter((span) => span.name.includes(" attempt "));
        assert.equal(attempts.length, calls.length, JSON.stringify(calls));
        const byId = new Map(attempts.map((span) => [span.spanId, span]));
        for (const call of calls) {
          const parent = parseTraceparent(call.traceparent);
          assert.equal(parent?.traceId, traceId, JSON.stringify(call));
          const attempt = byId.get(parent!.spanId);
          assert.ok(
            attempt !== undefined,
            `no attempt span is the parent of ${JSON.stringify(call)}`,
          );
          assert.equal(attempt.attributes["fanfare.branch"], call.branch);
          assert.equal(attempt.parentSpanId, one(spans, call.branch).spanId);
          byId.delete(parent!.spanId);
        }
      });

      await t.step("the hedge won and the primary it beat is marked aborted", () => {
        const primary = one(spans, "recommendations attempt 1");
        const hedge = one(spans, "recommendations attempt 2");
        assert.equal(primary.attributes["fanfare.hedge.role"], "loser-aborted");
        assert.equal(primary.attributes["fanfare.outcome"], "aborted");
        assert.equal(hedge.attributes["fanfare.hedge.role"], "winner");
      });

      await t.step("a malformed traceparent starts a new trace instead of failing", async () => {
        const malformed = await fetch(`${gateway!.url}product/untraced?budget=1000`, {
          headers: { traceparent: `ff-${traceId}-${CALLER_SPAN_ID}-01` },
        });
        await malformed.body?.cancel();
        assert.equal(malformed.status, 200);
        const started = parseTraceparent(malformed.headers.get("traceresponse"));
        assert.ok(started !== undefined && started.traceId !== traceId);
      });
    } catch (error) {
      console.error(`--- ${runtime} gateway output ---\n${gateway?.output()}`);
      throw error;
    } finally {
      await gateway?.stop();
      await downstream.stop();
      await receiver.close();
    }
  });
}
