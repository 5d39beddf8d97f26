import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { Semaphore } from "../../src/mod.ts";
import { deferred, flush, rejectionOf } from "../_deferred.ts";

/** Records the order in which acquires resolve. */
function track(order: string[], name: string, acquire: Promise<void>): Promise<void> {
  return acquire.then(() => void order.push(name));
}

Deno.test("Semaphore rejects a capacity that is not a positive integer", () => {
  for (const capacity of [0, -1, 1.5, NaN, Infinity]) {
    assertThrows(() => new Semaphore(capacity), /'capacity'.*current value is/);
  }
  assertEquals(new Semaphore(3).capacity, 3);
});

Deno.test("Semaphore rejects a weight below 1, fractional or above capacity", () => {
  const sem = new Semaphore(2);
  for (const weight of [0, -1, 1.5, NaN, 3]) {
    assertThrows(() => sem.tryAcquire(weight), /'weight'.*current value is/);
    assertThrows(() => sem.release(weight), /'weight'.*current value is/);
  }
});

Deno.test("Semaphore.acquire() rejects a bad weight with a RangeError", async () => {
  const error = await rejectionOf(new Semaphore(2).acquire(3));
  assert(error instanceof RangeError, Deno.inspect(error));
});

Deno.test("Semaphore.release() of more than is held throws a RangeError", () => {
  const sem = new Semaphore(3);
  sem.tryAcquire(1);
  const error = (() => {
    try {
      sem.release(2);
    } catch (error) {
      return error;
    }
  })();
  assert(error instanceof RangeError);
  assert(/release 2 permits as only 1 are held/.test(error.message), error.message);
  assertEquals(sem.used, 1);
});

Deno.test("Semaphore.tryAcquire() takes free permits and refuses when they run out", () => {
  const sem = new Semaphore(3);
  assertEquals(sem.tryAcquire(2), true);
  assertEquals(sem.tryAcquire(2), false);
  assertEquals(sem.tryAcquire(1), true);
  assertEquals(sem.used, 3);
});

Deno.test("Semaphore.tryAcquire() refuses while anyone is queued, even if it would fit", async () => {
  const sem = new Semaphore(3);
  sem.tryAcquire(2);
  const big = sem.acquire(3);
  assertEquals(sem.waiting, 1);
  assertEquals(sem.tryAcquire(1), false);
  sem.release(2);
  await big;
  sem.release(3);
});

Deno.test("Semaphore hands out permits in FIFO order", async () => {
  const sem = new Semaphore(1);
  sem.tryAcquire();
  const order: string[] = [];
  const all = ["a", "b", "c"].map((name) => track(order, name, sem.acquire()));
  for (let i = 0; i < 3; i++) {
    sem.release();
    await flush();
  }
  await Promise.all(all);
  assertEquals(order, ["a", "b", "c"]);
  sem.release();
});

Deno.test("Semaphore does not let small waiters barge past a large one at the head", async () => {
  const sem = new Semaphore(4);
  sem.tryAcquire(3);
  const order: string[] = [];
  const large = track(order, "large", sem.acquire(4));
  const small = track(order, "small", sem.acquire(1)); // one permit is free, yet it waits
  await flush();
  assertEquals(order, []);
  assertEquals(sem.waiting, 2);
  sem.release(3);
  await large;
  assertEquals(order, ["large"]);
  sem.release(4);
  await small;
  assertEquals(order, ["large", "small"]);
  sem.release(1);
});

Deno.test("Semaphore wakes every head waiter that fits in one release", async () => {
  const sem = new Semaphore(3);
  sem.tryAcquire(3);
  const order: string[] = [];
  const waits = ["a", "b", "c"].map((name) => track(order, name, sem.acquire(1)));
  sem.release(3);
  await Promise.all(waits);
  assertEquals(order, ["a", "b", "c"]);
  assertEquals(sem.used, 3);
  sem.release(3);
});

Deno.test("an aborted acquire leaves the queue and rejects with the signal's reason", async () => {
  const sem = new Semaphore(1);
  sem.tryAcquire();
  const controller = new AbortController();
  const waiting = sem.acquire(1, { signal: controller.signal });
  assertEquals(sem.waiting, 1);
  controller.abort("gave up");
  assertEquals(await rejectionOf(waiting), "gave up");
  assertEquals(sem.waiting, 0);
  sem.release();
  assertEquals(sem.used, 0);
});

