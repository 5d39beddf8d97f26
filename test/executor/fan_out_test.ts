import { assert, assertEquals } from "../_assert.ts";
import {
  BranchError,
  BranchTimeoutError,
  DeadlineError,
  DEFAULT_LIMIT,
  fanOut,
  type FanOutResult,
  isBranchError,
  isDeadlineError,
} from "../../src/mod.ts";
import { type Deferred, deferred, flush, InFlight, rejectionOf } from "../_deferred.ts";

/** `n` gates and a branch function that counts itself in flight until its gate opens. */
function gated<R = string>(n: number) {
  const gates: Deferred<R>[] = Array.from({ length: n }, () => deferred<R>());
  const inFlight = new InFlight();
  const signals: AbortSignal[] = [];
  const fn = async (i: number, { signal }: { signal: AbortSignal }): Promise<R> => {
    inFlight.enter();
    signals[i] = signal;
    try {
      return await gates[i].promise;
    } finally {
      inFlight.leave();
    }
  };
  /** Opens every gate still closed, so no branch outlives its test. */
  const openAll = (value: R) => gates.forEach((g) => g.resolve(value));
  return { gates, inFlight, signals, fn, openAll };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

// --- Bad input -------------------------------------------------------------------------------

/** Awaits `promise`'s rejection and checks its class and message. */
async function assertRejectsWith(
  promise: Promise<unknown>,
  type: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor,
  pattern: RegExp,
): Promise<void> {
  const error = await rejectionOf(promise);
  assert(error instanceof type, `expected a ${type.name}, got ${Deno.inspect(error)}`);
  assert(pattern.test(error.message), `message ${JSON.stringify(error.message)} misses ${pattern}`);
}

Deno.test("fanOut() rejects a negative limit", async () => {
  await assertRejectsWith(
    fanOut([1], (n) => n, { limit: -1 }),
    RangeError,
    /'limit'.*current value is -1/,
  );
});

Deno.test("fanOut() rejects a NaN limit", async () => {
  await assertRejectsWith(fanOut([1], (n) => n, { limit: NaN }), RangeError, /value is NaN/);
});

Deno.test("fanOut() rejects a non-integer limit", async () => {
  await assertRejectsWith(fanOut([1], (n) => n, { limit: 1.5 }), RangeError, /value is 1.5/);
});

Deno.test("fanOut() rejects an unknown policy", async () => {
  await assertRejectsWith(
    // @ts-expect-error: testing a JavaScript caller's typo
    fanOut([1], (n) => n, { policy: "fastFail" }),
    TypeError,
    /'policy'.*current value is fastFail/,
  );
});

Deno.test("fanOut() rejects tasks that are not iterable", async () => {
  // @ts-expect-error: testing a JavaScript caller's mistake
  await assertRejectsWith(fanOut(null, (n) => n), TypeError, /'tasks'.*null/);
  // @ts-expect-error: testing a JavaScript caller's mistake
  await assertRejectsWith(fanOut(42, (n) => n), TypeError, /'tasks'.*number/);
});

Deno.test("fanOut() rejects an fn that is not a function", async () => {
  // @ts-expect-error: testing a JavaScript caller's mistake
  await assertRejectsWith(fanOut([1], "nope"), TypeError, /'fn'.*string/);
});

Deno.test("fanOut() rejects a non-positive timeoutMs", async () => {
  await assertRejectsWith(fanOut([1], (n) => n, { timeoutMs: 0 }), RangeError, /'timeoutMs'/);
});

// --- Limit -----------------------------------------------------------------------------------

Deno.test("fanOut() runs DEFAULT_LIMIT branches at once when limit is absent", async () => {
  const { inFlight, fn, openAll } = gated(DEFAULT_LIMIT * 3);
  const done = fanOut(range(DEFAULT_LIMIT * 3), fn);
  await flush();
  assertEquals(inFlight.now, DEFAULT_LIMIT);
  openAll("x");
  const result = await done;
  assertEquals(result.succeeded, DEFAULT_LIMIT * 3);
  assertEquals(inFlight.max, DEFAULT_LIMIT);
});

Deno.test("fanOut() treats limit 0 as DEFAULT_LIMIT", async () => {
  const { inFlight, fn, openAll } = gated(DEFAULT_LIMIT + 4);
  const done = fanOut(range(DEFAULT_LIMIT + 4), fn, { limit: 0 });
  await flush();
  assertEquals(inFlight.now, DEFAULT_LIMIT);
  openAll("x");
  await done;
  assertEquals(inFlight.max, DEFAULT_LIMIT);
});

Deno.test("fanOut() never has more than limit branches in flight", async () => {
  const n = 30;
  const { gates, inFlight, fn } = gated(n);
  const done = fanOut(range(n), fn, { limit: 3 });
  // Open gates out of order; after each one the limit must still hold and a seat refill.
  for (const i of [2, 0, 1, 5, 4, 3, 8, 6, 7, ...range(n).slice(9).reverse()]) {
    await flush();
    assert(inFlight.now <= 3, `in flight ${inFlight.now} > 3`);
    gates[i].resolve(`v${i}`);
  }
  const result = await done;
  assertEquals(inFlight.max, 3);
  assertEquals(result.succeeded, n);
});

Deno.test("fanOut() pulls ten million lazy tasks with never more than limit in flight", async () => {
  let pulled = 0;
  function* tasks() {
    for (let i = 0; i < 10_000_000; i++) {
      pulled++;
      yield i;
    }
  }
  const inFlight = new InFlight();
  let received = 0;
  const result = await fanOut(tasks(), async (n) => {
    inFlight.enter();
    await null;
    inFlight.leave();
    return n;
  }, { limit: 8, onResult: () => received++ });
  assert(inFlight.max <= 8, `max in flight ${inFlight.max}`);
  assertEquals(pulled, 10_000_000);
  assertEquals(result.pulled, 10_000_000);
  assertEquals(received, 10_000_000);
  assertEquals(result.values.length, 0);
  assertEquals(result.drained, true);
});

// --- Policies --------------------------------------------------------------------------------

Deno.test("failFast rejects with a BranchError carrying the index and the partial result", async () => {
  const { gates, fn, openAll } = gated(3);
  const done = fanOut(range(3), fn, { limit: 3, policy: "failFast" });
  await flush();
  gates[0].resolve("a");
  await flush();
  const boom = new Error("boom");
  gates[1].reject(boom);
  const error = await rejectionOf(done);
  assert(error instanceof BranchError);
  assertEquals(error.index, 1);
  assertEquals(error.cause, boom);
  assertEquals(error.message, "Branch 1 failed: boom");
  const partial = error.partial as FanOutResult<string>;
  assertEquals(partial.values[0], "a");
  assertEquals(partial.failed, [error]);
  assertEquals(partial.abandoned, [{ index: 2, reason: "failFast" }]);
  openAll("late");
});

Deno.test("failFast starts nothing after the first failure", async () => {
  const { gates, inFlight, fn, openAll } = gated(10);
  let closed = false;
  function* tasks() {
    try {
      yield* range(10);
    } finally {
      closed = true;
    }
  }
  const done = fanOut(tasks(), fn, { limit: 2, policy: "failFast" });
  await flush();
  gates[0].reject(new Error("first"));
  assert(await rejectionOf(done) instanceof BranchError);
  openAll("late");
  await flush();
  assertEquals(inFlight.started, 2);
  assertEquals(closed, true);
});

Deno.test("failFast aborts the signal of every running sibling", async () => {
  const { gates, signals, fn, openAll } = gated(3);
  const done = fanOut(range(3), fn, { limit: 3, policy: "failFast" });
  await flush();
  gates[2].reject(new Error("x"));
  const error = await done.catch((e) => e);
  assertEquals(signals[0].aborted, true);
  assertEquals(signals[1].aborted, true);
  assertEquals(signals[0].reason, error);
  openAll("late");
});

Deno.test("collectAll runs every branch and reports the failures as one AggregateError", async () => {
  const result = await fanOut(range(5), (i) => {
    if (i % 2 === 1) return Promise.reject(new Error(`bad ${i}`));
    return Promise.resolve(i * 10);
  }, { policy: "collectAll", limit: 2 });
  assertEquals(result.succeeded, 3);
  assert(result.errors instanceof AggregateError);
  assertEquals(result.errors.errors, result.failed);
  assertEquals(result.failed.map((e) => e.index).sort(), [1, 3]);
  assertEquals(result.drained, true);
});

Deno.test("collectAll leaves errors undefined when nothing failed", async () => {
  const result = await fanOut(range(3), (i) => i, { policy: "collectAll" });
  assertEquals(result.errors, undefined);
  assertEquals(result.values, [0, 1, 2]);
});

Deno.test("bestEffort reports failed and failedRatio and no AggregateError", async () => {
  const result = await fanOut(range(4), async (i) => {
    await null;
    if (i === 2) throw new Error("down");
    return i;
  }, { policy: "bestEffort" });
  assertEquals(result.succeeded, 3);
  assertEquals(result.failed.length, 1);
  assertEquals(result.failed[0].index, 2);
  assertEquals(result.failedRatio, 0.25);
  assertEquals(result.errors, undefined);
});

Deno.test("fanOut() defaults to bestEffort and resolves despite a failure", async () => {
  const result = await fanOut([1, 2], (n) => {
    if (n === 1) throw new Error("one");
    return n;
  });
  assertEquals(result.failed.length, 1);
  assertEquals(result.values[1], 2);
});

Deno.test("fanOut() reports failedRatio 0 when nothing finished", async () => {
  const result = await fanOut([], (n: number) => n);
  assertEquals(result.failedRatio, 0);
  assertEquals(result.pulled, 0);
  assertEquals(result.drained, true);
  assertEquals(result.values, []);
});

// --- Result shapes ---------------------------------------------------------------------------

Deno.test("ordered results are aligned to input index with holes where a branch failed", async () => {
  const { gates, fn } = gated(3);
  const done = fanOut(range(3), fn, { limit: 3 });
  await flush();
  gates[2].resolve("c");
  gates[1].reject(new Error("b failed"));
  gates[0].resolve("a");
  const result = await done;
  assertEquals(result.values[0], "a");
  assertEquals(Object.hasOwn(result.values, 1), false);
  assertEquals(result.values[2], "c");
  assertEquals(result.indexes, undefined);
});

Deno.test("unordered results come in completion order with their input indexes", async () => {
  const { gates, fn } = gated(3);
  const done = fanOut(range(3), fn, { limit: 3, ordered: false });
  await flush();
  for (const i of [2, 0, 1]) {
    gates[i].resolve(`v${i}`);
    await flush();
  }
  const result = await done;
  assertEquals(result.values, ["v2", "v0", "v1"]);
  assertEquals(result.indexes, [2, 0, 1]);
});

Deno.test("onResult receives each value in completion order and values stays empty", async () => {
  const { gates, fn } = gated(3);
  const seen: [string, number][] = [];
  const done = fanOut(range(3), fn, {
    limit: 3,
    onResult: (value, index) => seen.push([value, index]),
  });
  await flush();
  for (const i of [1, 2, 0]) {
    gates[i].resolve(`v${i}`);
    await flush();
  }
  const result = await done;
  assertEquals(seen, [["v1", 1], ["v2", 2], ["v0", 0]]);
  assertEquals(result.values, []);
  assertEquals(result.succeeded, 3);
});

Deno.test("an onResult callback that throws rejects the call with a clear Error", async () => {
  const oops = new Error("sink full");
  const error = await rejectionOf(fanOut([1, 2], (n) => n, {
    onResult: () => {
      throw oops;
    },
  }));
  assert(error instanceof Error && error.cause === oops);
  assert(/callback threw: sink full/.test(error.message));
});

// --- Cancellation ----------------------------------------------------------------------------

Deno.test("a caller abort mid-flight aborts every started branch and rejects with the reason", async () => {
  const { signals, fn, openAll } = gated(5);
  const controller = new AbortController();
  const done = fanOut(range(5), fn, { limit: 3, signal: controller.signal });
  await flush();
  const reason = new Error("client went away");
  controller.abort(reason);
  assertEquals(await rejectionOf(done), reason);
  assertEquals(signals.length, 3);
  for (const signal of signals) {
    assertEquals(signal.aborted, true);
    assertEquals(signal.reason, reason);
  }
  openAll("late");
});

Deno.test("a caller abort also aborts per-branch signals when timeoutMs is set", async () => {
  const { signals, fn, openAll } = gated(2);
  const controller = new AbortController();
  const done = fanOut(range(2), fn, { limit: 2, signal: controller.signal, timeoutMs: 60_000 });
  await flush();
  controller.abort("stop");
  assertEquals(await rejectionOf(done), "stop");
  assertEquals(signals.map((s) => [s.aborted, s.reason]), [[true, "stop"], [true, "stop"]]);
  openAll("late");
});

Deno.test("an already aborted signal rejects without starting any branch", async () => {
  let started = 0;
  const error = await rejectionOf(
    fanOut([1, 2], () => started++, { signal: AbortSignal.abort("early") }),
  );
  assertEquals(error, "early");
  assertEquals(started, 0);
});

// --- Time ------------------------------------------------------------------------------------

Deno.test("a budget smaller than minBudgetMs skips the first task with reason budget", async () => {
  let started = 0;
  const settled: [number, string][] = [];
  const result = await fanOut([1, 2, 3], () => started++, {
    limit: 2,
    budgetMs: 1,
    minBudgetMs: 1000,
    hooks: { onSettle: (index, outcome) => settled.push([index, outcome]) },
  });
  assertEquals(started, 0);
  assertEquals(result.skipped, [{ index: 0, reason: "budget" }]);
  assertEquals(settled, [[0, "skipped"]]);
  assertEquals(result.pulled, 1);
  assertEquals(result.drained, false);
});

Deno.test("timeoutMs fails a slow branch with BranchTimeoutError and aborts its signal without awaiting it", async () => {
  const gate = deferred<string>();
  let branchSignal: AbortSignal | undefined;
  let branchFinished = false;
  const result = await fanOut([0], async (_, { signal }) => {
    branchSignal = signal;
    const value = await gate.promise; // ignores its signal on purpose
    branchFinished = true;
    return value;
  }, { timeoutMs: 2 });
  assertEquals(branchFinished, false);
  assertEquals(result.failed.length, 1);
  const [error] = result.failed;
  assert(error instanceof BranchTimeoutError);
  assertEquals(error.index, 0);
  assertEquals(error.timeoutMs, 2);
  assertEquals(branchSignal?.aborted, true);
  assertEquals(branchSignal?.reason, error);
  gate.resolve("late");
  await flush();
  assertEquals(branchFinished, true);
  assertEquals(result.succeeded, 0);
});

Deno.test("a timed-out branch's seat passes to the next task", async () => {
  const gate = deferred<string>();
  const outcomes: [number, string][] = [];
  const result = await fanOut([0, 1], (i) => i === 0 ? gate.promise : "quick", {
    limit: 1,
    timeoutMs: 2,
    hooks: { onSettle: (index, outcome) => outcomes.push([index, outcome]) },
  });
  assertEquals(outcomes, [[0, "timeout"], [1, "ok"]]);
  assertEquals(result.values[1], "quick");
  gate.resolve("late");
});

Deno.test("timeoutMs under failFast rejects with the BranchTimeoutError", async () => {
  const gate = deferred<string>();
  const error = await rejectionOf(
    fanOut([0], () => gate.promise, { timeoutMs: 1, policy: "failFast" }),
  );
  assert(error instanceof BranchTimeoutError);
  gate.resolve("late");
});

Deno.test("a last branch timing out under a budget leaves no timer running", async () => {
  // The sanitizer fails this test if the call re-arms its budget timer after settling.
  const gate = deferred<string>();
  const result = await fanOut([0], () => gate.promise, {
    limit: 1,
    timeoutMs: 1,
    budgetMs: 60_000,
  });
  assert(result.failed[0] instanceof BranchTimeoutError);
  gate.resolve("late");
});

Deno.test("the whole-call deadline abandons running branches with reason deadline under bestEffort", async () => {
  const { gates, signals, fn, openAll } = gated(3);
  // All three start in the synchronous start(), so no task is pulled late enough to be skipped.
  const done = fanOut(range(3), fn, { limit: 3, budgetMs: 20, minBudgetMs: 0 });
  await flush();
  gates[0].resolve("a");
  const result = await done;
  assertEquals(result.values[0], "a");
  assertEquals(result.abandoned.toSorted((a, b) => a.index - b.index), [
    { index: 1, reason: "deadline" },
    { index: 2, reason: "deadline" },
  ]);
  assertEquals(result.pulled, 3);
  // Branch 0 had settled: only the two still running are aborted.
  assertEquals(signals[0].aborted, false);
  assert(signals.slice(1).every((s) => s.aborted && isDeadlineError(s.reason)));
  openAll("late");
});

Deno.test("the whole-call deadline rejects with DeadlineError and partial under failFast", async () => {
  const { fn, openAll } = gated(2);
  // minBudgetMs 0 and a budget well above the start's duration: both branches start, even on a
  // loaded machine, so the deadline (not a skip) decides.
  const error = await fanOut(range(2), fn, {
    limit: 2,
    budgetMs: 20,
    minBudgetMs: 0,
    policy: "failFast",
  }).catch((e) => e);
  assert(error instanceof DeadlineError);
  assertEquals(error.budgetMs, 20);
  const partial = error.partial as FanOutResult<string>;
  assertEquals(partial.abandoned.map((b) => b.reason), ["deadline", "deadline"]);
  openAll("late");
});

// --- Misbehaving branches and sources --------------------------------------------------------

Deno.test("a branch that throws synchronously becomes a BranchError", async () => {
  const oops = new TypeError("sync");
  const result = await fanOut([0, 1], (i) => {
    if (i === 0) throw oops;
    return i;
  });
  assert(result.failed[0] instanceof BranchError);
  assertEquals(result.failed[0].index, 0);
  assertEquals(result.failed[0].cause, oops);
  assertEquals(result.values[1], 1);
});

Deno.test("a branch rejecting with a string becomes a BranchError that says so", async () => {
  const error = await fanOut([0], () => Promise.reject("nope"), { policy: "failFast" })
    .catch((e) => e);
  assert(isBranchError(error));
  assertEquals(error.cause, "nope");
  assert(/non-Error value \(string: nope\)/.test(error.message), error.message);
});

Deno.test("a branch rejecting with undefined becomes a BranchError that says so", async () => {
  const result = await fanOut([0], () => Promise.reject(undefined));
  const [error] = result.failed;
  assert(error instanceof BranchError);
  assertEquals(error.cause, undefined);
  assert(/non-Error value \(undefined: undefined\)/.test(error.message), error.message);
});

Deno.test("a tasks iterator that throws rejects the call with a clear Error", async () => {
  const broken = new Error("disk gone");
  function* tasks() {
    yield 1;
    throw broken;
  }
  const error = await rejectionOf(fanOut(tasks(), (n) => n));
  assert(error instanceof Error && error.cause === broken);
  assert(/task source .* threw: disk gone/.test(error.message), error.message);
});

Deno.test("a tasks iterator that throws on the first pull rejects the call", async () => {
  const iterable: Iterable<number> = {
    [Symbol.iterator]: () => ({
      next: () => {
        throw "no";
      },
    }),
  };
  const error = await rejectionOf(fanOut(iterable, (n) => n));
  assert(error instanceof Error && error.cause === "no");
});

// --- Hooks -----------------------------------------------------------------------------------

Deno.test("onStart and onSettle report each branch with its outcome", async () => {
  const started: number[] = [];
  const settled: [number, string][] = [];
  await fanOut([0, 1, 2], (i) => {
    if (i === 1) throw new Error("x");
    return i;
  }, {
    limit: 1,
    hooks: {
      onStart: (index) => started.push(index),
      onSettle: (index, outcome, durationMs) => {
        assert(durationMs >= 0);
        settled.push([index, outcome]);
      },
    },
  });
  assertEquals(started, [0, 1, 2]);
  assertEquals(settled, [[0, "ok"], [1, "error"], [2, "ok"]]);
});

Deno.test("onSettle reports branches abandoned by a caller abort", async () => {
  const { fn, openAll } = gated(2);
  const controller = new AbortController();
  const settled: [number, string][] = [];
  const done = fanOut(range(2), fn, {
    limit: 2,
    signal: controller.signal,
    hooks: { onSettle: (index, outcome) => settled.push([index, outcome]) },
  });
  await flush();
  controller.abort("bye");
  await done.catch(() => {});
  assertEquals(settled, [[0, "abandoned"], [1, "abandoned"]]);
  openAll("late");
});

Deno.test("a throwing onStart hook rejects the call instead of escaping the worker", async () => {
  const broken = new Error("metrics down");
  const error = await rejectionOf(fanOut([1, 2], (n) => n, {
    hooks: {
      onStart: () => {
        throw broken;
      },
    },
  }));
  assert(error instanceof Error && error.cause === broken, String(error));
});

Deno.test("a throwing onSettle hook rejects the call instead of escaping the worker", async () => {
  const broken = new Error("metrics down");
  const error = await rejectionOf(fanOut([1, 2], (n) => n, {
    hooks: {
      onSettle: () => {
        throw broken;
      },
    },
  }));
  assert(error instanceof Error && error.cause === broken, String(error));
});

// --- A settled branch keeps its signal -------------------------------------------------------

Deno.test("a branch that succeeded is not aborted by a later caller abort when no timeoutMs is set", async () => {
  const { gates, signals, fn, openAll } = gated(2);
  const controller = new AbortController();
  const done = fanOut(range(2), fn, { limit: 2, signal: controller.signal, budgetMs: 60_000 });
  await flush();
  gates[0].resolve("body still streaming");
  await flush();
  controller.abort("client went away");
  assertEquals(await rejectionOf(done), "client went away");
  assertEquals(signals[0].aborted, false);
  assertEquals(signals[1].aborted, true);
  openAll("late");
});

Deno.test("a branch that settled is not aborted when a sibling fails under failFast", async () => {
  const { gates, signals, fn, openAll } = gated(3);
  const done = fanOut(range(3), fn, { limit: 3, policy: "failFast" });
  await flush();
  gates[0].resolve("kept");
  await flush();
  gates[1].reject(new Error("boom"));
  assert(isBranchError(await rejectionOf(done)));
  // The failed branch settled too: only the one still running is aborted.
  assertEquals(signals.map((s) => s.aborted), [false, false, true]);
  openAll("late");
});

Deno.test("a branch that succeeded is not aborted when the whole-call deadline passes", async () => {
  const { gates, signals, fn, openAll } = gated(2);
  const done = fanOut(range(2), fn, { limit: 2, budgetMs: 20, minBudgetMs: 0 });
  await flush();
  gates[0].resolve("kept");
  const result = await done;
  assertEquals(result.abandoned, [{ index: 1, reason: "deadline" }]);
  assertEquals(signals.map((s) => s.aborted), [false, true]);
  openAll("late");
});

// --- A task skipped for lack of budget is no success -----------------------------------------

Deno.test("failFast rejects with a DeadlineError and the partial result when a task is skipped for budget", async () => {
  let started = 0;
  const error = await rejectionOf(fanOut([1, 2, 3], () => started++, {
    limit: 1,
    policy: "failFast",
    budgetMs: 1,
    minBudgetMs: 1000,
  }));
  assert(error instanceof DeadlineError, `got ${Deno.inspect(error)}`);
  assertEquals(error.budgetMs, 1);
  const partial = error.partial as FanOutResult<number>;
  assertEquals(partial.skipped, [{ index: 0, reason: "budget" }]);
  assertEquals(started, 0);
});

Deno.test("collectAll counts a task skipped for budget in errors", async () => {
  const result = await fanOut([1, 2, 3], (n) => n, {
    limit: 1,
    policy: "collectAll",
    budgetMs: 1,
    minBudgetMs: 1000,
  });
  assertEquals(result.skipped, [{ index: 0, reason: "budget" }]);
  assert(result.errors instanceof AggregateError);
  assertEquals(result.errors.errors.length, 1);
  assert(result.errors.errors[0] instanceof DeadlineError);
  assert(/budget of 1 ms ran out with 1 task unfinished/.test(result.errors.message));
});

Deno.test("collectAll counts branches abandoned at the whole-call deadline in errors", async () => {
  const { gates, fn, openAll } = gated(2);
  const done = fanOut(range(2), fn, {
    limit: 2,
    budgetMs: 20,
    minBudgetMs: 0,
    policy: "collectAll",
  });
  await flush();
  gates[0].reject(new Error("boom"));
  const result = await done;
  assertEquals(result.abandoned, [{ index: 1, reason: "deadline" }]);
  assert(result.errors instanceof AggregateError);
  assertEquals(result.errors.errors.length, 2);
  assert(isBranchError(result.errors.errors[0]));
  assert(result.errors.errors[1] instanceof DeadlineError);
  assertEquals(
    result.errors.message,
    "1 of 1 branches failed, and the budget of 20 ms ran out with 1 task unfinished",
  );
  openAll("late");
});

// --- Never a hang ----------------------------------------------------------------------------

Deno.test("a branch rejecting with a value that has no string form becomes a BranchError", async () => {
  const odd = Object.create(null);
  const result = await fanOut([0, 1], (i) => i === 0 ? Promise.reject(odd) : i);
  assertEquals(result.succeeded, 1);
  const [error] = result.failed;
  assert(isBranchError(error));
  assertEquals(error.cause, odd);
  assert(/non-Error value \(object: no string form\)/.test(error.message), error.message);
});

Deno.test("a tasks iterator whose next() returns undefined rejects the call", async () => {
  const tasks = { [Symbol.iterator]: () => ({ next: () => undefined }) };
  const error = await rejectionOf(fanOut(tasks as unknown as Iterable<number>, (n) => n));
  assert(error instanceof Error && error.cause instanceof TypeError, Deno.inspect(error));
  assert(/task source or callback threw/.test(error.message), error.message);
});

Deno.test("a tasks iterator that throws a value with no string form rejects the call", async () => {
  const odd = Object.create(null);
  const tasks = {
    [Symbol.iterator]: () => ({
      next: () => {
        throw odd;
      },
    }),
  };
  const error = await rejectionOf(fanOut(tasks as unknown as Iterable<number>, (n) => n));
  assert(error instanceof Error && error.cause === odd, Deno.inspect(error));
});

// --- Far deadlines ---------------------------------------------------------------------------

/** Runs `action` with `setTimeout` recording every delay it is given. */
async function recordingTimerDelays(action: () => Promise<unknown>): Promise<number[]> {
  const delays: number[] = [];
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return original(fn, ms);
  }) as typeof setTimeout;
  try {
    await action();
  } finally {
    globalThis.setTimeout = original;
  }
  return delays;
}

