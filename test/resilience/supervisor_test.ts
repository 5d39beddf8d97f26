import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { fanOutStream } from "../../src/executor/mod.ts";
import {
  isCrashLoopError,
  isTaskCrashedError,
  type TaskCrashedError,
} from "../../src/resilience/errors.ts";
import { runSupervised, Supervisor } from "../../src/resilience/supervisor.ts";

const instant = () => Promise.resolve();

/** Task `i` crashes its first `crashes[i]` attempts, then answers `i`. */
function crashing(crashes: readonly number[]) {
  const calls = crashes.map(() => 0);
  const done = crashes.map(() => 0);
  const work = (i: number) => {
    calls[i]++;
    if (calls[i] <= crashes[i]) return Promise.reject(new Error(`worker died on task ${i}`));
    done[i]++;
    return Promise.resolve(i);
  };
  return { work, calls, done };
}

Deno.test("Supervisor rejects bad options naming the field and its value", () => {
  assertThrows(() => new Supervisor({ maxRetries: -1 }), /'maxRetries'.*-1/);
  assertThrows(() => new Supervisor({ restarts: 0 }), /'restarts'.*0/);
  assertThrows(() => new Supervisor({ periodMs: 0 }), /'periodMs'.*0/);
  assertThrows(() => new Supervisor({ hardLimitMs: Infinity }), /'hardLimitMs'.*Infinity/);
});

Deno.test("a task that crashed its worker is retried after a backoff and then succeeds", async () => {
  const waits: number[] = [];
  const supervisor = new Supervisor({
    backoff: (n) => 10 * n,
    sleep: (ms) => (waits.push(ms), Promise.resolve()),
  });
  const { work, calls } = crashing([2]);
  const value = await supervisor.supervise(work)(0, { index: 0 });
  assertEquals([value, calls[0], waits, supervisor.restarts], [0, 3, [10, 20], 2]);
});

Deno.test("a task that keeps crashing is given up on with every crash, and the pool goes on", async () => {
  const { work, done } = crashing([0, 9, 0, 1]);
  const failed: [number, TaskCrashedError][] = [];
  await runSupervised([0, 1, 2, 3], {
    workers: 2,
    maxRetries: 2,
    sleep: instant,
    onFailed: (index, error) => failed.push([index, error]),
  }, (task) => work(task));
  assertEquals(done, [1, 0, 1, 1], "every other task completed once");
  assertEquals(failed.map(([index]) => index), [1]);
  const [, error] = failed[0];
  assert(isTaskCrashedError(error));
  assertEquals(error.errors.length, 3, "the first attempt and two retries");
  assert(
    /task 1 as it crashed its worker 3 times: last crash: worker died on task 1/.test(
      error.message,
    ),
  );
});

Deno.test("an error that is not a crash passes through untouched, with no retry", async () => {
  const supervisor = new Supervisor({ isCrash: (e) => !(e instanceof RangeError), sleep: instant });
  let calls = 0;
  const outcome = new RangeError("price must be positive");
  const error = await supervisor.supervise(() => {
    calls++;
    throw outcome;
  })(null, { index: 0 }).catch((e) => e);
  assertEquals([error, calls, supervisor.restarts], [outcome, 1, 0]);
});

Deno.test("a crash loop stops the job with an error naming the task, and no task is pulled after it", async () => {
  let now = 0;
  let pulled = 0;
  function* tasks() {
    for (let i = 0; i < 100; i++) {
      pulled++;
      yield i;
    }
  }
  const error = await runSupervised(tasks(), {
    workers: 1,
    maxRetries: 1,
    restarts: 3,
    periodMs: 1_000,
    clock: () => now,
    sleep: instant,
    onFailed: () => {},
  }, (task) => {
    now += 100;
    if (task >= 5) throw new Error("out of memory");
  }).catch((e) => e);
  assert(isCrashLoopError(error), String(error));
  assertEquals(error.task, "task 6", "task 5 crashed twice, task 6 is the third crash in 1 s");
  assert(
    /crashed 3 times within 1000 ms \(a crash loop\): last crash in task 6: out of memory/.test(
      error.message,
    ),
  );
  assertEquals(pulled, 7);
});

Deno.test("crashes spread wider than the period never make a crash loop", async () => {
  let now = 0;
  const failed: number[] = [];
  await runSupervised(Array.from({ length: 50 }, (_, i) => i), {
    workers: 1,
    maxRetries: 0,
    restarts: 3,
    periodMs: 1_000,
    clock: () => now,
    sleep: instant,
    onFailed: (index) => failed.push(index),
  }, () => {
    now += 500;
    throw new Error("boom");
  });
  assertEquals(failed.length, 50, "two crashes per second at most: every task recorded failed");
});

Deno.test("a task past the hard limit is aborted, counted as a crash and retried", async () => {
  const supervisor = new Supervisor({ hardLimitMs: 1, maxRetries: 1, sleep: instant });
  let attempts = 0;
  const value = await supervisor.supervise((_: null, { signal }) => {
    attempts++;
    if (attempts === 2) return "second try";
    // Hangs until the hard limit aborts it.
    return new Promise<string>((_, reject) =>
      signal!.addEventListener("abort", () => reject(signal!.reason))
    );
  })(null, { index: 4 });
  assertEquals([value, attempts, supervisor.restarts], ["second try", 2, 1]);
});

Deno.test("under random crashes each task settles exactly once: done, or failed iff it crashed more than maxRetries times", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.nat(4), { maxLength: 60 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 3 }),
      async (crashes, workers, maxRetries) => {
        const { work, done } = crashing(crashes);
        const failed = crashes.map(() => 0);
        await runSupervised(crashes.keys(), {
          workers,
          maxRetries,
          restarts: 1_000,
          sleep: instant,
          onFailed: (index) => failed[index]++,
        }, (task) => work(task));
        crashes.forEach((c, i) => {
          assertEquals(done[i] + failed[i], 1, `task ${i} settled once`);
          assertEquals(failed[i] === 1, c > maxRetries, `task ${i} crashed ${c} times`);
        });
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("supervised fanOutStream emits each index once; a crashed-out task is a failed result", async () => {
  const supervisor = new Supervisor({ maxRetries: 1, restarts: 1_000, sleep: instant });
  const crashes = Array.from({ length: 200 }, (_, i) => (i % 7 === 0 ? 1 : i % 50 === 0 ? 5 : 0));
  const { work } = crashing(crashes);
  const seen = new Map<number, boolean>();
  const stream = fanOutStream(crashes.keys(), supervisor.supervise(work), {
    limit: 8,
    signal: supervisor.signal,
  });
  for await (const r of stream) {
    assert(!seen.has(r.index), `index ${r.index} emitted once`);
    seen.set(r.index, r.ok);
    if (!r.ok) assert(isTaskCrashedError(r.error.cause));
  }
  assertEquals(seen.size, 200);
  const failedIndexes = [...seen].filter(([, ok]) => !ok).map(([i]) => i);
  assertEquals(failedIndexes, [50, 100, 150]);
});
