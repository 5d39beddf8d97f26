import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { type Lease, PermitLedger } from "../../src/limits/permit_ledger.ts";

function granted(outcome: ReturnType<PermitLedger["acquire"]>): Lease {
  assert(outcome.kind === "granted", `expected a grant, got ${JSON.stringify(outcome)}`);
  return outcome.lease;
}

function queued(outcome: ReturnType<PermitLedger["acquire"]>): number {
  assert(outcome.kind === "queued", `expected a queued waiter, got ${JSON.stringify(outcome)}`);
  return outcome.waiterId;
}

Deno.test("PermitLedger rejects a capacity or queue bound that is not a whole number", () => {
  assertThrows(() => new PermitLedger({ capacity: 0 }), /'capacity'.*current value is 0/);
  assertThrows(() => new PermitLedger({ capacity: 1.5 }), /'capacity'.*current value is 1.5/);
  assertThrows(
    () => new PermitLedger({ capacity: 1, maxWaiters: -1 }),
    /'maxWaiters'.*current value is -1/,
  );
});

Deno.test("PermitLedger.acquire() rejects a bad weight, TTL or holder naming the field", () => {
  const ledger = new PermitLedger({ capacity: 2 });
  assertThrows(() => ledger.acquire({ holder: "a", weight: 3, ttlMs: 1 }, 0), /'weight'.*3/);
  assertThrows(() => ledger.acquire({ holder: "a", weight: 0, ttlMs: 1 }, 0), /'weight'.*0/);
  assertThrows(() => ledger.acquire({ holder: "a", weight: 1, ttlMs: 0 }, 0), /'ttlMs'.*0/);
  assertThrows(() => ledger.acquire({ holder: "", weight: 1, ttlMs: 1 }, 0), /'holder'/);
});

Deno.test("PermitLedger grants at once while permits are free and queues beyond", () => {
  const ledger = new PermitLedger({ capacity: 3 });
  granted(ledger.acquire({ holder: "a", weight: 2, ttlMs: 100 }, 0));
  granted(ledger.acquire({ holder: "b", weight: 1, ttlMs: 100 }, 0));
  queued(ledger.acquire({ holder: "c", weight: 1, ttlMs: 100 }, 0));
  assertEquals([ledger.inUse, ledger.waiting], [3, 1]);
});

Deno.test("PermitLedger lets no small waiter overtake a large one at the head", () => {
  const ledger = new PermitLedger({ capacity: 3 });
  const first = granted(ledger.acquire({ holder: "a", weight: 2, ttlMs: 100 }, 0));
  const big = queued(ledger.acquire({ holder: "big", weight: 3, ttlMs: 100 }, 0));
  const small = queued(ledger.acquire({ holder: "small", weight: 1, ttlMs: 100 }, 0));
  assertEquals(ledger.inUse, 2, "one permit is free, yet the small waiter must not take it");
  ledger.release(first.id, 1);
  const events = ledger.takeEvents();
  assertEquals(events.map((e) => e.type === "granted" && e.waiterId), [big]);
  assertEquals(ledger.waiting, 1);
  const bigLease = (events[0] as { lease: Lease }).lease;
  ledger.release(bigLease.id, 2);
  assertEquals(ledger.takeEvents().map((e) => e.type === "granted" && e.waiterId), [small]);
});

Deno.test("PermitLedger rejects at once beyond its bound on waiters", () => {
  const ledger = new PermitLedger({ capacity: 1, maxWaiters: 1 });
  granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 100 }, 0));
  queued(ledger.acquire({ holder: "b", weight: 1, ttlMs: 100 }, 0));
  assertEquals(ledger.acquire({ holder: "c", weight: 1, ttlMs: 100 }, 0), {
    kind: "rejected",
    reason: "queue full",
    waiting: 1,
  });
  assertEquals(ledger.counters.rejected, 1);
});

Deno.test("PermitLedger times out a waiter whose deadline passes before a grant", () => {
  const ledger = new PermitLedger({ capacity: 1 });
  const held = granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 1000 }, 0));
  const late = queued(ledger.acquire({ holder: "b", weight: 1, ttlMs: 100, deadline: 50 }, 0));
  assertEquals(ledger.nextWakeAt(), 50);
  ledger.advance(50);
  assertEquals(ledger.takeEvents(), [{ type: "timedOut", waiterId: late }]);
  ledger.release(held.id, 60);
  assertEquals(ledger.takeEvents(), [], "the timed-out waiter is not granted afterwards");
  assertEquals(ledger.inUse, 0);
});

Deno.test("PermitLedger answers timedOut at once when the deadline has already passed", () => {
  const ledger = new PermitLedger({ capacity: 1 });
  granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 1000 }, 10));
  assertEquals(ledger.acquire({ holder: "b", weight: 1, ttlMs: 1, deadline: 10 }, 10), {
    kind: "timedOut",
  });
  assertEquals(ledger.waiting, 0);
});

