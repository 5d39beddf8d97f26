import { assert, assertEquals } from "../_assert.ts";
import { type Deferred, deferred, flush, rejectionOf } from "../_deferred.ts";
import { hedge, type HedgeDeclined, spareOf } from "../../src/hedging/hedge.ts";
import { HedgeBudget } from "../../src/hedging/hedge_budget.ts";
import { AdaptiveDelay } from "../../src/hedging/adaptive_delay.ts";
import { Semaphore } from "../../src/executor/semaphore.ts";

/** Delays long enough never to fire in a test that settles first. */
const NEVER_MS = 60_000;
/** Delays short enough to fire; tests wait for the event, never for the time. */
const SOON_MS = 1;

/** Attempts whose outcomes the test decides, each recording the signal it was given. */
function scripted<T>() {
  const calls: { attempt: number; signal: AbortSignal; outcome: Deferred<T> }[] = [];
  const sent: Deferred<number>[] = [deferred(), deferred(), deferred()];
  return {
    calls,
    /** Resolves when attempt `n` (1-based) has been called. */
    started: (n: number) => sent[n - 1].promise,
    attempt: (signal: AbortSignal, attempt: number): Promise<T> => {
      const outcome = deferred<T>();
      calls.push({ attempt, signal, outcome });
      // A well-behaved attempt stops when its signal aborts.
      signal.addEventListener("abort", () => outcome.reject(signal.reason), { once: true });
      sent[attempt - 1].resolve(attempt);
      return outcome.promise;
    },
  };
}

Deno.test("hedge() sends no hedge when the primary answers before the delay", async () => {
  const script = scripted<string>();
  const call = hedge(script.attempt, { delay: NEVER_MS });
  await script.started(1);
  script.calls[0].outcome.resolve("primary");
  assertEquals(await call, { value: "primary", winner: 1, attempts: 1 });
  assertEquals(script.calls.length, 1);
});

Deno.test("hedge() takes the hedge's answer and aborts the primary when the hedge wins", async () => {
  const script = scripted<string>();
  const call = hedge(script.attempt, { delay: SOON_MS });
  await script.started(2);
  script.calls[1].outcome.resolve("hedge");
  assertEquals(await call, { value: "hedge", winner: 2, attempts: 2 });
  assert(script.calls[0].signal.aborted, "the primary's signal is aborted");
  assertEquals((script.calls[0].signal.reason as DOMException).name, "AbortError");
});

Deno.test("hedge() sends no hedge when the budget has no token", async () => {
  const script = scripted<string>();
  const budget = new HedgeBudget({ ratio: 0, burst: 1 });
  assert(budget.tryTake(), "the one token is spent beforehand");
  const declined = deferred<HedgeDeclined>();
  const call = hedge(script.attempt, { delay: SOON_MS, budget, onDeclined: declined.resolve });
  assertEquals(await declined.promise, "budget");
  script.calls[0].outcome.resolve("primary");
  assertEquals(await call, { value: "primary", winner: 1, attempts: 1 });
  assertEquals(script.calls.length, 1);
});

Deno.test("hedge() sends no hedge and keeps its token when the limiter has no spare permit", async () => {
  const script = scripted<string>();
  const seats = new Semaphore(1);
  assert(seats.tryAcquire(1), "the only permit is held by someone else");
  const budget = new HedgeBudget({ ratio: 0, burst: 1 });
  const declined = deferred<HedgeDeclined>();
  const call = hedge(script.attempt, {
    delay: SOON_MS,
    budget,
    spare: spareOf(seats),
    onDeclined: declined.resolve,
  });
  assertEquals(await declined.promise, "capacity");
  script.calls[0].outcome.resolve("primary");
  assertEquals(await call, { value: "primary", winner: 1, attempts: 1 });
  assertEquals(budget.tokens, 1);
});

Deno.test("hedge() gives the hedge's permit back when the call ends", async () => {
  const script = scripted<string>();
  const seats = new Semaphore(1);
  const call = hedge(script.attempt, { delay: SOON_MS, spare: spareOf(seats) });
  await script.started(2);
  assertEquals(seats.used, 1);
  script.calls[0].outcome.resolve("primary");
  assertEquals((await call).winner, 1);
  assertEquals(seats.used, 0);
  assert(script.calls[1].signal.aborted, "the losing hedge is aborted");
});

Deno.test("hedge() rejects with the caller's reason and clears its timer when the caller aborts during the delay", async () => {
  const script = scripted<string>();
  const caller = new AbortController();
  const call = hedge(script.attempt, { delay: NEVER_MS, signal: caller.signal });
  await script.started(1);
  const reason = new Error("client went away");
  caller.abort(reason);
  assertEquals(await rejectionOf(call), reason);
  assert(script.calls[0].signal.aborted, "the primary is aborted");
  assertEquals(script.calls.length, 1);
});

