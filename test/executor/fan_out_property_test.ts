import fc from "fast-check";
import { assert, assertEquals } from "../_assert.ts";
import { type FailurePolicy, fanOut, type FanOutResult, isBranchError } from "../../src/mod.ts";
import { InFlight } from "../_deferred.ts";

/** A scripted branch: settles after `ticks` microtask turns, or throws before returning. */
interface Script {
  kind: "resolve" | "reject" | "throw";
  ticks: number;
}

const script = fc.record({
  kind: fc.constantFrom<Script["kind"]>("resolve", "reject", "throw"),
  ticks: fc.integer({ min: 0, max: 6 }),
});

/** A branch function that plays its script and counts itself in flight. */
function player(inFlight: InFlight) {
  return (task: Script & { index: number }): number | Promise<number> => {
    inFlight.enter();
    if (task.kind === "throw") {
      inFlight.leave();
      throw new Error(`sync ${task.index}`);
    }
    return (async () => {
      for (let i = 0; i < task.ticks; i++) await null;
      inFlight.leave();
      if (task.kind === "reject") throw new Error(`async ${task.index}`);
      return task.index;
    })();
  };
}

const numbered = (scripts: Script[]) => scripts.map((s, index) => ({ ...s, index }));

/** Every input index a result accounts for, one entry per appearance. */
function accountedFor(result: FanOutResult<number>): number[] {
  const succeeded = result.indexes ?? Object.keys(result.values).map(Number);
  return [
    ...succeeded,
    ...result.failed.map((e) => e.index),
    ...result.skipped.map((b) => b.index),
    ...result.abandoned.map((b) => b.index),
  ].sort((a, b) => a - b);
}

Deno.test("fanOut() never has more than limit branches in flight, whatever the branches do", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(script, { maxLength: 40 }),
      fc.integer({ min: 1, max: 8 }),
      fc.constantFrom<FailurePolicy>("collectAll", "bestEffort"),
      fc.boolean(),
      async (scripts, limit, policy, ordered) => {
        const inFlight = new InFlight();
        const result = await fanOut(numbered(scripts), player(inFlight), {
          limit,
          policy,
          ordered,
        });
        assert(inFlight.max <= limit, `max in flight ${inFlight.max} > limit ${limit}`);
        assertEquals(inFlight.started, scripts.length);
        assertEquals(result.pulled, scripts.length);
        assertEquals(result.drained, true);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("every pulled task is exactly one of: a value, a failure, skipped or abandoned", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(script, { maxLength: 40 }),
      fc.integer({ min: 1, max: 8 }),
      fc.constantFrom<FailurePolicy>("failFast", "collectAll", "bestEffort"),
      fc.boolean(),
      async (scripts, limit, policy, ordered) => {
        const inFlight = new InFlight();
        let result: FanOutResult<number>;
        try {
          result = await fanOut(numbered(scripts), player(inFlight), { limit, policy, ordered });
        } catch (error) {
          assertEquals(policy, "failFast");
          assert(isBranchError(error), `expected a BranchError, got ${Deno.inspect(error)}`);
          result = error.partial as FanOutResult<number>;
        }
        const everyPulled = Array.from({ length: result.pulled }, (_, i) => i);
        assertEquals(accountedFor(result), everyPulled);
        if (result.drained) assertEquals(result.pulled, scripts.length);
        if (policy !== "failFast") assertEquals(result.drained, true);
        assert(inFlight.max <= limit, `max in flight ${inFlight.max} > limit ${limit}`);
      },
    ),
    { numRuns: 200 },
  );
});
