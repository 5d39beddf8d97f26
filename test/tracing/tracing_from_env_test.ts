import { assertEquals } from "../_assert.ts";
import strict from "node:assert/strict";
import { tracingFromEnv } from "../../adapters/_tracing_from_env.ts";
import { startOtlpReceiver } from "./_otlp_receiver.ts";

Deno.test("tracingFromEnv() sets nothing up without an endpoint, or when the SDK is disabled", async () => {
  assertEquals(await tracingFromEnv({}), undefined);
  assertEquals(await tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "  " }), undefined);
  assertEquals(
    await tracingFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
      OTEL_SDK_DISABLED: "true",
    }),
    undefined,
  );
});

Deno.test("tracingFromEnv() appends /v1/traces to the base URL, and takes the traces URL as given", async () => {
  const fromBase = await tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/otlp/" });
  assertEquals(fromBase?.url, "http://c:4318/otlp/v1/traces");
  await fromBase?.shutdown();
  const own = await tracingFromEnv({
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://t.example/custom",
  });
  assertEquals(own?.url, "https://t.example/custom");
  await own?.shutdown();
});

Deno.test("tracingFromEnv() refuses bad variables, naming them", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" }, /'OTEL_EXPORTER_OTLP_ENDPOINT' must be/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x/" }, /'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'/],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_EXPORTER_OTLP_HEADERS: "novalue" },
      /'OTEL_EXPORTER_OTLP_HEADERS' must be comma-separated key=value pairs/,
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c", OTEL_BSP_SCHEDULE_DELAY: "soon" },
      /'OTEL_BSP_SCHEDULE_DELAY' must be a non-negative number of ms: current value is soon/,
    ],
  ];
  for (const [env, pattern] of cases) await strict.rejects(() => tracingFromEnv(env), pattern);
});

Deno.test("tracingFromEnv() exports spans with the service name and the headers asked for", async () => {
  const receiver = startOtlpReceiver();
  const seen: Headers[] = [];
  try {
    const tracing = (await tracingFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_HEADERS: "x-team=a%20b,x-other=1",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-other=2",
      OTEL_SERVICE_NAME: "svc",
    }, {
      fetch: (request) => {
        seen.push(request.headers);
        return fetch(request);
      },
    }))!;
    tracing.tracer.startSpan("work").end();
    await tracing.shutdown();
    assertEquals(receiver.spans().map((span) => [span.name, span.serviceName, span.scope]), [
      ["work", "svc", "fanfare"],
    ]);
    assertEquals(seen[0].get("x-team"), "a b");
    assertEquals(seen[0].get("x-other"), "2");
  } finally {
    await receiver.close();
  }
});