Deno.test("timeoutMs and budgetMs above 2^31 - 1 ms arm no timer beyond setTimeout's range", async () => {
  for (const options of [{ timeoutMs: 2 ** 31 }, { budgetMs: 2 ** 40 }]) {
    const gate = deferred<string>();
    const delays = await recordingTimerDelays(async () => {
      const done = fanOut([0], () => gate.promise, options);
      await flush();
      gate.resolve("ok");
      assertEquals((await done).values, ["ok"]);
    });
    assertEquals(delays.length, 1, `delays ${delays}`);
    assert(delays[0] <= 2 ** 31 - 1, `delay ${delays[0]}`);
  }
});

// --- The source's clean-up -------------------------------------------------------------------

/** A source of `0, 1, …` counting its `return()` calls; `next()` throws at `throwAt`. */
function closableSource(throwAt = Infinity) {
  const seen = { returns: 0 };
  let next = 0;
  const tasks = {
    [Symbol.iterator]: () => ({
      next: () => {
        if (next === throwAt) throw new Error("disk gone");
        return { done: false, value: next++ };
      },
      return: () => {
        seen.returns++;
        return { done: true, value: undefined };
      },
    }),
  };
  return { tasks: tasks as Iterable<number>, seen };
}

Deno.test("fanOut() calls the source's return() once when a budget skip is followed by an abort", async () => {
  const { tasks, seen } = closableSource();
  const gate = deferred<string>();
  const controller = new AbortController();
  const done = fanOut(tasks, () => {
    // The first branch keeps the clock moving past the 50 ms margin before the second pull,
    // which then finds too little budget left and closes the source.
    const until = performance.now() + 51;
    while (performance.now() < until) { /* spin: no timers, so no race */ }
    return gate.promise;
  }, { limit: 2, budgetMs: 60_000, minBudgetMs: 59_950, signal: controller.signal });
  await flush();
  controller.abort("enough");
  assertEquals(await rejectionOf(done), "enough");
  gate.resolve("late");
  assertEquals(seen.returns, 1);
});

