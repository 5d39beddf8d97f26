import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { type Deferred, deferred, flush, rejectionOf } from "../_deferred.ts";
import { BranchError, BranchTimeoutError, isBranchError } from "../../src/executor/errors.ts";
import { fanOutStream, type StreamResult } from "../../src/executor/fan_out_stream.ts";

/** A sync source of `0 … count - 1` that counts what was read and whether it was closed. */
function countingSource(count = Infinity) {
  const seen = { pulled: 0, closed: false };
  function* numbers() {
    try {
      for (let i = 0; i < count; i++) {
        seen.pulled++;
        yield i;
      }
    } finally {
      seen.closed = true;
    }
  }
  return { source: numbers(), seen };
}

/** A branch function whose every call waits for the test to settle it by index. */
function controlledBranches() {
  const pending = new Map<number, Deferred<number>>();
  const signals = new Map<number, AbortSignal>();
  const fn = (n: number, { signal }: { signal: AbortSignal }) => {
    const d = deferred<number>();
    pending.set(n, d);
    signals.set(n, signal);
    return d.promise;
  };
  const settle = (n: number, value = n * 10) => {
    pending.get(n)!.resolve(value);
    pending.delete(n);
  };
  return { fn, pending, signals, settle };
}

async function collect<R>(stream: AsyncIterable<StreamResult<R>>): Promise<StreamResult<R>[]> {
  const out: StreamResult<R>[] = [];
  for await (const r of stream) out.push(r);
  return out;
}

Deno.test("fanOutStream() keeps pulled-but-unread tasks within limit + highWaterMark when the consumer reads at half the producer's rate", async () => {
  const { source, seen } = countingSource();
  const { fn, pending, settle } = controlledBranches();
  const limit = 4;
  const highWaterMark = 3;
  const stream = fanOutStream(source, fn, { limit, highWaterMark, ordered: false });
  const reader = stream.getReader();
  let consumed = 0;
  let worst = 0;
  await flush();
  for (let round = 0; round < 60; round++) {
    // The producer finishes two tasks for every one the consumer reads.
    for (const n of [...pending.keys()].slice(0, 2)) settle(n);
    await flush();
    worst = Math.max(worst, seen.pulled - consumed);
    assert(stream.stats.inFlight <= limit, `in flight ${stream.stats.inFlight}`);
    const { done } = await reader.read();
    assert(!done);
    consumed++;
  }
  assert(worst <= limit + highWaterMark, `pulled-but-unread reached ${worst}`);
  // The producer is throttled to the consumer: 60 reads let the source advance by about 60.
  assert(seen.pulled <= consumed + limit + highWaterMark, `pulled ${seen.pulled}`);
  await reader.cancel();
  assert(seen.closed);
});

Deno.test("fanOutStream() in ordered mode holds at most `window` results behind a straggler and starts nothing beyond it", async () => {
  const { source, seen } = countingSource(20);
  const { fn, pending, settle } = controlledBranches();
  const stream = fanOutStream(source, fn, { limit: 8, window: 3, highWaterMark: 100 });
  const reader = stream.getReader();
  await flush();
  // Task 0 is the straggler; everything the window let start finishes.
  for (const n of [...pending.keys()].filter((n) => n !== 0)) settle(n);
  await flush();
  assertEquals(seen.pulled, 4);
  assertEquals([...pending.keys()], [0]);
  assertEquals(stream.stats.held, 3);
  settle(0);
  const order: number[] = [];
  for (let i = 0; i < 20; i++) {
    await flush();
    for (const n of [...pending.keys()]) settle(n);
    const { value } = await reader.read();
    order.push(value!.index);
  }
  assertEquals(order, Array.from({ length: 20 }, (_, i) => i));
  assert(stream.stats.peakHeld <= 3);
  assert((await reader.read()).done);
});

Deno.test("fanOutStream() in unordered mode emits results in completion order", async () => {
  const { fn, pending, settle } = controlledBranches();
  const stream = fanOutStream([0, 1, 2, 3], fn, { limit: 4, ordered: false });
  const results = collect(stream);
  await flush();
  assertEquals(pending.size, 4);
  for (const n of [2, 0, 3, 1]) {
    settle(n);
    await flush();
  }
  assertEquals((await results).map((r) => r.index), [2, 0, 3, 1]);
});

Deno.test("fanOutStream() under bestEffort turns a failed task into an error record and goes on", async () => {
  const results = await collect(
    fanOutStream([1, 2, 3], (n) => {
      if (n === 2) throw new Error("no stock");
      return Promise.resolve(n);
    }, { limit: 2 }),
  );
  assertEquals(results.map((r) => r.ok), [true, false, true]);
  const failed = results[1];
  assert(!failed.ok && isBranchError(failed.error) && failed.error.index === 1);
  assert(!failed.ok && !failed.aborted && (failed.error.cause as Error).message === "no stock");
});

