import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { BlockLeasingLimiter } from "../../src/limits/block_leasing_limiter.ts";
import { limiterFromEnv } from "../../src/limits/limiter_from_env.ts";
import { flush, rejectionOf } from "../_deferred.ts";
import { LedgerHost } from "../../src/limits/ledger_host.ts";
import {
  AdmissionRejectedError,
  isAdmissionRejectedError,
  isPermitDeadlineError,
} from "../../src/limits/limiter.ts";
import { LocalLimiter } from "../../src/limits/local_limiter.ts";
import { PermitLedger } from "../../src/limits/permit_ledger.ts";
import { ServiceLimiter } from "../../src/limits/service_limiter.ts";

Deno.test("LocalLimiter hands out permits up to its capacity and queues the rest in order", async () => {
  const limiter = new LocalLimiter({ capacity: 2 });
  const first = await limiter.acquire(1);
  const second = await limiter.acquire(1);
  const order: string[] = [];
  const third = limiter.acquire(1).then((permit) => (order.push("third"), permit));
  const fourth = limiter.acquire(1).then((permit) => (order.push("fourth"), permit));
  await flush();
  assertEquals(order, []);
  await first.release();
  await flush();
  assertEquals(order, ["third"]);
  await second.release();
  await (await third).release();
  await (await fourth).release();
  assertEquals(order, ["third", "fourth"]);
  assertEquals((await limiter.stats()).inUse, 0);
});

Deno.test("LocalLimiter rejects at once with AdmissionRejectedError when its queue is full", async () => {
  const limiter = new LocalLimiter({ capacity: 1, maxWaiters: 1, retryAfterMs: 250 });
  const held = await limiter.acquire(1);
  const queued = limiter.acquire(1);
  const error = await rejectionOf(limiter.acquire(1));
  assert(isAdmissionRejectedError(error), String(error));
  assert(error instanceof AdmissionRejectedError);
  assertEquals([error.waiting, error.retryAfterMs], [1, 250]);
  await held.release();
  await (await queued).release();
});

Deno.test("LocalLimiter rejects with PermitDeadlineError when no permit comes before the deadline", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const held = await limiter.acquire(1);
  // A deadline already reached: the wait would outlive it, so the answer is immediate.
  const error = await rejectionOf(limiter.acquire(1, { deadline: performance.now() }));
  assert(isPermitDeadlineError(error), String(error));
  assertEquals((await limiter.stats()).waiting, 0);
  await held.release();
});

Deno.test("LocalLimiter times out a queued waiter at its deadline and leaves no timer behind", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const held = await limiter.acquire(1);
  const error = await rejectionOf(limiter.acquire(1, { deadline: performance.now() + 5 }));
  assert(isPermitDeadlineError(error), String(error));
  await held.release();
  assertEquals((await limiter.stats()).counters.timedOut, 1);
});

Deno.test("LocalLimiter leaves the queue when the signal aborts, and lets the next waiter through", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const held = await limiter.acquire(1);
  const controller = new AbortController();
  const abandoned = limiter.acquire(1, { signal: controller.signal });
  const next = limiter.acquire(1);
  controller.abort(new Error("client left"));
  assertEquals(((await rejectionOf(abandoned)) as Error).message, "client left");
  await held.release();
  await (await next).release();
  assertEquals((await limiter.stats()).inUse, 0);
});

Deno.test("LocalLimiter lets no small waiter pass a big one at the head until the big one leaves", async () => {
  const limiter = new LocalLimiter({ capacity: 3 });
  const held = await limiter.acquire(2);
  const big = limiter.acquire(3, { deadline: performance.now() + 20 });
  const order: string[] = [];
  const small = limiter.acquire(1).then((permit) => (order.push("small"), permit));
  await flush();
  assertEquals(order, [], "one permit is free, but the big waiter is first in line");
  assert(isPermitDeadlineError(await rejectionOf(big)));
  // The big waiter timed out: the small one behind it fits and is granted with no release.
  await (await small).release();
  assertEquals(order, ["small"]);
  await held.release();
  const { inUse, waiting, leases, counters } = await limiter.stats();
  assertEquals([inUse, waiting, leases, counters.timedOut, counters.granted], [0, 0, 0, 1, 2]);
});

Deno.test("LocalLimiter disarms its deadline timer once no waiter is left (the sanitizer checks)", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const held = await limiter.acquire(1);
  // Far deadlines: their timer would outlive the test unless the last grant disarms it.
  const first = limiter.acquire(1, { deadline: performance.now() + 60_000 });
  const controller = new AbortController();
  const second = limiter.acquire(1, {
    signal: controller.signal,
    deadline: performance.now() + 60_000,
  });
  await held.release();
  controller.abort(new Error("gone"));
  assertEquals(((await rejectionOf(second)) as Error).message, "gone");
  await (await first).release();
  const { inUse, waiting, counters } = await limiter.stats();
  assertEquals([inUse, waiting, counters.cancelled, counters.timedOut], [0, 0, 1, 0]);
});

