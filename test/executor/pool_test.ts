import { assert, assertEquals } from "../_assert.ts";
import { runWorkers } from "../../src/mod.ts";
import { type Deferred, deferred, flush, InFlight, rejectionOf } from "../_deferred.ts";

Deno.test("runWorkers() rejects a worker count that is not a positive integer", async () => {
  for (const workers of [0, -1, 1.5, NaN]) {
    const error = await rejectionOf(runWorkers([1], { workers }, () => {}));
    assert(error instanceof RangeError, `workers ${workers} gave ${Deno.inspect(error)}`);
    assert(/'workers'.*current value is/.test(error.message), error.message);
  }
});

Deno.test("runWorkers() runs every task with its index", async () => {
  const seen: [string, number][] = [];
  await runWorkers(["a", "b", "c"], { workers: 2 }, (task, index) => {
    seen.push([task, index]);
  });
  assertEquals(seen.toSorted(([, a], [, b]) => a - b), [["a", 0], ["b", 1], ["c", 2]]);
});

Deno.test("runWorkers() never has more than workers tasks in flight", async () => {
  const gates: Deferred<void>[] = Array.from({ length: 12 }, () => deferred());
  const inFlight = new InFlight();
  const done = runWorkers(gates.keys(), { workers: 3 }, async (i) => {
    inFlight.enter();
    await gates[i].promise;
    inFlight.leave();
  });
  for (const i of [1, 0, 2, 5, 3, 4, 11, 10, 9, 8, 7, 6]) {
    await flush();
    assert(inFlight.now <= 3, `in flight ${inFlight.now} > 3`);
    gates[i].resolve();
  }
  await done;
  assertEquals(inFlight.max, 3);
  assertEquals(inFlight.started, 12);
});

Deno.test("runWorkers() reads the iterator lazily, one task per free worker", async () => {
  let pulled = 0;
  function* tasks() {
    for (let i = 0; i < 100; i++) {
      pulled++;
      yield i;
    }
  }
  const gates: Deferred<void>[] = Array.from({ length: 100 }, () => deferred());
  const done = runWorkers(tasks(), { workers: 2 }, (i) => gates[i].promise);
  await flush();
  assertEquals(pulled, 2);
  gates[0].resolve();
  await flush();
  assertEquals(pulled, 3);
  gates.forEach((g) => g.resolve());
  await done;
  assertEquals(pulled, 100);
});

Deno.test("runWorkers() rejects with the first error after the in-flight tasks settle", async () => {
  const slow = deferred();
  let slowDone = false;
  let startedAfterError = 0;
  const first = new Error("first");
  let failed = false;
  const done = runWorkers([0, 1, 2, 3], { workers: 2 }, async (i) => {
    if (failed) startedAfterError++;
    if (i === 0) {
      await slow.promise;
      slowDone = true;
      throw new Error("later");
    }
    failed = true;
    throw first;
  });
  let settled = false;
  const outcome = rejectionOf(done).finally(() => settled = true);
  await flush();
  assertEquals(settled, false);
  slow.resolve();
  assertEquals(await outcome, first);
  assertEquals(slowDone, true);
  assertEquals(startedAfterError, 0);
});

Deno.test("runWorkers() rejects with what the iterator threw", async () => {
  const broken = new Error("source broke");
  function* tasks() {
    yield 1;
    throw broken;
  }
  const seen: number[] = [];
  const error = await rejectionOf(runWorkers(tasks(), { workers: 2 }, (n) => seen.push(n)));
  assertEquals(error, broken);
  assertEquals(seen, [1]);
});

Deno.test("runWorkers() handles work that throws synchronously", async () => {
  const oops = new Error("sync");
  const error = await rejectionOf(runWorkers([1, 2], { workers: 1 }, () => {
    throw oops;
  }));
  assertEquals(error, oops);
});

Deno.test("runWorkers() stops pulling when its signal aborts and rejects with the reason", async () => {
  const controller = new AbortController();
  const gates: Deferred<void>[] = Array.from({ length: 10 }, () => deferred());
  let started = 0;
  const done = runWorkers(gates.keys(), { workers: 2, signal: controller.signal }, (i) => {
    started++;
    return gates[i].promise;
  });
  await flush();
  controller.abort("stop");
  gates.forEach((g) => g.resolve());
  assertEquals(await rejectionOf(done), "stop");
  assertEquals(started, 2);
});

Deno.test("runWorkers() with an already aborted signal rejects without pulling", async () => {
  let pulled = 0;
  function* tasks() {
    pulled++;
    yield 1;
  }
  const error = await rejectionOf(
    runWorkers(tasks(), { workers: 1, signal: AbortSignal.abort("early") }, () => {}),
  );
  assertEquals(error, "early");
  assertEquals(pulled, 0);
});

Deno.test("runWorkers() closes a source it stopped reading early because of an abort", async () => {
  const controller = new AbortController();
  let closed = false;
  function* tasks() {
    try {
      for (let i = 0; i < 10; i++) yield i;
    } finally {
      closed = true;
    }
  }
  const gate = deferred();
  const done = runWorkers(tasks(), { workers: 1, signal: controller.signal }, () => gate.promise);
  await flush();
  controller.abort("stop");
  gate.resolve();
  assertEquals(await rejectionOf(done), "stop");
  assertEquals(closed, true);
});

Deno.test("runWorkers() starts no more workers than the source has tasks", async () => {
  let nexts = 0;
  const values = [1, 2, 3][Symbol.iterator]();
  const tasks = {
    [Symbol.iterator]: () => ({
      next: () => {
        nexts++;
        return values.next();
      },
    }),
  };
  const seen: number[] = [];
  await runWorkers(tasks, { workers: 1_000_000 }, (n) => {
    seen.push(n);
  });
  assertEquals(seen, [1, 2, 3]);
  assertEquals(nexts, 4);
});