Deno.test("PermitLedger.release() twice or of an unknown lease changes nothing and is counted", () => {
  const ledger = new PermitLedger({ capacity: 2 });
  const lease = granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 100 }, 0));
  granted(ledger.acquire({ holder: "b", weight: 1, ttlMs: 100 }, 0));
  assertEquals(ledger.release(lease.id, 1), true);
  assertEquals(ledger.release(lease.id, 2), false);
  assertEquals(ledger.release("l-999", 3), false);
  assertEquals(ledger.inUse, 1);
  assertEquals(ledger.counters.unknownReleases, 2);
});

Deno.test("PermitLedger names a lease only by its whole id, its suffix included", () => {
  const ledger = new PermitLedger({ capacity: 2, leaseIdSuffix: () => "abc" });
  const lease = granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 100 }, 0));
  const number = lease.id.split("-")[1];
  for (
    const wrong of [
      `l-${number}`,
      `l-${number}-abd`,
      `l-0${number}-abc`,
      `x-${number}-abc`,
      "l--abc",
      "",
      "l-",
    ]
  ) {
    assertEquals(ledger.release(wrong, 1), false, wrong);
    assertEquals(ledger.holderOf(wrong), undefined);
    assertEquals(ledger.renew(wrong, 100, 1), undefined, wrong);
  }
  assertEquals(ledger.holderOf(lease.id), "a");
  assertEquals(ledger.release(lease.id, 1), true);
  assertEquals(ledger.counters.unknownReleases, 7);
});

Deno.test("PermitLedger.fromState() refuses a lease id it could not have handed out", () => {
  const state = new PermitLedger({ capacity: 2 }).toState();
  state.leases.push({ id: "lease-7", holder: "a", weight: 1, expiresAt: 100 });
  assertThrows(() => PermitLedger.fromState(state), /each lease id.*"lease-7"/);
});

Deno.test("PermitLedger reclaims the permits of a holder that never renews once its TTL ends", () => {
  const ledger = new PermitLedger({ capacity: 2 });
  const vanished = granted(ledger.acquire({ holder: "gone", weight: 2, ttlMs: 100 }, 0));
  const waiter = queued(ledger.acquire({ holder: "b", weight: 1, ttlMs: 100 }, 10));
  ledger.advance(99);
  assertEquals(ledger.inUse, 2);
  ledger.advance(100);
  const events = ledger.takeEvents();
  assertEquals(events.map((e) => e.type), ["expired", "granted"]);
  assertEquals(events[0], { type: "expired", lease: vanished });
  assert(events[1].type === "granted" && events[1].waiterId === waiter);
  assertEquals(ledger.counters.reclaimedWeight, 2);
});

Deno.test("PermitLedger.renew() keeps a lease past its first TTL, and an expired one stays gone", () => {
  const ledger = new PermitLedger({ capacity: 1 });
  const lease = granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 100 }, 0));
  assertEquals(ledger.renew(lease.id, 100, 90)?.expiresAt, 190);
  ledger.advance(150);
  assertEquals(ledger.inUse, 1);
  assertEquals(ledger.renew(lease.id, 100, 200), undefined);
  assertEquals(ledger.counters.unknownRenewals, 1);
  assertEquals(ledger.inUse, 0);
});

Deno.test("PermitLedger.cancel() removes a waiter and grants those behind it that now fit", () => {
  const ledger = new PermitLedger({ capacity: 2 });
  granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 100 }, 0));
  const big = queued(ledger.acquire({ holder: "big", weight: 2, ttlMs: 100 }, 0));
  const small = queued(ledger.acquire({ holder: "small", weight: 1, ttlMs: 100 }, 0));
  assertEquals(ledger.cancel(big, 1), true);
  assertEquals(ledger.cancel(big, 1), false);
  assertEquals(ledger.takeEvents().map((e) => e.type === "granted" && e.waiterId), [small]);
});

Deno.test("PermitLedger restored from its JSON state holds the same leases and never reuses an id", () => {
  const ledger = new PermitLedger({ capacity: 4 });
  const forever = granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: Infinity }, 0));
  const timed = granted(ledger.acquire({ holder: "b", weight: 2, ttlMs: 100 }, 0));
  const restored = PermitLedger.fromState(JSON.parse(JSON.stringify(ledger.toState())));
  assertEquals(restored.leases(), [forever, timed]);
  assertEquals(restored.inUse, 3);
  const next = granted(restored.acquire({ holder: "c", weight: 1, ttlMs: 100 }, 1));
  assert(next.id !== forever.id && next.id !== timed.id, next.id);
  restored.advance(1e15);
  assertEquals(restored.inUse, 1, "the lease without a TTL survives any time");
});