Deno.test("fanOutStream() under collectAll emits every success, then errors with an AggregateError of the failures", async () => {
  const stream = fanOutStream([1, 2, 3, 4], (n) => {
    if (n % 2 === 0) return Promise.reject(new Error(`bad ${n}`));
    return Promise.resolve(n);
  }, { policy: "collectAll" });
  const seen: number[] = [];
  const error = await rejectionOf((async () => {
    for await (const r of stream) if (r.ok) seen.push(r.value);
  })());
  assertEquals(seen, [1, 3]);
  assert(error instanceof AggregateError);
  assertEquals(error.errors.map((e: BranchError) => e.index), [1, 3]);
});

Deno.test("fanOutStream() under failFast aborts the siblings, closes the source and errors with the first BranchError", async () => {
  const { source, seen } = countingSource();
  const { fn, signals, pending } = controlledBranches();
  const stream = fanOutStream(source, fn, { limit: 3, policy: "failFast", ordered: false });
  const reading = rejectionOf(collect(stream));
  await flush();
  pending.get(1)!.reject(new Error("boom"));
  const error = await reading;
  assert(error instanceof BranchError && error.index === 1);
  assert(signals.get(0)!.aborted && signals.get(2)!.aborted);
  assert(seen.closed);
  assertEquals(seen.pulled, 3);
});

Deno.test("fanOutStream() turns a branch that outlives timeoutMs into a BranchTimeoutError record", async () => {
  const results = await collect(
    fanOutStream([0, 1], (n, { signal }) => {
      if (n === 0) return Promise.resolve("fast");
      // Settles only when its deadline aborts it.
      return new Promise<string>((_, reject) => signal.addEventListener("abort", reject));
    }, { timeoutMs: 1 }),
  );
  assertEquals(results[0], { index: 0, ok: true, value: "fast" });
  const late = results[1];
  assert(!late.ok && late.error instanceof BranchTimeoutError && late.error.index === 1);
});

Deno.test("fanOutStream() aborts every in-flight branch and calls the source's return() when the consumer breaks out", async () => {
  let returned = false;
  async function* tasks() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      returned = true;
    }
  }
  const { fn, signals, pending, settle } = controlledBranches();
  const stream = fanOutStream(tasks(), fn, { limit: 3, ordered: false });
  await flush();
  settle(0);
  for await (const r of stream) {
    assertEquals(r.index, 0);
    break;
  }
  assert(returned);
  assert(pending.size > 0);
  assert([...pending.keys()].every((n) => signals.get(n)!.aborted));
});

Deno.test("fanOutStream() cancels a ReadableStream source when the stream is cancelled", async () => {
  let cancelled: unknown;
  let next = 0;
  const source = new ReadableStream<number>({
    pull: (c) => c.enqueue(next++),
    cancel: (reason) => {
      cancelled = reason;
    },
  });
  const { fn, signals } = controlledBranches();
  const stream = fanOutStream(source, fn, { limit: 2 });
  await flush();
  await stream.cancel("enough");
  assertEquals(cancelled, "enough");
  assertEquals(signals.size, 2);
  assert([...signals.values()].every((s) => s.aborted));
});

Deno.test("fanOutStream() drain() stops reading tasks and delivers every in-flight result", async () => {
  const { source, seen } = countingSource();
  const { fn, pending, settle, signals } = controlledBranches();
  const stream = fanOutStream(source, fn, { limit: 3, ordered: false });
  const results = collect(stream);
  await flush();
  stream.drain();
  assert(seen.closed);
  for (const n of [...pending.keys()]) settle(n);
  const got = await results;
  assertEquals(got.map((r) => r.ok && r.value).sort(), [0, 10, 20]);
  assertEquals(seen.pulled, 3);
  assert([...signals.values()].every((s) => !s.aborted));
});

Deno.test("fanOutStream() abort() aborts the in-flight branches and reports each as an aborted record", async () => {
  const { source, seen } = countingSource();
  const { fn, signals, settle } = controlledBranches();
  const stream = fanOutStream(source, fn, { limit: 3 });
  const results = collect(stream);
  await flush();
  settle(0);
  await flush();
  stream.abort(new Error("second Ctrl-C"));
  const got = await results;
  assertEquals(got.map((r) => [r.index, r.ok, !r.ok && r.aborted]), [
    [0, true, false],
    [1, false, true],
    [2, false, true],
    [3, false, true],
  ]);
  assert(seen.closed);
  assert(signals.get(1)!.aborted && signals.get(3)!.aborted);
  assertEquals(stream.stats.aborted, 3);
});

Deno.test("fanOutStream() treats an abort of the caller's signal as abort()", async () => {
  const controller = new AbortController();
  const { fn } = controlledBranches();
  const stream = fanOutStream([1, 2], fn, { signal: controller.signal });
  const results = collect(stream);
  await flush();
  controller.abort("client gone");
  const got = await results;
  assertEquals(got.map((r) => r.index).toSorted(), [0, 1]);
  assert(got.every((r) => !r.ok && r.aborted && r.error.cause === "client gone"));
});

