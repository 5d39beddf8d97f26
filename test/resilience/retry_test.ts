import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { Attempts } from "../../src/resilience/attempts.ts";
import { fullJitter } from "../../src/resilience/backoff.ts";
import { CircuitOpenError } from "../../src/resilience/errors.ts";
import { retry, type RetryStop } from "../../src/resilience/retry.ts";
import { RetryBudget } from "../../src/resilience/retry_budget.ts";

/** A call that fails `failures` times with `error`, then answers "ok". */
function flaky(failures: number, error: unknown = new Error("503 from price")) {
  const seen: number[] = [];
  const call = (_signal: AbortSignal | undefined, attempt: number) => {
    seen.push(attempt);
    return seen.length <= failures ? Promise.reject(error) : Promise.resolve("ok");
  };
  return { call, seen };
}

/** Records waits instead of sleeping, and moves a fake clock by them. */
function fakeTime() {
  const time = {
    now: 0,
    waits: [] as number[],
    clock: () => time.now,
    sleep: (ms: number) => {
      time.waits.push(ms);
      time.now += ms;
      return Promise.resolve();
    },
  };
  return time;
}

const noJitter = fullJitter({ baseMs: 10, capMs: 1_000, random: () => 1 - Number.EPSILON });

Deno.test("retry() repeats a failing idempotent call until it answers, with growing waits", async () => {
  const { call, seen } = flaky(2);
  const time = fakeTime();
  const value = await retry(call, { idempotent: true, maxAttempts: 3, backoff: noJitter, ...time });
  assertEquals(value, "ok");
  assertEquals(seen, [1, 2, 3]);
  assertEquals(time.waits.map(Math.round), [10, 20]);
});

Deno.test("retry() never repeats a non-idempotent call", async () => {
  const { call, seen } = flaky(1);
  const stops: RetryStop[] = [];
  await retry(call, {
    idempotent: false,
    maxAttempts: 5,
    onStop: (reason) => stops.push(reason),
    ...fakeTime(),
  }).then(() => assert(false, "must reject"), () => {});
  assertEquals(seen, [1]);
  assertEquals(stops, ["not-idempotent"]);
});

Deno.test("retry() gives up after maxAttempts with the last error", async () => {
  const { call, seen } = flaky(10);
  const stops: RetryStop[] = [];
  const error = await retry(call, {
    idempotent: true,
    maxAttempts: 3,
    onStop: (reason) => stops.push(reason),
    ...fakeTime(),
  }).catch((e) => e);
  assertEquals([seen.length, error.message, stops], [3, "503 from price", ["attempts"]]);
});

Deno.test("retry() does not retry an abort or an open breaker by default", async () => {
  for (const error of [new DOMException("gone", "AbortError"), new CircuitOpenError("price", 5)]) {
    const { call, seen } = flaky(1, error);
    await retry(call, { idempotent: true, ...fakeTime() }).catch(() => {});
    assertEquals(seen.length, 1, error.name);
  }
});

Deno.test("retry() stops at once when the caller aborts during the wait", async () => {
  const controller = new AbortController();
  const { call, seen } = flaky(5);
  const error = await retry(call, {
    idempotent: true,
    signal: controller.signal,
    sleep: (_ms, signal) => {
      controller.abort(new Error("client went away"));
      return Promise.reject(signal!.reason);
    },
  }).catch((e) => e);
  assertEquals([seen.length, error.message], [1, "client went away"]);
});

Deno.test("retry() sends no retry whose wait would end past the deadline", async () => {
  const { call, seen } = flaky(10);
  const time = fakeTime();
  const stops: RetryStop[] = [];
  await retry(call, {
    idempotent: true,
    maxAttempts: 10,
    backoff: () => 40,
    deadline: 100,
    onStop: (reason) => stops.push(reason),
    ...time,
  }).catch(() => {});
  assertEquals(seen.length, 3, "waits end at 40 and 80; the next would end at 120");
  assertEquals(stops, ["deadline"]);
});

Deno.test("retry() waits for Retry-After when it is longer than the backoff and fits the deadline", async () => {
  const error = Object.assign(new Error("503"), { retryAfterMs: 50 });
  const retryAfterMs = (e: unknown) => (e as { retryAfterMs?: number }).retryAfterMs;
  const fits = flaky(1, error);
  const time = fakeTime();
  await retry(fits.call, {
    idempotent: true,
    backoff: () => 5,
    retryAfterMs,
    deadline: 100,
    ...time,
  });
  assertEquals([fits.seen.length, time.waits], [2, [50]]);

  const tooLate = flaky(1, error);
  const stops: RetryStop[] = [];
  await retry(tooLate.call, {
    idempotent: true,
    backoff: () => 5,
    retryAfterMs,
    deadline: 40,
    onStop: (reason) => stops.push(reason),
    ...fakeTime(),
  }).catch(() => {});
  assertEquals([tooLate.seen.length, stops], [1, ["deadline"]], "no early retry against the wish");
});

Deno.test("retry() shares its attempts with hedges of the same call", async () => {
  const attempts = new Attempts(3);
  const { call, seen } = flaky(10);
  const hedgingCall = (signal: AbortSignal | undefined, attempt: number) => {
    if (attempt === 1) attempts.take(); // the first try also sent a hedge
    return call(signal, attempt);
  };
  await retry(hedgingCall, { idempotent: true, maxAttempts: 99, attempts, ...fakeTime() }).catch(
    () => {},
  );
  assertEquals([seen.length, attempts.sent], [2, 3], "1 try + 1 hedge + 1 retry = 3");
});

Deno.test("retry() spends a budget token per retry and stops when the bucket is dry", async () => {
  const budget = new RetryBudget({ ratio: 0, burst: 2 });
  const { call, seen } = flaky(10);
  const stops: RetryStop[] = [];
  await retry(call, {
    idempotent: true,
    maxAttempts: 10,
    budget,
    onStop: (reason) => stops.push(reason),
    ...fakeTime(),
  }).catch(() => {});
  assertEquals([seen.length, stops, budget.tokens], [3, ["budget"], 0]);
});

Deno.test("a retry budget keeps retries within burst plus ratio times requests when every call fails", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 300 }),
      async (ratio, burst, maxAttempts, requests) => {
        const budget = new RetryBudget({ ratio, burst });
        let retries = 0;
        for (let r = 1; r <= requests; r++) {
          const { call, seen } = flaky(Infinity);
          await retry(call, { idempotent: true, maxAttempts, budget, ...fakeTime() }).catch(
            () => {},
          );
          retries += seen.length - 1;
          assert(retries <= burst + ratio * r + 1e-6, `${retries} retries after ${r} requests`);
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("full jitter draws each wait below min(cap, base × 2^(n-1))", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 1, max: 2_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (baseMs, extra, retry, draw) => {
        const capMs = baseMs + extra;
        const wait = fullJitter({ baseMs, capMs, random: () => draw })(retry);
        assert(Number.isFinite(wait) && wait >= 0);
        assert(wait <= Math.min(capMs, baseMs * 2 ** Math.min(retry - 1, 1000)));
      },
    ),
  );
});

Deno.test("bad backoff, budget and attempt options are rejected naming the field", () => {
  assertThrows(() => fullJitter({ baseMs: -1 }), /'baseMs'.*-1/);
  assertThrows(() => fullJitter({ baseMs: 10, capMs: 5 }), /'capMs'.*5/);
  assertThrows(() => new RetryBudget({ ratio: 2 }), /'ratio'.*2/);
  assertThrows(() => new RetryBudget({ burst: 0 }), /'burst'.*0/);
  assertThrows(() => new Attempts(0), /'max'.*0/);
});