Deno.test("hedge() rejects with the first error when every attempt fails", async () => {
  const script = scripted<string>();
  const call = hedge(script.attempt, { delay: SOON_MS });
  await script.started(2);
  const hedgeError = new Error("hedge failed first");
  script.calls[1].outcome.reject(hedgeError);
  await flush();
  script.calls[0].outcome.reject(new Error("primary failed later"));
  assertEquals(await rejectionOf(call), hedgeError);
});

Deno.test("hedge() prefers a real error to an AbortError when every attempt fails", async () => {
  const script = scripted<string>();
  const call = hedge(script.attempt, { delay: SOON_MS });
  await script.started(2);
  script.calls[0].outcome.reject(new DOMException("aborted below us", "AbortError"));
  await flush();
  const real = new Error("downstream answered 500");
  script.calls[1].outcome.reject(real);
  assertEquals(await rejectionOf(call), real);
});

Deno.test("hedge() rejects at once when the primary fails before the delay and hedgeOnFailure is off", async () => {
  const script = scripted<string>();
  const call = hedge(script.attempt, { delay: NEVER_MS });
  await script.started(1);
  const error = new Error("fast failure");
  script.calls[0].outcome.reject(error);
  assertEquals(await rejectionOf(call), error);
  assertEquals(script.calls.length, 1);
});

Deno.test("hedge() sends the hedge at once when the primary fails fast and hedgeOnFailure is on", async () => {
  const script = scripted<string>();
  const hedges: number[] = [];
  const call = hedge(script.attempt, {
    delay: NEVER_MS,
    hedgeOnFailure: true,
    onHedge: (n) => hedges.push(n),
  });
  await script.started(1);
  script.calls[0].outcome.reject(new Error("fast failure"));
  await script.started(2);
  script.calls[1].outcome.resolve("hedge");
  assertEquals(await call, { value: "hedge", winner: 2, attempts: 2 });
  assertEquals(hedges, [2]);
});

Deno.test("hedge() cancels the body of a losing Response that arrives after the win", async () => {
  const cancelled = deferred<unknown>();
  const lateBody = new ReadableStream({ cancel: (reason) => cancelled.resolve(reason) });
  const primary = deferred<Response>();
  const call = hedge<Response>(
    // This primary ignores its signal, as a fetch that already has its headers would.
    (_signal, attempt) => attempt === 1 ? primary.promise : Promise.resolve(new Response("hedge")),
    { delay: SOON_MS },
  );
  const { value, winner } = await call;
  assertEquals([winner, await value.text()], [2, "hedge"]);
  primary.resolve(new Response(lateBody));
  await cancelled.promise;
});

Deno.test("hedge() never sends more than maxAttempts", async () => {
  const script = scripted<string>();
  const hedges: number[] = [];
  const call = hedge(script.attempt, {
    delay: SOON_MS,
    maxAttempts: 3,
    onHedge: (n) => hedges.push(n),
  });
  await script.started(3);
  script.calls[2].outcome.resolve("third");
  assertEquals(await call, { value: "third", winner: 3, attempts: 3 });
  assertEquals(hedges, [2, 3]);
  assert(script.calls.slice(0, 2).every(({ signal }) => signal.aborted), "losers are aborted");
});

Deno.test("hedge() tells an adaptive delay the primary's latency, cut off or not", async () => {
  let now = 0;
  const seen: number[] = [];
  const delay = { delayMs: () => SOON_MS, observe: (ms: number) => seen.push(ms) };
  const script = scripted<string>();
  const call = hedge(script.attempt, { delay, clock: () => now });
  await script.started(2);
  now = 30;
  script.calls[1].outcome.resolve("hedge");
  await call;
  assertEquals(seen, [30]);
});

Deno.test("hedge() reports no latency for a primary that failed", async () => {
  const delay = new AdaptiveDelay({ windowSize: 1, minSamples: 1, fallbackMs: 7 });
  const error = new Error("failed");
  await rejectionOf(hedge(() => Promise.reject(error), { delay }));
  assertEquals(delay.delayMs(), 7);
});

Deno.test("hedge() rejects misuse with a RangeError naming the field", async () => {
  const error = await rejectionOf(hedge(() => "x", { delay: 1, maxAttempts: 0 }));
  assert(error instanceof RangeError);
  assert(/'maxAttempts' must be a positive integer: current value is 0/.test(error.message));
});
