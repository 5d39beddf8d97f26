import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { AdaptiveDelay } from "../../src/hedging/adaptive_delay.ts";

Deno.test("an adaptive delay answers its fallback until it has minSamples latencies", () => {
  const delay = new AdaptiveDelay({ minSamples: 3, windowSize: 10, fallbackMs: 42 });
  delay.observe(5);
  delay.observe(5);
  assertEquals(delay.delayMs(), 42);
  delay.observe(5);
  assert(Math.abs(delay.delayMs() - 5) <= 0.05 * 5, `about 5, got ${delay.delayMs()}`);
});

Deno.test("an adaptive delay is its window's quantile within the sketch's accuracy", () => {
  const delay = new AdaptiveDelay({ quantile: 0.95, windowSize: 1000, minSamples: 1000 });
  for (let ms = 1; ms <= 1000; ms++) delay.observe(ms);
  const p95 = delay.delayMs();
  assert(Math.abs(p95 - 950) <= 0.02 * 950, `p95 of 1..1000 is about 950, got ${p95}`);
});

Deno.test("an adaptive delay follows the last complete window, not older ones", () => {
  const delay = new AdaptiveDelay({ quantile: 0.5, windowSize: 100, minSamples: 100 });
  for (let i = 0; i < 100; i++) delay.observe(10);
  for (let i = 0; i < 100; i++) delay.observe(200);
  assert(Math.abs(delay.delayMs() - 200) <= 4, `follows the slow window, got ${delay.delayMs()}`);
  for (let i = 0; i < 99; i++) delay.observe(10);
  assert(delay.delayMs() > 100, "a window still filling does not move it");
});

Deno.test("an adaptive delay stays within minMs and maxMs", () => {
  const delay = new AdaptiveDelay({ windowSize: 1, minSamples: 1, minMs: 2, maxMs: 100 });
  delay.observe(0.1);
  assertEquals(delay.delayMs(), 2);
  delay.observe(5000);
  assertEquals(delay.delayMs(), 100);
});

Deno.test("an adaptive delay ignores negative and non-finite latencies", () => {
  const delay = new AdaptiveDelay({ windowSize: 1, minSamples: 1, fallbackMs: 9 });
  delay.observe(-1);
  delay.observe(NaN);
  delay.observe(Infinity);
  assertEquals(delay.delayMs(), 9);
});

Deno.test("an adaptive delay rejects a quantile outside (0, 1) and minSamples above windowSize", () => {
  assertThrows(
    () => new AdaptiveDelay({ quantile: 1 }),
    /'quantile' must be in \(0, 1\): current value is 1/,
  );
  assertThrows(
    () => new AdaptiveDelay({ windowSize: 10, minSamples: 11 }),
    /'minSamples' must be an integer from 1 to 'windowSize' \(10\): current value is 11/,
  );
});

Deno.test("an adaptive delay with a window smaller than the default minSamples needs a full window", () => {
  const delay = new AdaptiveDelay({ windowSize: 20, fallbackMs: 42 });
  for (let ms = 1; ms < 20; ms++) delay.observe(ms);
  assertEquals(delay.delayMs(), 42);
  delay.observe(20);
  assert(delay.delayMs() !== 42);
});
