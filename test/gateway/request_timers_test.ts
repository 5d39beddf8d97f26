import { assertEquals } from "../_assert.ts";
import { deferred } from "../_deferred.ts";
import { RequestTimers } from "../../src/gateway/_request_timers.ts";

let count = 0;
const countSoFar = () => count;

/** Runs `body` with the global `setTimeout` counted; restores it after. */
async function countingSetTimeout(body: () => Promise<void>): Promise<number> {
  const original = globalThis.setTimeout;
  count = 0;
  globalThis.setTimeout = ((run: () => void, delayMs?: number) => {
    count++;
    return original(run, delayMs);
  }) as typeof setTimeout;
  try {
    await body();
  } finally {
    globalThis.setTimeout = original;
  }
  return count;
}

Deno.test("RequestTimers runs timeouts set in one turn in order of due time, on one timer", async () => {
  const timers = new RequestTimers();
  const ran: string[] = [];
  const last = deferred<void>();
  let armedThisTurn = 0;
  await countingSetTimeout(async () => {
    timers.setTimeout(() => ran.push("deadline"), 6);
    timers.setTimeout(() => ran.push("hedge"), 1);
    timers.setTimeout(() => (ran.push("budget"), last.resolve()), 12);
    await Promise.resolve();
    armedThisTurn = countSoFar();
    await last.promise;
  });
  assertEquals(armedThisTurn, 1);
  assertEquals(ran, ["hedge", "deadline", "budget"]);
  timers.close();
});

Deno.test("RequestTimers never runs a cleared timeout, and holds no timer once all are cleared", async () => {
  const timers = new RequestTimers();
  const ran: string[] = [];
  const count = await countingSetTimeout(async () => {
    const hedge = timers.setTimeout(() => ran.push("hedge"), 1);
    const deadline = timers.setTimeout(() => ran.push("deadline"), 5);
    timers.clearTimeout(hedge);
    timers.clearTimeout(deadline);
    timers.clearTimeout(deadline);
    timers.clearTimeout(undefined);
    // Past when both were due: the sanitizers fail the test if a timer is still armed.
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
  assertEquals(ran, []);
  assertEquals(count, 1, "only the test's own wait");
  timers.close();
});

Deno.test("RequestTimers.close drops what is left and runs nothing set after it", async () => {
  const timers = new RequestTimers();
  const ran: string[] = [];
  timers.setTimeout(() => ran.push("before"), 1);
  timers.close();
  timers.setTimeout(() => ran.push("after"), 1);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assertEquals(ran, []);
});

Deno.test("RequestTimers runs a timeout that a running one sets", async () => {
  const timers = new RequestTimers();
  const done = deferred<void>();
  const ran: string[] = [];
  timers.setTimeout(() => {
    ran.push("hedge");
    timers.setTimeout(() => (ran.push("next hedge"), done.resolve()), 1);
  }, 1);
  await done.promise;
  assertEquals(ran, ["hedge", "next hedge"]);
  timers.close();
});