Deno.test("LocalLimiter refuses a bad weight and a bad setting, naming it", async () => {
  const limiter = new LocalLimiter({ capacity: 2 });
  for (const weight of [0, 3, 1.5, NaN]) {
    const error = await rejectionOf(limiter.acquire(weight));
    assert(
      error instanceof RangeError && /'weight'.*current value is/.test(error.message),
      String(error),
    );
  }
  const error = await rejectionOf(limiter.acquire(1, { deadline: NaN }));
  assert(error instanceof RangeError && /'deadline'.*NaN/.test(error.message), String(error));
  assertEquals((await limiter.stats()).counters.granted, 0);
  assertThrows(() => new LocalLimiter({ capacity: 0 }), /'capacity'.*current value is 0/);
  assertThrows(
    () => new LocalLimiter({ capacity: 1, maxWaiters: -1 }),
    /'maxWaiters'.*current value is -1/,
  );
});

Deno.test("LocalLimiter keeps its permits within capacity and settles every acquire once, whatever the order", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.array(
        fc.record({
          weight: fc.integer({ min: 1, max: 4 }),
          abort: fc.boolean(),
          holdTicks: fc.integer({ min: 0, max: 3 }),
        }),
        { maxLength: 30 },
      ),
      async (capacity, calls) => {
        const limiter = new LocalLimiter({ capacity, maxWaiters: 8 });
        let peak = 0;
        const settled = await Promise.all(calls.map(async ({ weight, abort, holdTicks }) => {
          const controller = new AbortController();
          const asked = limiter.acquire(Math.min(weight, capacity), { signal: controller.signal });
          if (abort) queueMicrotask(() => controller.abort(new Error("gone")));
          try {
            const permit = await asked;
            peak = Math.max(peak, (await limiter.stats()).inUse);
            await flush(holdTicks);
            await permit.release();
            return "granted";
          } catch (error) {
            return isAdmissionRejectedError(error) ? "rejected" : "aborted";
          }
        }));
        const { inUse, waiting, leases, counters } = await limiter.stats();
        assert(peak <= capacity, `peak ${peak} > ${capacity}`);
        assertEquals([inUse, waiting, leases], [0, 0, 0]);
        const granted = settled.filter((outcome) => outcome === "granted").length;
        assertEquals([counters.granted, counters.released], [granted, granted]);
        assertEquals(
          counters.rejected + counters.cancelled + granted,
          calls.length,
          "every acquire was granted, rejected or cancelled, once",
        );
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("A permit released twice, or by await using, gives its permits back exactly once", async () => {
  const limiter = new LocalLimiter({ capacity: 2 });
  const permit = await limiter.acquire(2);
  await permit.release();
  await permit.release();
  {
    await using _held = await limiter.acquire(1);
    assertEquals((await limiter.stats()).inUse, 1);
  }
  const { inUse, counters } = await limiter.stats();
  assertEquals([inUse, counters.released, counters.unknownReleases], [0, 2, 0]);
});

Deno.test("ServiceLimiter releases a grant that arrives after its caller gave up", async () => {
  const host = new LedgerHost(new PermitLedger({ capacity: 1 }));
  // A service that cannot carry the signal, like an RPC stub.
  const deaf = {
    acquire: (request: Parameters<LedgerHost["acquire"]>[0]) => host.acquire(request),
    release: (id: string) => host.release(id),
    renew: (id: string, ttlMs: number) => host.renew(id, ttlMs),
    stats: () => host.stats(),
  };
  const limiter = new ServiceLimiter(deaf, { holder: "test", ttlMs: 60_000 });
  const held = await limiter.acquire(1);
  const controller = new AbortController();
  const abandoned = limiter.acquire(1, { signal: controller.signal });
  await flush();
  controller.abort(new Error("gave up"));
  await rejectionOf(abandoned);
  await held.release();
  await flush();
  const { inUse, counters } = await host.stats();
  assertEquals([inUse, counters.granted, counters.released], [0, 2, 2]);
});

Deno.test("limiterFromEnv() picks a local ceiling, a fleet's, or none, and names a bad variable", async () => {
  assertEquals(limiterFromEnv({}), undefined);
  const local = limiterFromEnv({ LIMITER_CAPACITY: "3" });
  assert(local instanceof LocalLimiter);
  assertEquals((await local.stats()).capacity, 3);
  const fleet = limiterFromEnv({ LIMITER_URL: "http://127.0.0.1:1/limiter/", LIMITER_SECRET: "s" });
  assert(fleet instanceof BlockLeasingLimiter);
  assertThrows(() => limiterFromEnv({ LIMITER_CAPACITY: "many" }), /'LIMITER_CAPACITY'.*"many"/);
  assertThrows(() => limiterFromEnv({ LIMITER_URL: "http://x/" }), /'LIMITER_SECRET'/);
});

Deno.test("LocalLimiter.tryAcquire() grants a spare permit at once and never queues", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const spare = limiter.tryAcquire();
  assert(spare !== undefined, "the only permit is free at first");
  assertEquals(limiter.tryAcquire(), undefined);
  assertEquals((await limiter.stats()).waiting, 0);
  spare.release();
  // Released at once, with no await: the permit is free again for the next caller.
  const next = limiter.tryAcquire();
  assert(next !== undefined, "a released permit is free at once");
  // A second release of the first permit does not free the second's.
  spare.release();
  assertEquals(limiter.tryAcquire(), undefined);
  next.release();
  const stats = await limiter.stats();
  assertEquals([stats.inUse, stats.counters.timedOut, stats.counters.released], [0, 0, 2]);
});
