import { DownstreamStats } from "../../sim/downstream_stats.ts";
import { createLatencyModel } from "../../sim/latency_model.ts";
import { createDownstream } from "../../sim/downstream.ts";
import { BUDGET_HEADER } from "../../src/gateway/scatter_gather.ts";
import { assert, assertEquals } from "../_assert.ts";

/** Counters that also announce each call the moment its sleep is armed. */
class ObservedStats extends DownstreamStats {
  readonly #started: Array<() => void> = [];

  /** Resolves when the next call starts. */
  nextStart(): Promise<void> {
    return new Promise((resolve) => this.#started.push(resolve));
  }

  override start(branch: string): void {
    super.start(branch);
    this.#started.shift()?.();
  }
}

Deno.test("downstream answers a branch with its JSON after the forced latency", async () => {
  const app = createDownstream();
  const response = await app.request("/price/sku-42?latencyMs=0");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.branch, "price");
  assertEquals(body.id, "sku-42");
  assertEquals(body.latencyMs, 0);
  assertEquals(body.currency, "EUR");
  assert(Number.isInteger(body.amountCents), `amountCents is ${body.amountCents}`);
});

Deno.test("downstream answers any branch name, with a generic body for unknown ones", async () => {
  const app = createDownstream();
  for (const branch of ["inventory", "reviews", "recommendations", "shipping", "loyalty"]) {
    const response = await app.request(`/${branch}/sku-1?latencyMs=0`);
    assertEquals(response.status, 200, `status of ${branch}`);
    assertEquals((await response.json()).branch, branch);
  }
});

Deno.test("downstream draws the latency from the seeded model for the id and attempt", async () => {
  const app = createDownstream({ seed: 8 });
  const model = createLatencyModel({ seed: 8 });
  for (const attempt of [0, 1]) {
    // A zero budget reports the drawn latency in the 504 body without sleeping it.
    const response = await app.request(`/reviews/sku-5?attempt=${attempt}`, {
      headers: { [BUDGET_HEADER]: "0" },
    });
    assertEquals(response.status, 504);
    const { latencyMs } = await response.json();
    assertEquals(latencyMs, model({ branch: "reviews", key: `sku-5#${attempt}` }).latencyMs);
  }
});

Deno.test("downstream fails with a 500 JSON error when the request asks it to", async () => {
  const app = createDownstream();
  const response = await app.request("/price/sku-1?latencyMs=0&fail=1");
  assertEquals(response.status, 500);
  assertEquals((await response.json()).failure, "forced");
});

Deno.test("downstream fails a branch configured to always fail", async () => {
  const app = createDownstream({ failBranches: ["inventory", 3] });
  const byName = await app.request("/inventory/sku-1?latencyMs=0");
  assertEquals(byName.status, 500);
  assertEquals((await byName.json()).failure, "always-fails");
  const byIndex = await app.request("/shipping/sku-1?latencyMs=0&branchIndex=3");
  assertEquals(byIndex.status, 500);
  await byIndex.body?.cancel();
  const other = await app.request("/shipping/sku-1?latencyMs=0&branchIndex=2");
  assertEquals(other.status, 200);
  await other.body?.cancel();
});

Deno.test("downstream fails every call when the request sets errorRate to 1", async () => {
  const app = createDownstream();
  const response = await app.request("/price/sku-1?latencyMs=0&errorRate=1");
  assertEquals(response.status, 500);
  assertEquals((await response.json()).failure, "error-rate");
});

Deno.test("downstream sleeps the injected tail when the request forces it", async () => {
  const app = createDownstream({ tailMs: 1234 });
  const response = await app.request("/price/sku-1?tail=1", { headers: { [BUDGET_HEADER]: "0" } });
  assertEquals((await response.json()).latencyMs, 1234);
});

Deno.test("downstream rejects a malformed query with a 400 naming the field", async () => {
  const app = createDownstream();
  for (
    const [query, field] of [
      ["latencyMs=soon", "latencyMs"],
      ["latencyMs=-1", "latencyMs"],
      ["latencyMs=99999999999", "latencyMs"],
      ["errorRate=1.5", "errorRate"],
      ["fail=yes", "fail"],
      ["tail=2", "tail"],
      ["attempt=1.5", "attempt"],
      ["fail=1&fail=0", "fail"],
    ]
  ) {
    const response = await app.request(`/price/sku-1?${query}`);
    assertEquals(response.status, 400, `status for ?${query}`);
    const body = await response.json();
    assertEquals(body.error, "invalid query");
    assertEquals(body.issues.map((issue: { field: string }) => issue.field), [field]);
  }
});

