import { createGatewayMetrics } from "../../src/gateway/gateway_metrics.ts";
import { HEDGE_METRICS, LIMITER_METRICS } from "../../src/gateway/gateway_metrics.ts";
import { LiveStats } from "../../src/gateway/live_stats.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";

const route = "/product/:id";

/** Records one finished product request the way the product route does. */
function answer(metrics: ReturnType<typeof createGatewayMetrics>, status: number, seconds: number) {
  metrics.requests.inc({ route, status: String(status) });
  metrics.requestDuration.observe({ route }, seconds);
}

Deno.test("live stats turn the window's requests into a rate and latency quantiles", () => {
  const metrics = createGatewayMetrics();
  const live = new LiveStats(metrics, { startedAt: 0 });
  for (let i = 0; i < 9; i++) answer(metrics, 200, 0.008);
  answer(metrics, 200, 0.2);
  const { requests } = live.read(2000);
  assertEquals(requests.ratePerS, 5);
  assertEquals(requests.total, 10);
  assert(requests.p50Ms! > 5 && requests.p50Ms! <= 10, `p50 ${requests.p50Ms} in (5, 10] ms`);
  assert(requests.p99Ms! > 100 && requests.p99Ms! <= 250, `p99 ${requests.p99Ms} in (100, 250] ms`);
});

Deno.test("live stats forget requests older than the window but keep counting the total", () => {
  const metrics = createGatewayMetrics();
  const live = new LiveStats(metrics, { windowMs: 1000, startedAt: 0 });
  for (let i = 0; i < 5; i++) answer(metrics, 200, 0.008);
  live.read(500);
  const { windowS, requests } = live.read(2000);
  assertEquals(windowS, 1.5);
  assertEquals(requests.ratePerS, 0);
  assertEquals(requests.p50Ms, null);
  assertEquals(requests.total, 5);
});

Deno.test("live stats count statuses and the degraded share of 200 answers, of their own route only", () => {
  const metrics = createGatewayMetrics();
  const live = new LiveStats(metrics, { startedAt: 0 });
  for (let i = 0; i < 4; i++) answer(metrics, 200, 0.008);
  answer(metrics, 502, 0.008);
  metrics.degraded.inc({ route: "/product/:id" });
  // Another route's degraded answer is its own stats' business.
  metrics.degraded.inc({ route: "/orders/:orderId" });
  const { requests } = live.read(1000);
  assertEquals(requests.statuses, { "200": 4, "502": 1 });
  assertEquals(requests.degradedShare, 0.25);
});

Deno.test("live stats list every registry branch and its outcome mix over the window", () => {
  const metrics = createGatewayMetrics();
  const live = new LiveStats(metrics, { startedAt: 0, branches: ["price", "reviews"] });
  metrics.branchOutcomes.inc({ branch: "reviews", outcome: "ok" });
  metrics.branchDuration.observe({ branch: "reviews", outcome: "ok" }, 0.004);
  metrics.branchOutcomes.inc({ branch: "reviews", outcome: "timeout" });
  metrics.branchDuration.observe({ branch: "reviews", outcome: "timeout" }, 0.2);
  metrics.branchesInFlight.inc();
  const { branches } = live.read(1000);
  assertEquals(Object.keys(branches.byName), ["price", "reviews"]);
  assertEquals(branches.byName.price, { count: 0, p50Ms: null, p99Ms: null, outcomes: {} });
  assertEquals(branches.byName.reviews.outcomes, { ok: 1, timeout: 1 });
  assertEquals(branches.byName.reviews.count, 2);
  assertEquals(branches.inFlight, 1);
});

Deno.test("live stats report no limiter and no hedges when the gateway has neither", () => {
  const report = new LiveStats(createGatewayMetrics(), { startedAt: 0 }).read(1000);
  assertEquals("limiter" in report, false);
  assertEquals("hedges" in report, false);
});

Deno.test("live stats read the limiter's gauges and the window's hedges when registered", () => {
  const metrics = createGatewayMetrics();
  const { registry } = metrics;
  const sent = registry.counter(HEDGE_METRICS.sent, "Hedges sent.", ["branch"]);
  const won = registry.counter(HEDGE_METRICS.won, "Hedges won.", ["branch"]);
  registry.gauge(LIMITER_METRICS.ceiling, "Ceiling.").set({}, 64);
  registry.gauge(LIMITER_METRICS.inFlight, "In use.").set({}, 12);
  registry.gauge(LIMITER_METRICS.waiting, "Waiting.").set({}, 3);
  sent.inc({ branch: "reviews" });
  const live = new LiveStats(metrics, { startedAt: 0 });
  sent.inc({ branch: "reviews" }, 2);
  sent.inc({ branch: "shipping" });
  won.inc({ branch: "reviews" });
  const report = live.read(1000);
  assertEquals(report.limiter, { inFlight: 12, ceiling: 64, waiting: 3 });
  assertEquals(report.hedges, { sent: 3, won: 1 });
});

Deno.test("live stats reject a window that is not a positive number, naming it", () => {
  assertThrows(
    () => new LiveStats(createGatewayMetrics(), { windowMs: 0 }),
    /'windowMs' must be a positive finite number: current value is 0/,
  );
});
