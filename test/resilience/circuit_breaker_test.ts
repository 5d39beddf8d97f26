import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import {
  CircuitBreaker,
  type CircuitState,
  type CircuitTicket,
  type FailureMode,
} from "../../src/resilience/circuit_breaker.ts";

function fakeClock() {
  const clock = { now: 0, read: () => clock.now };
  return clock;
}

Deno.test("CircuitBreaker rejects bad options naming the field and its value", () => {
  assertThrows(() => new CircuitBreaker({ openMs: 0 }), /'openMs'.*current value is 0/);
  assertThrows(() => new CircuitBreaker({ probes: 0 }), /'probes'.*current value is 0/);
  assertThrows(
    () => new CircuitBreaker({ failures: { kind: "consecutive", threshold: 0 } }),
    /'failures.threshold'.*current value is 0/,
  );
  assertThrows(
    () =>
      new CircuitBreaker({
        failures: { kind: "proportional", threshold: 1.5, minimumCalls: 1, windowMs: 1 },
      }),
    /'failures.threshold' must be in \(0, 1\].*1.5/,
  );
  assertThrows(
    () => new CircuitBreaker({ failures: { kind: "sometimes" } as unknown as FailureMode }),
    /'failures.kind'.*"sometimes"/,
  );
});

Deno.test("a closed breaker lets every call through", () => {
  const breaker = new CircuitBreaker({ failures: { kind: "consecutive", threshold: 3 } });
  for (let i = 0; i < 100; i++) {
    const ticket = breaker.tryEnter();
    assert(ticket !== undefined);
    if (i % 2 === 0) ticket.failure();
    else ticket.success();
  }
  assertEquals(breaker.state, "closed", "alternating failures never make three in a row");
});

Deno.test("a consecutive breaker opens on the threshold-th failure in a row and refuses calls", () => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker({
    failures: { kind: "consecutive", threshold: 3 },
    openMs: 100,
    clock: clock.read,
  });
  breaker.tryEnter()!.failure();
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "closed");
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "open");
  clock.now = 99;
  assertEquals(breaker.tryEnter(), undefined);
  assertEquals(breaker.retryAfterMs(), 1);
});

Deno.test("an open breaker lets one probe through after openMs; its success closes it", () => {
  const clock = fakeClock();
  const changes: string[] = [];
  const breaker = new CircuitBreaker({
    failures: { kind: "consecutive", threshold: 1 },
    openMs: 100,
    clock: clock.read,
    onStateChange: (to, from) => changes.push(`${from}->${to}`),
  });
  breaker.tryEnter()!.failure();
  clock.now = 100;
  const probe = breaker.tryEnter();
  assert(probe !== undefined, "the probe goes through");
  assertEquals(breaker.state, "half-open");
  assertEquals(breaker.tryEnter(), undefined, "a second call waits for the probe");
  probe.success();
  assertEquals(breaker.state, "closed");
  assertEquals(changes, ["closed->open", "open->half-open", "half-open->closed"]);
  assertEquals(breaker.transitions, { closed: 1, open: 1, "half-open": 1 });
});

Deno.test("a failed probe opens the breaker for another openMs", () => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker({
    failures: { kind: "consecutive", threshold: 1 },
    openMs: 100,
    clock: clock.read,
  });
  breaker.tryEnter()!.failure();
  clock.now = 150;
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "open");
  clock.now = 249;
  assertEquals(breaker.tryEnter(), undefined);
  clock.now = 250;
  assert(breaker.tryEnter() !== undefined);
});

Deno.test("a released probe frees its slot without deciding, and a lost probe expires after openMs", () => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker({
    failures: { kind: "consecutive", threshold: 1 },
    openMs: 100,
    clock: clock.read,
  });
  breaker.tryEnter()!.failure();
  clock.now = 100;
  breaker.tryEnter()!.release();
  assertEquals(breaker.state, "half-open");
  const lost = breaker.tryEnter();
  assert(lost !== undefined, "the released slot is free again");
  clock.now = 199;
  assertEquals(breaker.tryEnter(), undefined);
  clock.now = 200;
  assert(breaker.tryEnter() !== undefined, "the lost probe no longer holds the slot");
});

Deno.test("an outcome reported after the breaker moved on counts for nothing", () => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker({
    failures: { kind: "consecutive", threshold: 2 },
    openMs: 100,
    clock: clock.read,
  });
  const slow = breaker.tryEnter()!;
  breaker.tryEnter()!.failure();
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "open");
  slow.success();
  assertEquals(breaker.state, "open", "a late success from the closed period does not close it");
  clock.now = 100;
  const probe = breaker.tryEnter()!;
  probe.success();
  probe.failure();
  assertEquals(breaker.state, "closed", "a ticket reports once");
});

