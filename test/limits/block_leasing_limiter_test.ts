import fc from "fast-check";
import { assert, assertEquals } from "../_assert.ts";
import { flush, InFlight, rejectionOf } from "../_deferred.ts";
import { BlockLeasingLimiter } from "../../src/limits/block_leasing_limiter.ts";
import { LedgerHost } from "../../src/limits/ledger_host.ts";
import { isPermitDeadlineError } from "../../src/limits/limiter.ts";
import { PermitLedger } from "../../src/limits/permit_ledger.ts";
import type { PermitService } from "../../src/limits/permit_service.ts";

/** A permit service whose every call fails, like an object that cannot be reached. */
const unreachable: PermitService = {
  acquire: () => Promise.reject(new Error("unreachable")),
  release: () => Promise.reject(new Error("unreachable")),
  renew: () => Promise.reject(new Error("unreachable")),
  stats: () => Promise.reject(new Error("unreachable")),
};

Deno.test("BlockLeasingLimiter isolates sharing one ledger never exceed its capacity together", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.record({ isolate: fc.nat(3), ticks: fc.integer({ min: 0, max: 5 }) }), {
        maxLength: 60,
      }),
      async (capacity, blockSize, jobs) => {
        const host = new LedgerHost(new PermitLedger({ capacity }), {
          clock: () => performance.now(),
        });
        const isolates = [0, 1, 2, 3].map((i) =>
          new BlockLeasingLimiter(host, {
            blockSize: Math.min(blockSize, capacity),
            ttlMs: 60_000,
            holder: `isolate-${i}`,
            // Give blocks back as soon as an isolate is idle, so no isolate starves for long.
            lingerMs: 0,
            maxBlockWaitMs: 20,
          })
        );
        const inFlight = new InFlight();
        await Promise.all(jobs.map(async ({ isolate, ticks }) => {
          await using _permit = await isolates[isolate].acquire(1);
          inFlight.enter();
          for (let i = 0; i < ticks; i++) await null;
          inFlight.leave();
        }));
        await Promise.all(isolates.map((isolate) => isolate.close()));
        assert(inFlight.max <= capacity, `${inFlight.max} in flight over capacity ${capacity}`);
        assertEquals(inFlight.started, jobs.length);
        assertEquals((await host.stats()).inUse, 0, "close() gives every block back");
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("BlockLeasingLimiter calls the ledger at least 20 times less often than plain leasing", async () => {
  const host = new LedgerHost(new PermitLedger({ capacity: 64 }));
  const limiter = new BlockLeasingLimiter(host, { blockSize: 8, ttlMs: 60_000 });
  const acquires = 1000;
  for (let round = 0; round < acquires / 5; round++) {
    const permits = await Promise.all([1, 2, 3, 4, 5].map(() => limiter.acquire(1)));
    await Promise.all(permits.map((permit) => permit.release()));
  }
  const { serviceCalls } = limiter.stats();
  // Plain leasing makes two calls per acquire: one to acquire, one to release.
  assert(serviceCalls * 20 <= 2 * acquires, `${serviceCalls} calls for ${acquires} acquires`);
  await limiter.close();
  assertEquals((await host.stats()).inUse, 0);
});

Deno.test("BlockLeasingLimiter runs on its safe share when the ledger cannot be reached", async () => {
  const limiter = new BlockLeasingLimiter(unreachable, {
    blockSize: 4,
    ttlMs: 60_000,
    safeShare: 2,
  });
  const waiting = limiter.acquire(1);
  await flush();
  const first = await waiting;
  const second = await limiter.acquire(1);
  const late = await rejectionOf(limiter.acquire(1, { deadline: performance.now() }));
  assert(isPermitDeadlineError(late), String(late));
  assertEquals(limiter.stats().unreachable, true);
  await first.release();
  await second.release();
  await limiter.close();
});

Deno.test("BlockLeasingLimiter fails closed with no safe share when the ledger cannot be reached", async () => {
  const limiter = new BlockLeasingLimiter(unreachable, { blockSize: 4, ttlMs: 60_000 });
  const error = await rejectionOf(limiter.acquire(1, { deadline: performance.now() + 5 }));
  assert(isPermitDeadlineError(error), String(error));
  await limiter.close();
});

Deno.test("BlockLeasingLimiter hands every call it makes to the service to keepAlive", async () => {
  const host = new LedgerHost(new PermitLedger({ capacity: 8 }));
  const kept: Promise<unknown>[] = [];
  const limiter = new BlockLeasingLimiter(host, {
    blockSize: 2,
    ttlMs: 60_000,
    lingerMs: 0,
    keepAlive: (work) => void kept.push(work),
  });
  const permits = await Promise.all([1, 2, 3].map(() => limiter.acquire(1)));
  await Promise.all(permits.map((permit) => permit.release()));
  await limiter.close();
  // Every block request and every give-back, whichever caller's turn started it.
  assertEquals(kept.length, limiter.stats().serviceCalls);
  await Promise.all(kept);
  assertEquals((await host.stats()).inUse, 0);
});

Deno.test("BlockLeasingLimiter with handOffMs settles a waiter in its own turn, not in the turn of the release that frees its permit", async () => {
  const host = new LedgerHost(new PermitLedger({ capacity: 1 }));
  const limiter = new BlockLeasingLimiter(host, { blockSize: 1, ttlMs: 60_000, handOffMs: 1 });
  const first = await limiter.acquire(1);
  let settled = false;
  const waiting = limiter.acquire(1).finally(() => settled = true);
  await first.release();
  await flush();
  assertEquals(settled, false, "settled from the releasing caller's turn");
  assertEquals(limiter.stats().inUse, 1, "the permit is the waiter's already");
  const second = await waiting;
  await second.release();
  await limiter.close();
  assertEquals((await host.stats()).inUse, 0);
});

Deno.test("BlockLeasingLimiter gives a grant back when its waiter has not taken it up within maxHandOffMs", async () => {
  const host = new LedgerHost(new PermitLedger({ capacity: 1 }));
  const limiter = new BlockLeasingLimiter(host, {
    blockSize: 1,
    ttlMs: 60_000,
    handOffMs: 1,
    // Any grant not taken up by the next pump counts as abandoned.
    maxHandOffMs: 0,
  });
  const first = await limiter.acquire(1);
  const abandoned = limiter.acquire(1);
  await first.release();
  // The next caller's turn finds the grant not taken up, takes it back and hands it on.
  const next = limiter.acquire(1);
  const error = await rejectionOf(abandoned);
  assert(isPermitDeadlineError(error), String(error));
  const permit = await next;
  assertEquals(limiter.stats().inUse, 1);
  await permit.release();
  await limiter.close();
  assertEquals((await host.stats()).inUse, 0);
});

Deno.test("BlockLeasingLimiter with handOffMs ends a waiter whose signal aborts after its grant, giving the permit back", async () => {
  const host = new LedgerHost(new PermitLedger({ capacity: 1 }));
  const limiter = new BlockLeasingLimiter(host, { blockSize: 1, ttlMs: 60_000, handOffMs: 1 });
  const first = await limiter.acquire(1);
  const controller = new AbortController();
  const waiting = limiter.acquire(1, { signal: controller.signal });
  await first.release();
  controller.abort(new Error("client gone"));
  assertEquals(String(await rejectionOf(waiting)), "Error: client gone");
  assertEquals(limiter.stats().inUse, 0);
  await limiter.close();
  assertEquals((await host.stats()).inUse, 0);
});
