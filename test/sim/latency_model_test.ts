import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { createLatencyModel, type Draw, fnv1a32 } from "../../sim/latency_model.ts";

const CALLS = 100_000;

function drawMany(
  draw: (key: string) => Draw,
  count = CALLS,
): Draw[] {
  return Array.from({ length: count }, (_, i) => draw(`sku-${i}#0`));
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.ceil(p * sorted.length) - 1];
}

Deno.test("fnv1a32 matches the published FNV-1a test vectors", () => {
  assertEquals(fnv1a32(""), 0x811c9dc5);
  assertEquals(fnv1a32("a"), 0xe40c292c);
  assertEquals(fnv1a32("foobar"), 0xbf9cf968);
});

Deno.test("latency model has a p50 near 5 ms and a p99 near 200 ms over 100k draws", () => {
  for (const seed of [0, 1, 2]) {
    const model = createLatencyModel({ seed, tailEvery: 0 });
    const latencies = drawMany((key) => model({ branch: "price", key }))
      .map((draw) => draw.latencyMs)
      .sort((a, b) => a - b);
    const p50 = percentile(latencies, 0.5);
    const p99 = percentile(latencies, 0.99);
    assert(p50 >= 4.5 && p50 <= 5.5, `p50 is ${p50} ms for seed ${seed}`);
    assert(p99 >= 170 && p99 <= 235, `p99 is ${p99} ms for seed ${seed}`);
  }
});

Deno.test("latency model gives the same draw for the same seed, branch and key", () => {
  const first = createLatencyModel({ seed: 9, errorRate: 0.1 });
  const second = createLatencyModel({ seed: 9, errorRate: 0.1 });
  for (let i = 0; i < 1000; i++) {
    const request = { branch: "reviews", key: `sku-${i}#1` };
    assertEquals(first(request), second(request));
  }
});

Deno.test("latency model pins its draws so that every runtime can be checked against them", () => {
  const model = createLatencyModel({ seed: 42 });
  const latencies = [0, 1, 2, 3].map((i) =>
    model({ branch: "price", key: `sku-${i}#0` }).latencyMs
  );
  assertEquals(latencies, [2.316, 99.518, 12.647, 6.918]);
});

Deno.test("latency model draws differently for another seed, branch or attempt", () => {
  const model = createLatencyModel({ seed: 1 });
  const base = model({ branch: "price", key: "sku-1#0" }).latencyMs;
  const otherSeed = createLatencyModel({ seed: 2 })({ branch: "price", key: "sku-1#0" });
  assert(otherSeed.latencyMs !== base, "another seed redraws");
  assert(
    model({ branch: "shipping", key: "sku-1#0" }).latencyMs !== base,
    "another branch redraws",
  );
  assert(model({ branch: "price", key: "sku-1#1" }).latencyMs !== base, "another attempt redraws");
});

Deno.test("latency model keeps every latency when only the error rate changes", () => {
  const calm = createLatencyModel({ seed: 5, errorRate: 0 });
  const flaky = createLatencyModel({ seed: 5, errorRate: 0.1 });
  const calmDraws = drawMany((key) => calm({ branch: "inventory", key }), 5_000);
  const flakyDraws = drawMany((key) => flaky({ branch: "inventory", key }), 5_000);
  assertEquals(
    flakyDraws.map((draw) => draw.latencyMs),
    calmDraws.map((draw) => draw.latencyMs),
  );
});

Deno.test("latency model fails about errorRate of all calls", () => {
  for (const [errorRate, low, high] of [[0, 0, 0], [0.01, 850, 1150], [0.1, 9500, 10500]]) {
    const model = createLatencyModel({ seed: 3, errorRate, tailEvery: 0 });
    const failures = drawMany((key) => model({ branch: "price", key }))
      .filter((draw) => draw.failure === "error-rate").length;
    assert(failures >= low && failures <= high, `${failures} failures at rate ${errorRate}`);
  }
});

Deno.test("latency model lets one call override the error rate", () => {
  const model = createLatencyModel({ seed: 3 });
  assertEquals(model({ branch: "price", key: "sku-1#0", errorRate: 1 }).failure, "error-rate");
  assertEquals(model({ branch: "price", key: "sku-1#0" }).failure, undefined);
});

Deno.test("latency model injects a tailMs call about once per tailEvery calls", () => {
  const model = createLatencyModel({ seed: 4, tailEvery: 1000, tailMs: 2000 });
  const tails = drawMany((key) => model({ branch: "price", key })).filter((draw) => draw.tail);
  assert(tails.length >= 70 && tails.length <= 130, `${tails.length} tail calls`);
  assert(tails.every((draw) => draw.latencyMs === 2000));
});

Deno.test("latency model injects no tail when tailEvery is 0", () => {
  const model = createLatencyModel({ seed: 4, tailEvery: 0 });
  assert(drawMany((key) => model({ branch: "price", key })).every((draw) => !draw.tail));
});

Deno.test("latency model lets one call force or suppress the tail", () => {
  const model = createLatencyModel({ seed: 4, tailMs: 750 });
  assertEquals(model({ branch: "price", key: "sku-1#0", tail: true }).latencyMs, 750);
  const always = createLatencyModel({ seed: 4, tailEvery: 1 });
  assertEquals(always({ branch: "price", key: "sku-1#0" }).tail, true);
  assertEquals(always({ branch: "price", key: "sku-1#0", tail: false }).tail, false);
});

Deno.test("latency model always fails a branch listed by name or by index", () => {
  const model = createLatencyModel({ seed: 6, failBranches: ["reviews", 2] });
  for (let i = 0; i < 100; i++) {
    const key = `sku-${i}#0`;
    assertEquals(model({ branch: "reviews", key }).failure, "always-fails");
    assertEquals(model({ branch: "shipping", key, index: 2 }).failure, "always-fails");
    assertEquals(model({ branch: "shipping", key, index: 1 }).failure, undefined);
    assertEquals(model({ branch: "price", key }).failure, undefined);
  }
});

Deno.test("latency model rejects options it cannot honour, naming the option and its value", () => {
  assertThrows(() => createLatencyModel({ errorRate: 1.5 }), /'errorRate'.*1\.5/);
  assertThrows(() => createLatencyModel({ medianMs: 0 }), /'medianMs'.*0/);
  assertThrows(() => createLatencyModel({ p99Ms: 1 }), /'p99Ms'.*1/);
  assertThrows(() => createLatencyModel({ tailEvery: 0.5 }), /'tailEvery'.*0\.5/);
  assertThrows(() => createLatencyModel({ seed: NaN }), /'seed'.*NaN/);
  const model = createLatencyModel();
  assertThrows(() => model({ branch: "price", key: "1", errorRate: -1 }), /'errorRate'.*-1/);
});
