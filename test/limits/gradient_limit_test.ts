import assert from "node:assert/strict";
import fc from "fast-check";
import { GradientLimit } from "../../src/limits/mod.ts";

/** Feeds `count` samples 5 ms apart (a simulated clock), each at `latencyMs`. */
function feed(
  limit: GradientLimit,
  { count, latencyMs, start = 0, inFlight }: {
    count: number;
    latencyMs: number | ((i: number) => number);
    start?: number;
    inFlight?: number;
  },
): number {
  let now = start;
  for (let i = 0; i < count; i++) {
    now += 5;
    const latency = typeof latencyMs === "number" ? latencyMs : latencyMs(i);
    limit.onSample({ latencyMs: latency, inFlight: inFlight ?? limit.limit, now });
  }
  return now;
}

Deno.test("GradientLimit rises under steady healthy latency while the limit is in use", () => {
  const limit = new GradientLimit({ initialLimit: 10, maxLimit: 500 });
  feed(limit, { count: 2000, latencyMs: 30 });
  assert.ok(limit.limit > 10, `limit ${limit.limit}`);
  assert.equal(limit.baselineMs, 30);
});

Deno.test("GradientLimit does not rise while at most half of it is in use", () => {
  const limit = new GradientLimit({ initialLimit: 40, maxLimit: 500 });
  feed(limit, { count: 2000, latencyMs: 30, inFlight: 5 });
  assert.equal(limit.limit, 40);
});

Deno.test("GradientLimit falls when latency climbs past its tolerance, and recovers after", () => {
  const limit = new GradientLimit({ initialLimit: 50, maxLimit: 500 });
  let now = feed(limit, { count: 400, latencyMs: 30 });
  const healthy = limit.limit;
  now = feed(limit, { count: 400, latencyMs: 300, start: now });
  const overloaded = limit.limit;
  assert.ok(overloaded < healthy / 2, `healthy ${healthy}, overloaded ${overloaded}`);
  feed(limit, { count: 2000, latencyMs: 30, start: now });
  assert.ok(limit.limit > overloaded, `recovered to ${limit.limit} from ${overloaded}`);
});

Deno.test("GradientLimit treats the median of a window, not one slow sample, as latency", () => {
  const limit = new GradientLimit({ initialLimit: 50, maxLimit: 500, windowSamples: 20 });
  // One request in ten takes 20× longer: a heavy tail, not a queue.
  feed(limit, { count: 4000, latencyMs: (i) => i % 10 === 0 ? 600 : 30 });
  assert.ok(limit.limit >= 50, `limit ${limit.limit}`);
});

Deno.test("GradientLimit stays within [minLimit, maxLimit] for any latencies", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 0, max: 200 }),
      fc.array(
        fc.record({
          latencyMs: fc.oneof(fc.double({ min: 0, max: 10_000, noNaN: true }), fc.constant(NaN)),
          inFlight: fc.integer({ min: 0, max: 400 }),
          stepMs: fc.integer({ min: 0, max: 50 }),
        }),
        { maxLength: 600 },
      ),
      (minLimit, extra, samples) => {
        const maxLimit = minLimit + extra;
        const limit = new GradientLimit({
          minLimit,
          maxLimit,
          initialLimit: minLimit,
          windowSamples: 5,
          minWindowMs: 0,
        });
        let now = 0;
        for (const { latencyMs, inFlight, stepMs } of samples) {
          now += stepMs;
          const value = limit.onSample({ latencyMs, inFlight, now });
          assert.ok(Number.isInteger(value) && value >= minLimit && value <= maxLimit, `${value}`);
        }
      },
    ),
  );
});

Deno.test("GradientLimit never goes below 1 however slow latency becomes", () => {
  const limit = new GradientLimit({ initialLimit: 8, maxLimit: 8 });
  feed(limit, { count: 100, latencyMs: 10 });
  feed(limit, { count: 2000, latencyMs: (i) => 10 * 2 ** (i / 100), start: 500 });
  assert.equal(limit.limit, 1);
});

Deno.test("GradientLimit accepts a lasting new latency as normal, slowly", () => {
  const limit = new GradientLimit({ initialLimit: 8, maxLimit: 8 });
  let now = feed(limit, { count: 100, latencyMs: 10 });
  // Past the default tolerance (4×) of the baseline.
  now = feed(limit, { count: 400, latencyMs: 80, start: now });
  assert.ok(limit.limit < 8, `limit ${limit.limit} right after latency rose eightfold`);
  feed(limit, { count: 40_000, latencyMs: 80, start: now });
  assert.equal(limit.limit, 8);
});

Deno.test("GradientLimit rejects settings that make no limit, naming them", () => {
  assert.throws(() => new GradientLimit({ maxLimit: 0 }), /'maxLimit' must be a positive integer/);
  assert.throws(
    () => new GradientLimit({ initialLimit: 50, maxLimit: 10 }),
    /'initialLimit' must be in \[1, 10\]: current value is 50/,
  );
  assert.throws(() => new GradientLimit({ tolerance: 0.5 }), /'tolerance'/);
});

Deno.test("GradientLimit.backOff cuts by a tenth, or by the severity given, never below half", () => {
  const limit = new GradientLimit({ initialLimit: 100, maxLimit: 100 });
  assert.equal(limit.backOff(), 90);
  assert.equal(limit.backOff(1.5), 60);
  assert.equal(limit.backOff(10), 30);
  assert.equal(limit.backOff(0.5), 27, "a mild sign still backs off by a tenth");
});

Deno.test("GradientLimit backs off when requests are dropped, though timeouts keep latency flat", () => {
  const limit = new GradientLimit({ initialLimit: 40, maxLimit: 40 });
  let now = 0;
  for (let i = 0; i < 2000; i++) {
    now += 5;
    // Every other request is cut at a 300 ms timeout: the median stays where it was.
    limit.onSample({ latencyMs: 300, inFlight: 40, now, dropped: i % 2 === 0 });
  }
  assert.equal(limit.limit, 1);
  assert.equal(limit.baselineMs, undefined, "dropped windows teach the baseline nothing");
});