Deno.test("a proportional breaker waits for minimumCalls, then opens at the failure ratio", () => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker({
    failures: { kind: "proportional", threshold: 0.5, minimumCalls: 10, windowMs: 1_000 },
    clock: clock.read,
  });
  for (let i = 0; i < 9; i++) breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "closed", "nine calls are below the minimum");
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "open");
});

Deno.test("a proportional breaker forgets outcomes older than its window", () => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker({
    failures: { kind: "proportional", threshold: 0.5, minimumCalls: 4, windowMs: 1_000 },
    clock: clock.read,
  });
  for (let i = 0; i < 3; i++) breaker.tryEnter()!.failure();
  clock.now = 5_000;
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "closed", "the three old failures fell out of the window");
  for (let i = 0; i < 3; i++) breaker.tryEnter()!.success();
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "closed", "2 failures of 5 is below half");
  breaker.tryEnter()!.failure();
  assertEquals(breaker.state, "open", "3 of 6");
});

// Model-based: random operations against a breaker; the invariants hold after each one.
type Op =
  | { op: "enter" }
  | { op: "settle"; which: number; outcome: "success" | "failure" | "release" }
  | { op: "advance"; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ op: "enter" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("settle" as const),
      which: fc.nat(),
      outcome: fc.constantFrom(
        "failure" as const,
        "failure" as const,
        "success" as const,
        "release" as const,
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.nat(150) }) },
);

const modeArb: fc.Arbitrary<FailureMode> = fc.oneof(
  fc.record({
    kind: fc.constant("consecutive" as const),
    threshold: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    kind: fc.constant("proportional" as const),
    threshold: fc.double({ min: 0.1, max: 1, noNaN: true }),
    minimumCalls: fc.integer({ min: 1, max: 6 }),
    windowMs: fc.integer({ min: 10, max: 500 }),
  }),
);

const LEGAL = new Set(["closed->open", "open->half-open", "half-open->closed", "half-open->open"]);

Deno.test("CircuitBreaker, under random calls, outcomes and time, keeps its state machine's invariants", () => {
  fc.assert(
    fc.property(
      modeArb,
      fc.integer({ min: 1, max: 3 }),
      fc.array(opArb, { minLength: 20, maxLength: 200 }),
      (mode, probes, ops) => {
        const openMs = 100;
        const clock = fakeClock();
        const transitions: [CircuitState, CircuitState, number][] = [];
        const breaker = new CircuitBreaker({
          failures: mode,
          openMs,
          probes,
          clock: clock.read,
          onStateChange: (to, from) => transitions.push([from, to, clock.now]),
        });
        const open: { ticket: CircuitTicket; probe: boolean; at: number; period: number }[] = [];
        let consecutive = 0;
        for (const step of ops) {
          const before = breaker.state;
          const seen = transitions.length;
          if (step.op === "advance") clock.now += step.ms;
          else if (step.op === "enter") {
            const ticket = breaker.tryEnter();
            if (before === "closed") assert(ticket !== undefined, "closed admits every call");
            if (before === "open") {
              const openedAt = transitions.findLast(([, to]) => to === "open")![2];
              if (clock.now < openedAt + openMs) assertEquals(ticket, undefined);
              else assert(ticket !== undefined, "the first call after openMs is a probe");
            }
            if (ticket !== undefined) {
              open.push({
                ticket,
                probe: breaker.state === "half-open",
                at: clock.now,
                period: transitions.length,
              });
            }
            if (breaker.state === "half-open") {
              const live = open.filter((t) =>
                t.probe && t.period === transitions.length && clock.now < t.at + openMs
              ).length;
              assert(live <= probes, `${live} probes in flight, at most ${probes}`);
            }
          } else if (open.length > 0) {
            const [entry] = open.splice(step.which % open.length, 1);
            entry.ticket[step.outcome]();
            if (mode.kind === "consecutive" && before === "closed" && !entry.probe) {
              // Only an outcome of a call entered in this closed period counts.
              const counts = entry.period === seen;
              if (counts && step.outcome === "failure") consecutive++;
              else if (counts && step.outcome === "success") consecutive = 0;
              if (counts) {
                assertEquals(
                  breaker.state === "open",
                  consecutive >= mode.threshold,
                  `opens exactly at ${mode.threshold} failures in a row (${consecutive} now)`,
                );
              }
            }
          }
          for (const [from, to] of transitions.slice(seen)) {
            assert(LEGAL.has(`${from}->${to}`), `illegal transition ${from}->${to}`);
          }
          if (transitions.length > seen) consecutive = 0;
        }
      },
    ),
    { numRuns: 300 },
  );
});
