import { histogramQuantile } from "../../src/metrics/histogram_quantile.ts";
import { assertEquals, assertThrows } from "../_assert.ts";

Deno.test("histogramQuantile interpolates inside the bucket that holds the rank", () => {
  assertEquals(histogramQuantile(0.5, [0.01, 0.1], [4, 10], 10), 0.025);
});

Deno.test("histogramQuantile starts the first bucket at zero", () => {
  assertEquals(histogramQuantile(0.5, [10, 20], [4, 4], 4), 5);
});

Deno.test("histogramQuantile answers the last finite bound for a rank in the +Inf bucket", () => {
  assertEquals(histogramQuantile(0.99, [0.01, 0.1], [5, 5], 10), 0.1);
});

Deno.test("histogramQuantile answers undefined when nothing was observed", () => {
  assertEquals(histogramQuantile(0.5, [0.01, 0.1], [0, 0], 0), undefined);
});

Deno.test("histogramQuantile rejects a quantile outside [0, 1] naming it", () => {
  assertThrows(
    () => histogramQuantile(99, [1], [1], 1),
    /'q' must be in \[0, 1\]: current value is 99/,
  );
});