Deno.test("fanOut() does not call return() on a source whose next() threw", async () => {
  const { tasks, seen } = closableSource(2);
  const error = await rejectionOf(fanOut(tasks, (n) => n, { limit: 1 }));
  assert(error instanceof Error && /disk gone/.test(error.message));
  assertEquals(seen.returns, 0);
});

Deno.test("fanOut() rejects an onResult or hooks that are not functions before running anything", async () => {
  let started = 0;
  const fn = (n: number) => {
    started++;
    return n;
  };
  // @ts-expect-error: testing a JavaScript caller's mistake
  await assertRejectsWith(fanOut([1], fn, { onResult: "log" }), TypeError, /'onResult'.*string/);
  // @ts-expect-error: testing a JavaScript caller's mistake
  await assertRejectsWith(fanOut([1], fn, { hooks: 42 }), TypeError, /'hooks'.*number/);
  await assertRejectsWith(
    // @ts-expect-error: testing a JavaScript caller's mistake
    fanOut([1], fn, { hooks: { onSettle: "count" } }),
    TypeError,
    /'hooks.onSettle'.*string/,
  );
  // @ts-expect-error: testing a JavaScript caller's mistake
  await assertRejectsWith(fanOut([1], fn, { timers: {} }), TypeError, /'timers'.*object/);
  assertEquals(started, 0);
});