Deno.test("downstream rejects a malformed budget header with a 400 naming the header", async () => {
  const app = createDownstream();
  const response = await app.request("/price/sku-1", { headers: { [BUDGET_HEADER]: "lots" } });
  assertEquals(response.status, 400);
  const body = await response.json();
  assertEquals(body.error, "invalid header");
  assertEquals(body.issues[0].field, BUDGET_HEADER);
});

Deno.test("downstream answers 504 after the budget when the budget is shorter than the latency", async () => {
  const stats = new DownstreamStats();
  const app = createDownstream({ stats });
  const response = await app.request("/price/sku-1?latencyMs=1000000000", {
    headers: { [BUDGET_HEADER]: "0" },
  });
  assertEquals(response.status, 504);
  assertEquals(await response.json(), {
    error: "budget exhausted",
    branch: "price",
    id: "sku-1",
    budgetMs: 0,
    latencyMs: 1_000_000_000,
  });
  assertEquals(stats.snapshot(), { price: { served: 1, inFlight: 0, aborted: 0 } });
});

Deno.test("downstream counts a client abort and cancels its sleep", async () => {
  const stats = new ObservedStats();
  const app = createDownstream({ stats });
  const client = new AbortController();
  const started = stats.nextStart();
  const response = app.request("/recommendations/sku-1?latencyMs=1000000000", {
    signal: client.signal,
  });
  await started;
  assertEquals(stats.snapshot(), { recommendations: { served: 0, inFlight: 1, aborted: 0 } });
  client.abort();
  // The test's op sanitizer fails it if the billion-millisecond timer were still armed.
  await (await response).body?.cancel();
  assertEquals(stats.snapshot(), { recommendations: { served: 0, inFlight: 0, aborted: 1 } });
});

Deno.test("downstream counts a request whose client aborted before it was played", async () => {
  const stats = new DownstreamStats();
  const app = createDownstream({ stats });
  const response = await app.request("/price/sku-1?latencyMs=1000000000", {
    signal: AbortSignal.abort(),
  });
  await response.body?.cancel();
  assertEquals(stats.snapshot(), { price: { served: 0, inFlight: 0, aborted: 1 } });
});

Deno.test("downstream reports its counters at GET /stats and zeroes them at POST /stats/reset", async () => {
  const app = createDownstream();
  await (await app.request("/price/sku-1?latencyMs=0")).body?.cancel();
  await (await app.request("/price/sku-2?latencyMs=0")).body?.cancel();
  assertEquals(await (await app.request("/stats")).json(), {
    branches: { price: { served: 2, inFlight: 0, aborted: 0 } },
  });
  const reset = await app.request("/stats/reset", { method: "POST" });
  assertEquals(await reset.json(), { branches: {} });
  assertEquals(await (await app.request("/stats")).json(), { branches: {} });
});

Deno.test("downstream keeps counting a call that is in flight across a reset", () => {
  const stats = new DownstreamStats();
  stats.start("price");
  stats.finish("price", "served");
  stats.start("price");
  stats.reset();
  assertEquals(stats.snapshot(), { price: { served: 0, inFlight: 1, aborted: 0 } });
  stats.finish("price", "served");
  assertEquals(stats.snapshot(), { price: { served: 1, inFlight: 0, aborted: 0 } });
});

Deno.test("downstream serves in-process through its fetch method, as a Workers fetcher", async () => {
  const { fetch } = createDownstream();
  const response = await fetch(new Request("http://downstream/shipping/sku-9?latencyMs=0"));
  assertEquals(response.status, 200);
  assertEquals((await response.json()).id, "sku-9");
});

Deno.test("DownstreamStats keeps at most maxBranches names and counts the rest as (other)", () => {
  const stats = new DownstreamStats({ maxBranches: 3 });
  for (let i = 0; i < 1000; i++) {
    stats.start(`junk-${i}`);
    stats.finish(`junk-${i}`, "served");
  }
  const snapshot = stats.snapshot();
  assertEquals(Object.keys(snapshot).length, 4);
  assertEquals(snapshot["(other)"], { served: 997, inFlight: 0, aborted: 0 });
});
