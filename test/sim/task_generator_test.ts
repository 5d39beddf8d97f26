import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { generateTasks, type TaskGeneratorOptions } from "../../sim/task_generator.ts";

function pattern(options: TaskGeneratorOptions): string[] {
  return [...generateTasks(options)].map((t) => `${t.index}:${t.latencyMs}:${t.tail}:${t.fails}`);
}

Deno.test("generateTasks() gives the same pattern for the same seed", () => {
  const options = { seed: 7, count: 500, errorRate: 0.1 };
  assertEquals(pattern(options), pattern(options));
});

Deno.test("generateTasks() gives a different pattern for a different seed", () => {
  assert(pattern({ seed: 1, count: 50 }).join() !== pattern({ seed: 2, count: 50 }).join());
});

Deno.test("generateTasks() from an offset yields the same tasks as the tail of a full run", () => {
  const full = pattern({ seed: 3, count: 300, errorRate: 0.01, failEvery: 7 });
  assertEquals(
    pattern({ seed: 3, count: 300, offset: 120, errorRate: 0.01, failEvery: 7 }),
    full.slice(120),
  );
});

Deno.test("generateTasks() fails exactly every Nth task when failEvery is set and errorRate is 0", () => {
  const failing = [...generateTasks({ count: 30, failEvery: 10 })].filter((t) => t.fails);
  assertEquals(failing.map((t) => t.index), [9, 19, 29]);
});

Deno.test("generateTasks() fails about errorRate of the tasks and injects about one straggler in tailEvery", () => {
  const tasks = [...generateTasks({ seed: 11, count: 20_000, errorRate: 0.1 })];
  const failed = tasks.filter((t) => t.fails).length / tasks.length;
  const tails = tasks.filter((t) => t.tail);
  assert(failed > 0.09 && failed < 0.11, `failed ${failed}`);
  assert(tails.length > 5 && tails.length < 40, `tails ${tails.length}`);
  assert(tails.every((t) => t.latencyMs === 2000));
});

Deno.test("generateTasks() rejects a bad count or offset at the call, naming it", () => {
  assertThrows(() => generateTasks({ count: -1 }), /'count'.*-1/);
  assertThrows(() => generateTasks({ count: 5, offset: 0.5 }), /'offset'.*0\.5/);
});