Deno.test("fanOutStream() throws on misuse, naming the field and its value", () => {
  assertThrows(() => fanOutStream(42 as unknown as number[], (n) => n), /'source'.*number/);
  assertThrows(() => fanOutStream([1], (n) => n, { window: -1 }), /'window'.*-1/);
  assertThrows(() => fanOutStream([1], (n) => n, { limit: 1.5 }), /'limit'.*1\.5/);
});

Deno.test("fanOutStream() never aborts the signal of a branch that succeeded when the consumer breaks out", async () => {
  const { fn, signals, settle } = controlledBranches();
  const stream = fanOutStream([0, 1, 2], fn, { limit: 3, ordered: false });
  await flush();
  settle(0);
  for await (const r of stream) {
    assertEquals(r.index, 0);
    break;
  }
  assertEquals([0, 1, 2].map((n) => signals.get(n)!.aborted), [false, true, true]);
});

Deno.test("fanOutStream() turns a branch rejecting with a value that has no string form into a BranchError", async () => {
  const odd = Object.create(null);
  const got = await collect(fanOutStream([0, 1], (i) => i === 0 ? Promise.reject(odd) : i));
  assertEquals(got.length, 2);
  const failed = got.find((r) => !r.ok);
  assert(failed !== undefined && !failed.ok && isBranchError(failed.error));
  assertEquals(failed.error.cause, odd);
});

Deno.test("fanOutStream() errors when the source's next() returns undefined, sync or async", async () => {
  const sync = { [Symbol.iterator]: () => ({ next: () => undefined }) };
  const async = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve(undefined) }) };
  for (const source of [sync, async]) {
    const error = await rejectionOf(
      collect(fanOutStream(source as unknown as Iterable<number>, (n) => n)),
    );
    assert(error instanceof Error && error.cause instanceof TypeError, Deno.inspect(error));
  }
});

Deno.test("fanOutStream() in ordered mode under failFast stops at a failure queued behind a slow head", async () => {
  const { source, seen } = countingSource();
  const { fn, signals, pending } = controlledBranches();
  const stream = fanOutStream(source, fn, { limit: 4, policy: "failFast" });
  const reading = rejectionOf(collect(stream));
  await flush();
  pending.get(1)!.reject(new Error("boom"));
  const error = await reading;
  assert(error instanceof BranchError && error.index === 1);
  assertEquals([0, 2, 3].map((n) => signals.get(n)!.aborted), [true, true, true]);
  assert(seen.closed);
  assertEquals(seen.pulled, 4);
});

Deno.test("fanOutStream() stats count the branches cut off by failFast", async () => {
  const { fn, pending } = controlledBranches();
  const stream = fanOutStream([0, 1, 2, 3], fn, { limit: 4, policy: "failFast", ordered: false });
  const reading = rejectionOf(collect(stream));
  await flush();
  pending.get(1)!.reject(new Error("boom"));
  await reading;
  const { pulled, succeeded, failed, aborted, inFlight } = stream.stats;
  assertEquals({ pulled, succeeded, failed, aborted, inFlight }, {
    pulled: 4,
    succeeded: 0,
    failed: 1,
    aborted: 3,
    inFlight: 0,
  });
});

Deno.test("fanOutStream() stats count the branches cut off when the consumer breaks out", async () => {
  const { fn, settle } = controlledBranches();
  const stream = fanOutStream([0, 1, 2, 3], fn, { limit: 4, ordered: false });
  await flush();
  settle(2);
  for await (const _ of stream) break;
  const { pulled, succeeded, failed, aborted, inFlight } = stream.stats;
  assertEquals({ pulled, succeeded, failed, aborted, inFlight }, {
    pulled: 4,
    succeeded: 1,
    failed: 0,
    aborted: 3,
    inFlight: 0,
  });
});

Deno.test("fanOutStream() turns a thenable whose then() throws into a BranchError record and goes on", async () => {
  const { source, seen } = countingSource(3);
  const oops = new Error("then broke");
  const broken = {
    then: () => {
      throw oops;
    },
  };
  const got = await collect(
    fanOutStream(source, (n) => n === 1 ? broken as unknown as Promise<number> : n, { limit: 2 }),
  );
  assertEquals(got.map((r) => r.ok), [true, false, true]);
  const failed = got[1];
  assert(!failed.ok && isBranchError(failed.error) && failed.error.cause === oops);
  assert(seen.closed);
});

Deno.test("fanOutStream() holds a huge window lazily", async () => {
  const got = await collect(
    fanOutStream([1, 2, 3], (n) => n, { limit: 2_000_000, window: 2 ** 32 }),
  );
  assertEquals(got.map((r) => r.ok && r.value), [1, 2, 3]);
});

Deno.test("fanOutStream() with an already aborted signal errors with its reason and reads nothing, like fanOut", async () => {
  const { source, seen } = countingSource();
  let started = 0;
  const stream = fanOutStream(source, () => started++, { signal: AbortSignal.abort("early") });
  assertEquals(await rejectionOf(collect(stream)), "early");
  assertEquals(seen.pulled, 0);
  assertEquals(started, 0);
});
