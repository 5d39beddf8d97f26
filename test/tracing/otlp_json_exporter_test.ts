import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { OtlpJsonExporter, toOtlpJson } from "../../src/tracing/otlp_json_exporter.ts";
import { startOtlpReceiver } from "./_otlp_receiver.ts";

/** A provider whose spans go to `exporter` and are also kept in memory. */
function providerFor(exporter: OtlpJsonExporter) {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "exporter-test" }),
    spanProcessors: [new SimpleSpanProcessor(memory), new SimpleSpanProcessor(exporter)],
  });
  return { provider, memory };
}

/** A small tree with every attribute type, an event, a status and a remote parent. */
function recordTree(provider: BasicTracerProvider): void {
  const tracer = provider.getTracer("fanfare", "1.2.3");
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    traceFlags: 1,
    isRemote: true,
  });
  const root = tracer.startSpan("GET /product/:id", { kind: SpanKind.SERVER }, remote);
  root.setAttributes({ text: "a", int: 42, double: 0.5, flag: true, list: ["x", "y"] });
  const child = tracer.startSpan("price", {}, trace.setSpan(remote, root));
  child.addEvent("timeout", { "fanfare.deadline_ms": 200 });
  child.setStatus({ code: SpanStatusCode.ERROR, message: "timeout" });
  child.end();
  root.end();
}

Deno.test("toOtlpJson() encodes spans as the SDK's own JSON serializer does", async () => {
  const exporter = new OtlpJsonExporter({ url: "http://127.0.0.1:9/v1/traces" });
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "exporter-test" }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  recordTree(provider);
  const spans = memory.getFinishedSpans();
  assertEquals(spans.length, 2);
  const theirs = JSON.parse(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans)));
  // OTLP/JSON takes 64-bit integers as strings or numbers; this exporter writes strings.
  const ours = JSON.parse(
    JSON.stringify(toOtlpJson(spans)),
    (key, value) => key === "intValue" ? Number(value) : value,
  );
  assertEquals(ours, theirs);
  await provider.shutdown();
  await exporter.shutdown();
});

Deno.test("OtlpJsonExporter posts OTLP/JSON that a receiver decodes", async () => {
  const receiver = startOtlpReceiver();
  try {
    const exporter = new OtlpJsonExporter({
      url: `${receiver.endpoint}/v1/traces`,
      headers: { "x-api-key": "k" },
    });
    const { provider } = providerFor(exporter);
    recordTree(provider);
    await provider.forceFlush();
    const spans = receiver.spans();
    assertEquals(spans.map((span) => span.name).sort(), ["GET /product/:id", "price"]);
    const root = spans.find((span) => span.name === "GET /product/:id")!;
    const child = spans.find((span) => span.name === "price")!;
    assertEquals(root.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assertEquals(root.parentSpanId, "00f067aa0ba902b7");
    assertEquals(child.parentSpanId, root.spanId);
    assertEquals(root.attributes, {
      text: "a",
      int: 42,
      double: 0.5,
      flag: true,
      list: ["x", "y"],
    });
    assertEquals(child.status, { code: 2, message: "timeout" });
    assertEquals(child.events[0].name, "timeout");
    assertEquals(root.serviceName, "exporter-test");
    await provider.shutdown();
  } finally {
    await receiver.close();
  }
});

Deno.test("OtlpJsonExporter reports a refused batch as failed and keeps no request open", async () => {
  const results: number[] = [];
  const exporter = new OtlpJsonExporter({
    url: "http://collector.internal/v1/traces",
    fetch: () => Promise.resolve(new Response("no", { status: 503 })),
  });
  exporter.export([], (result) => results.push(result.code));
  await exporter.forceFlush();
  assertEquals(results, [1]);
  await exporter.shutdown();
  exporter.export([], (result) => results.push(result.code));
  assertEquals(results, [1, 1]);
});

Deno.test("OtlpJsonExporter refuses a URL that is not http(s)", () => {
  assertThrows(
    () => new OtlpJsonExporter({ url: "ftp://collector.example/v1/traces" }),
    /'url' must be an http\(s\) URL/,
  );
  assert(new OtlpJsonExporter({ url: "https://collector.example/v1/traces" }));
});