Deno.test("PermitLedger ignores a clock that steps back instead of reviving expired leases", () => {
  const ledger = new PermitLedger({ capacity: 1 });
  const lease = granted(ledger.acquire({ holder: "a", weight: 1, ttlMs: 10 }, 100));
  ledger.advance(200);
  assertEquals(ledger.renew(lease.id, 10, 50), undefined);
  assertEquals(granted(ledger.acquire({ holder: "b", weight: 1, ttlMs: 10 }, 50)).expiresAt, 210);
});

/** One step of a random run against the ledger. */
type Op =
  | { op: "acquire"; weight: number; ttlMs: number; waitMs: number | undefined }
  | { op: "release"; pick: number }
  | { op: "releaseUnknown" }
  | { op: "renew"; pick: number; ttlMs: number }
  | { op: "cancel"; pick: number }
  | { op: "tick"; ms: number }
  | { op: "restart" };

const CAPACITY = 6;
const ops: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("acquire" as const),
    weight: fc.integer({ min: 1, max: CAPACITY }),
    ttlMs: fc.integer({ min: 1, max: 50 }),
    waitMs: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  }),
  fc.record({ op: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("releaseUnknown" as const) }),
  fc.record({
    op: fc.constant("renew" as const),
    pick: fc.nat(),
    ttlMs: fc.integer({ min: 1, max: 50 }),
  }),
  fc.record({ op: fc.constant("cancel" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ op: fc.constant("restart" as const) }),
);

/** Plays `steps`, checking the invariants after each, and returns the ledger and its clock. */
function play(steps: Op[], maxWaiters: number) {
  let ledger = new PermitLedger({ capacity: CAPACITY, maxWaiters });
  let now = 0;
  const held: string[] = [];
  let waiters: number[] = [];
  const check = () => {
    for (const event of ledger.takeEvents()) {
      if (event.type === "granted") {
        held.push(event.lease.id);
        waiters = waiters.filter((id) => id !== event.waiterId);
      } else if (event.type === "timedOut") {
        waiters = waiters.filter((id) => id !== event.waiterId);
      }
    }
    const { inUse, counters } = ledger;
    assert(inUse <= CAPACITY, `in use ${inUse} exceeds the capacity ${CAPACITY}`);
    assert(inUse >= 0, `in use went negative: ${inUse}`);
    assertEquals(ledger.leases().reduce((sum, lease) => sum + lease.weight, 0), inUse);
    assertEquals(
      counters.grantedWeight,
      counters.releasedWeight + counters.reclaimedWeight + inUse,
    );
    assert(ledger.waiting <= maxWaiters);
  };
  for (const step of steps) {
    switch (step.op) {
      case "acquire": {
        const deadline = step.waitMs === undefined ? undefined : now + step.waitMs;
        const outcome = ledger.acquire(
          { holder: "h", weight: step.weight, ttlMs: step.ttlMs, deadline },
          now,
        );
        if (outcome.kind === "granted") held.push(outcome.lease.id);
        if (outcome.kind === "queued") waiters.push(outcome.waiterId);
        break;
      }
      case "release":
        if (held.length > 0) ledger.release(held.splice(step.pick % held.length, 1)[0], now);
        break;
      case "releaseUnknown":
        ledger.release("l-unknown", now);
        break;
      case "renew":
        if (held.length > 0) ledger.renew(held[step.pick % held.length], step.ttlMs, now);
        break;
      case "cancel":
        if (waiters.length > 0) ledger.cancel(waiters[step.pick % waiters.length], now);
        break;
      case "tick":
        now += step.ms;
        ledger.advance(now);
        break;
      case "restart":
        // Waiters die with the object; their callers' calls failed with it.
        ledger = PermitLedger.fromState(JSON.parse(JSON.stringify(ledger.toState())));
        waiters = [];
        break;
    }
    check();
  }
  return { ledger, now, check };
}

Deno.test("PermitLedger never has more permits in use than its capacity, nor fewer than none", () => {
  fc.assert(
    fc.property(
      fc.array(ops, { maxLength: 80 }),
      fc.integer({ min: 0, max: 4 }),
      (steps, bound) => {
        play(steps, bound);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("PermitLedger eventually has every permit returned or reclaimed", () => {
  fc.assert(
    fc.property(fc.array(ops, { maxLength: 80 }), (steps) => {
      const { ledger, now, check } = play(steps, 4);
      // Every lease has a TTL of at most 50 ms and every waiter with a deadline gives up within
      // 40 ms: let time run until the ledger has nothing left that can happen by itself.
      let clock = now;
      for (let round = 0; round < 100 && ledger.nextWakeAt() < Infinity; round++) {
        clock = Math.max(clock, ledger.nextWakeAt());
        ledger.advance(clock);
        check();
      }
      const { counters, inUse } = ledger;
      assertEquals(inUse, 0, "permits still out after every lease's TTL");
      assertEquals(counters.grantedWeight, counters.releasedWeight + counters.reclaimedWeight);
    }),
    { numRuns: 500 },
  );
});