Deno.test("fanOut() sets its budget's timeout on the timers it is given", async () => {
  const set: number[] = [];
  let cleared = 0;
  const timers = {
    setTimeout: (run: () => void, delayMs: number) => (set.push(delayMs), setTimeout(run, delayMs)),
    clearTimeout: (handle: unknown) => (cleared++, clearTimeout(handle as number)),
  };
  const result = await fanOut([1, 2], (n) => n, { budgetMs: 5000, timers });
  assertEquals(result.values, [1, 2]);
  assertEquals(set.length, 1);
  assert(set[0] > 0 && set[0] <= 5000, `armed within the budget: ${set[0]} ms`);
  assertEquals(cleared, 1);
});

// --- Async sources ---------------------------------------------------------------------------

Deno.test("fanOut() runs the tasks of an async iterable, aligned to the order they were read", async () => {
  async function* tasks() {
    for (let i = 0; i < 5; i++) yield i;
  }
  const result = await fanOut(tasks(), (n) => Promise.resolve(n * 10), { limit: 2 });
  assertEquals(result.values, [0, 10, 20, 30, 40]);
  assertEquals(result.drained, true);
  assertEquals(result.pulled, 5);
});

Deno.test("fanOut() runs the tasks of a ReadableStream and cancels it when it stops early", async () => {
  let next = 0;
  let cancelled: unknown;
  const source = new ReadableStream<number>({
    pull: (c) => c.enqueue(next++),
    cancel: (reason) => {
      cancelled = reason;
    },
  });
  const error = await rejectionOf(fanOut(source, (n) => {
    if (n === 3) throw new Error("stop here");
    return n;
  }, { limit: 1, policy: "failFast" }));
  assert(isBranchError(error) && error.index === 3);
  assertEquals(cancelled, error);
  const drained = await fanOut(ReadableStream.from([1, 2, 3]), (n) => n + 1, { limit: 2 });
  assertEquals(drained.values, [2, 3, 4]);
});