Deno.test("aborting a large head waiter lets the smaller ones behind it proceed", async () => {
  const sem = new Semaphore(4);
  sem.tryAcquire(2);
  const controller = new AbortController();
  const large = sem.acquire(4, { signal: controller.signal });
  const order: string[] = [];
  const small = track(order, "small", sem.acquire(2));
  await flush();
  assertEquals(order, []);
  controller.abort(new Error("timeout"));
  await rejectionOf(large);
  await small;
  assertEquals(order, ["small"]);
  assertEquals(sem.used, 4);
  sem.release(4);
});

Deno.test("an acquire with an already aborted signal rejects when it would have to wait", async () => {
  const sem = new Semaphore(1);
  sem.tryAcquire();
  const error = await rejectionOf(sem.acquire(1, { signal: AbortSignal.abort("late") }));
  assertEquals(error, "late");
  assertEquals(sem.waiting, 0);
  sem.release();
});

Deno.test("an acquire with an already aborted signal rejects even when a permit is free", async () => {
  const sem = new Semaphore(1);
  const error = await rejectionOf(sem.acquire(1, { signal: AbortSignal.abort("late") }));
  assertEquals(error, "late");
  assertEquals(sem.used, 0);
});

Deno.test("a granted acquire stops listening to its signal", async () => {
  const sem = new Semaphore(1);
  sem.tryAcquire();
  const controller = new AbortController();
  const waiting = sem.acquire(1, { signal: controller.signal });
  sem.release();
  await waiting;
  controller.abort(); // must not unlink anything or reject the settled acquire
  assertEquals(sem.used, 1);
  assertEquals(sem.waiting, 0);
  sem.release();
});

// --- run() and rejectWaiters() ---------------------------------------------------------------

Deno.test("Semaphore.run() holds the permits while fn runs and releases them when it resolves", async () => {
  const sem = new Semaphore(3);
  const gate = deferred<string>();
  const running = sem.run(() => gate.promise, { weight: 2 });
  await flush();
  assertEquals(sem.used, 2);
  gate.resolve("done");
  assertEquals(await running, "done");
  assertEquals(sem.used, 0);
});

Deno.test("Semaphore.run() releases its permit when fn rejects or throws", async () => {
  const sem = new Semaphore(1);
  const boom = new Error("boom");
  assertEquals(await rejectionOf(sem.run(() => Promise.reject(boom))), boom);
  assertEquals(sem.used, 0);
  assertEquals(
    await rejectionOf(sem.run(() => {
      throw boom;
    })),
    boom,
  );
  assertEquals(sem.used, 0);
});

Deno.test("Semaphore.run() never calls fn when its signal aborts the wait", async () => {
  const sem = new Semaphore(1);
  sem.tryAcquire();
  const controller = new AbortController();
  let called = false;
  const running = sem.run(() => called = true, { signal: controller.signal });
  controller.abort("gave up");
  assertEquals(await rejectionOf(running), "gave up");
  assertEquals(called, false);
  sem.release();
  assertEquals(sem.used, 0);
  assertEquals(
    await rejectionOf(sem.run(() => called = true, { signal: AbortSignal.abort("late") })),
    "late",
  );
  assertEquals(called, false);
});

Deno.test("Semaphore.rejectWaiters() rejects every queued acquire and keeps the held permits", async () => {
  const sem = new Semaphore(2);
  sem.tryAcquire(2);
  const controller = new AbortController();
  const waits = [sem.acquire(1), sem.acquire(2, { signal: controller.signal }), sem.acquire(1)];
  const reason = new Error("shutting down");
  assertEquals(sem.rejectWaiters(reason), 3);
  for (const wait of waits) assertEquals(await rejectionOf(wait), reason);
  assertEquals(sem.waiting, 0);
  assertEquals(sem.used, 2);
  controller.abort(); // its listener is gone: nothing to unlink twice
  sem.release(2);
  await sem.acquire(2);
  assertEquals(sem.used, 2);
  sem.release(2);
});

Deno.test("Semaphore.rejectWaiters() rejects with an AbortError when given no reason", async () => {
  const sem = new Semaphore(1);
  sem.tryAcquire();
  const waiting = sem.acquire();
  assertEquals(sem.rejectWaiters(), 1);
  const error = await rejectionOf(waiting);
  assert(error instanceof DOMException && error.name === "AbortError");
  sem.release();
});
