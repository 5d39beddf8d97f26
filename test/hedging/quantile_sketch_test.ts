import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { QuantileSketch } from "../../src/hedging/_quantile_sketch.ts";

/** The lower quantile the sketch approximates: the value at sorted index floor(q × (n − 1)). */
function exactQuantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))];
}

Deno.test("a quantile sketch answers every quantile within its relative accuracy", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 1e-3, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.constantFrom(0.001, 0.01, 0.05),
      (values, q, relativeAccuracy) => {
        const sketch = new QuantileSketch({ relativeAccuracy });
        for (const value of values) sketch.accept(value);
        const exact = exactQuantile(values, q);
        const estimate = sketch.quantile(q);
        // A hair of slack for the rounding of log() at a bucket's edge.
        assert(
          Math.abs(estimate - exact) <= relativeAccuracy * exact * (1 + 1e-9),
          `q=${q}: ${estimate} is not within ${relativeAccuracy} of ${exact}`,
        );
      },
    ),
    { seed: 16, numRuns: 500 },
  );
});

Deno.test("a quantile sketch counts zeros and values in any order of magnitude", () => {
  const sketch = new QuantileSketch();
  for (const value of [0, 0, 1e5, 0.5, 3]) sketch.accept(value);
  assertEquals(sketch.count, 5);
  assertEquals(sketch.quantile(0), 0);
  assertEquals(sketch.quantile(0.25), 0);
  assert(Math.abs(sketch.quantile(0.5) - 0.5) <= 0.005);
  assert(Math.abs(sketch.quantile(1) - 1e5) <= 1e3);
});

Deno.test("an empty quantile sketch answers NaN", () => {
  assert(Number.isNaN(new QuantileSketch().quantile(0.5)));
});

Deno.test("a quantile sketch rejects a relative accuracy outside (0, 1)", () => {
  assertThrows(
    () => new QuantileSketch({ relativeAccuracy: 0 }),
    /'relativeAccuracy' must be in \(0, 1\): current value is 0/,
  );
});
