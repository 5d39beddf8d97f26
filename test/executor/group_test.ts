import { assert, assertEquals } from "../_assert.ts";
import { Group } from "../../src/mod.ts";
import { type Deferred, deferred, flush, InFlight, rejectionOf } from "../_deferred.ts";

Deno.test("Group.wait() resolves once every started task has settled", async () => {
  const group = new Group();
  const gates = [deferred(), deferred()];
  const done: number[] = [];
  for (const [i, gate] of gates.entries()) {
    await group.go(async () => {
      await gate.promise;
      done.push(i);
    });
  }
  const waiting = group.wait();
  gates[1].resolve();
  gates[0].resolve();
  await waiting;
  assertEquals(done.toSorted(), [0, 1]);
  assertEquals(group.signal.aborted, false);
});

Deno.test("Group's first error aborts the shared signal and wait() rejects with it", async () => {
  const group = new Group();
  const first = new Error("first");
  const sibling = deferred();
  let siblingSignal: AbortSignal | undefined;
  await group.go((signal) => {
    siblingSignal = signal;
    return sibling.promise;
  });
  await group.go(() => Promise.reject(first));
  await group.go(() => Promise.reject(new Error("second")));
  const waiting = rejectionOf(group.wait());
  await flush();
  assertEquals(group.signal.aborted, true);
  assertEquals(group.signal.reason, first);
  assertEquals(siblingSignal?.aborted, true);
  sibling.resolve();
  assertEquals(await waiting, first);
});

Deno.test("Group.wait() waits for the running siblings before rejecting", async () => {
  const group = new Group();
  const sibling = deferred();
  let siblingDone = false;
  await group.go(async () => {
    await sibling.promise;
    siblingDone = true;
  });
  await group.go(() => Promise.reject(new Error("x")));
  let waited = false;
  const waiting = group.wait().catch(() => waited = true);
  await flush();
  assertEquals(waited, false);
  sibling.resolve();
  await waiting;
  assertEquals(siblingDone, true);
});

Deno.test("Group.go() rejects without starting the task once the group has failed", async () => {
  const group = new Group();
  const boom = new Error("boom");
  await group.go(() => Promise.reject(boom));
  await flush();
  let started = false;
  const error = await rejectionOf(group.go(() => {
    started = true;
    return Promise.resolve();
  }));
  assertEquals(error, boom);
  assertEquals(started, false);
  assertEquals(await rejectionOf(group.wait()), boom);
});

Deno.test("Group with a limit never runs more than limit tasks at once", async () => {
  const group = new Group({ limit: 2 });
  const inFlight = new InFlight();
  const gates: Deferred<void>[] = Array.from({ length: 6 }, () => deferred());
  const producer = (async () => {
    for (const gate of gates) {
      await group.go(async () => {
        inFlight.enter();
        await gate.promise;
        inFlight.leave();
      });
    }
  })();
  await flush();
  assertEquals(inFlight.started, 2);
  for (const gate of gates) {
    gate.resolve();
    await flush();
    assert(inFlight.now <= 2, `in flight ${inFlight.now} > 2`);
  }
  await producer;
  await group.wait();
  assertEquals(inFlight.max, 2);
  assertEquals(inFlight.started, 6);
});

Deno.test("Group rejects a limit that is not a positive integer", () => {
  for (const limit of [0, -1, 1.5]) {
    let error: unknown;
    try {
      new Group({ limit });
    } catch (e) {
      error = e;
    }
    assert(error instanceof RangeError, `limit ${limit} gave ${Deno.inspect(error)}`);
    assert(
      error.message.includes(`'limit' must be a positive integer: current value is ${limit}`),
      error.message,
    );
  }
});

Deno.test("Group's signal aborts when the parent signal aborts", async () => {
  const parent = new AbortController();
  const group = new Group({ signal: parent.signal });
  const gate = deferred();
  let taskSignal: AbortSignal | undefined;
  await group.go((signal) => {
    taskSignal = signal;
    return gate.promise;
  });
  parent.abort("shutdown");
  assertEquals(group.signal.reason, "shutdown");
  assertEquals(taskSignal?.aborted, true);
  assertEquals(await rejectionOf(group.go(() => Promise.resolve())), "shutdown");
  gate.resolve();
  await group.wait();
});

Deno.test("a Group made with an already aborted parent starts aborted", async () => {
  const group = new Group({ signal: AbortSignal.abort("gone") });
  assertEquals(group.signal.aborted, true);
  assertEquals(await rejectionOf(group.go(() => Promise.resolve())), "gone");
  await group.wait();
});

Deno.test("Group handles a task that throws synchronously like a rejection", async () => {
  const group = new Group();
  const oops = new Error("sync");
  await group.go(() => {
    throw oops;
  });
  assertEquals(await rejectionOf(group.wait()), oops);
  assertEquals(group.signal.reason, oops);
});

Deno.test("Group.wait() also waits for tasks started while it waits", async () => {
  const group = new Group();
  const first = deferred();
  const second = deferred();
  let secondDone = false;
  await group.go(() => first.promise);
  const waiting = group.wait();
  await group.go(async () => {
    await second.promise;
    secondDone = true;
  });
  first.resolve();
  await flush();
  second.resolve();
  await waiting;
  assertEquals(secondDone, true);
});

Deno.test("Group.wait() joins tasks whose go() was not awaited and rejects with their first error", async () => {
  const group = new Group();
  const slow = deferred();
  const failing = deferred();
  const boom = new Error("boom");
  let slowDone = false;
  group.go(async () => {
    await slow.promise;
    slowDone = true;
  });
  group.go(() => failing.promise);
  let settled = false;
  const waiting = rejectionOf(group.wait()).finally(() => settled = true);
  await flush();
  assertEquals(settled, false);
  failing.reject(boom);
  await flush();
  assertEquals(settled, false);
  slow.resolve();
  assertEquals(await waiting, boom);
  assertEquals(slowDone, true);
});

Deno.test("a parent abort during wait() still reaches tasks whose go() was not awaited", async () => {
  const parent = new AbortController();
  const group = new Group({ signal: parent.signal });
  let taskSignal: AbortSignal | undefined;
  group.go((signal) => {
    taskSignal = signal;
    return new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  });
  const waiting = group.wait();
  await flush();
  parent.abort("shutdown");
  await waiting;
  assertEquals(taskSignal?.reason, "shutdown");
});

Deno.test("Group.wait() joins a task still waiting for a seat when go() was not awaited", async () => {
  const group = new Group({ limit: 1 });
  const first = deferred();
  const ran: number[] = [];
  group.go(async () => {
    await first.promise;
    ran.push(0);
  });
  group.go(() => {
    ran.push(1);
    return Promise.resolve();
  });
  const waiting = group.wait();
  await flush();
  first.resolve();
  await waiting;
  assertEquals(ran, [0, 1]);
});

Deno.test("a go() refused because the group failed is no unhandled rejection when not awaited", async () => {
  const group = new Group({ limit: 1 });
  const boom = new Error("boom");
  group.go(() => Promise.reject(boom));
  let started = false;
  group.go(() => {
    started = true;
    return Promise.resolve();
  });
  assertEquals(await rejectionOf(group.wait()), boom);
  assertEquals(started, false);
});