Deno.test("fanOut() reads an async source one task at a time, never more than limit in flight", async () => {
  let reading = 0;
  let maxReading = 0;
  let reads = 0;
  const gates: Deferred<void>[] = [];
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        reads++;
        maxReading = Math.max(maxReading, ++reading);
        await flush(2);
        reading--;
        const i = gates.length;
        if (i === 10) return { done: true, value: undefined };
        gates.push(deferred());
        return { done: false, value: i };
      },
    }),
  };
  const inFlight = new InFlight();
  const done = fanOut(source, async (i) => {
    inFlight.enter();
    await gates[i].promise;
    inFlight.leave();
    return i;
  }, { limit: 3 });
  await flush(60);
  assertEquals(inFlight.now, 3);
  for (let i = 0; i < 10; i++) {
    gates[i]?.resolve();
    await flush(60);
  }
  const result = await done;
  assertEquals(result.succeeded, 10);
  assertEquals(inFlight.max, 3);
  assertEquals(maxReading, 1);
  assertEquals(reads, 11);
});

Deno.test("fanOut() with a huge limit starts no more workers than an async source has tasks", async () => {
  let reads = 0;
  async function* tasks() {
    for (let i = 0; i < 3; i++) {
      reads++;
      yield i;
    }
    reads++;
  }
  const result = await fanOut(tasks(), (n) => n, { limit: 1_000_000 });
  assertEquals(result.values, [0, 1, 2]);
  assertEquals(reads, 4);
});

Deno.test("fanOut() rejects when an async source fails, and closes one it abandons", async () => {
  async function* failing() {
    yield 1;
    throw new Error("disk gone");
  }
  const error = await rejectionOf(fanOut(failing(), (n) => n));
  assert(error instanceof Error && /task source or callback threw: disk gone/.test(error.message));
  let closed = false;
  async function* endless() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      closed = true;
    }
  }
  const failFast = await rejectionOf(fanOut(endless(), (n) => {
    if (n === 2) throw new Error("boom");
    return n;
  }, { limit: 1, policy: "failFast" }));
  assert(isBranchError(failFast));
  await flush();
  assert(closed);
});
