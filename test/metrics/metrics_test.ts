import { MetricsRegistry } from "../../src/metrics/metrics.ts";
import { assertEquals } from "../_assert.ts";

Deno.test("a counter reads back the value of every series with its labels", () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter("requests_total", "Requests.", ["status"]);
  requests.inc({ status: "200" }, 3);
  requests.inc({ status: "502" });
  assertEquals(requests.samples(), [
    { labels: { status: "200" }, value: 3 },
    { labels: { status: "502" }, value: 1 },
  ]);
});

Deno.test("a histogram reads back cumulative buckets, count and sum", () => {
  const latency = new MetricsRegistry().histogram("latency_seconds", "Latency.", [], [0.1, 1]);
  for (const value of [0.05, 0.5, 0.7, 3]) latency.observe({}, value);
  assertEquals(latency.samples(), [{ labels: {}, buckets: [1, 3], count: 4, sum: 4.25 }]);
});

Deno.test("the registry finds a metric by name and answers undefined for an unknown one", () => {
  const registry = new MetricsRegistry();
  const inFlight = registry.gauge("in_flight", "Running.");
  assertEquals(registry.get("in_flight") === inFlight, true);
  assertEquals(registry.get("missing"), undefined);
});
