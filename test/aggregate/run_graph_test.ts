import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { deferred, flush, InFlight } from "../_deferred.ts";
import {
  defineGraph,
  type GraphContext,
  type GraphNode,
  runGraph,
} from "../../src/aggregate/mod.ts";

/** A task whose every call waits for the test to answer it, by node name (and element). */
function manual() {
  const calls: {
    name: string;
    element: unknown;
    context: GraphContext;
    answer(v: unknown): void;
    fail(e: unknown): void;
  }[] = [];
  const task = (node: GraphNode, context: GraphContext) => {
    const d = deferred<unknown>();
    calls.push({
      name: node.name,
      element: context.element,
      context,
      answer: d.resolve,
      fail: d.reject,
    });
    // A call that heeds its signal, as a fetch does.
    context.signal.addEventListener("abort", () => d.reject(context.signal.reason), { once: true });
    return d.promise;
  };
  const find = (name: string, element?: unknown) =>
    calls.find((call) => call.name === name && call.element === element)!;
  return { calls, task, find };
}

Deno.test("defineGraph() names an unknown need, a duplicate name and a cycle node by node", () => {
  assertThrows(
    () => defineGraph([{ name: "a", needs: ["b"] }]),
    /unknown node: current value is "b"/,
  );
  assertThrows(
    () => defineGraph([{ name: "a" }, { name: "a" }]),
    /unique non-empty string: current value is "a"/,
  );
  assertThrows(
    () =>
      defineGraph([{ name: "a", needs: ["c"] }, { name: "b", needs: ["a"] }, {
        name: "c",
        needs: ["b"],
      }]),
    /cycle: current value is a → c → b → a/,
  );
  assertThrows(() => defineGraph([{ name: "a", needs: ["a"] }]), /cycle: current value is a → a/);
});

Deno.test("defineGraph() gives levels and reserves the required chain after each node", () => {
  const graph = defineGraph([
    { name: "order", required: true },
    { name: "customer", needs: ["order"], required: true, minBudgetMs: 50 },
    { name: "address", needs: ["customer"], required: true, minBudgetMs: 30 },
    { name: "items", needs: ["order"], minBudgetMs: 500 },
  ]);
  assertEquals(graph.levels, [0, 1, 2, 1]);
  // Optional items reserve nothing; the required chain customer → address reserves 80.
  assertEquals(graph.reserveMs, [80, 30, 0, 0]);
});

Deno.test("runGraph() starts a node only once all its needs answered, and hands it their values", async () => {
  const { calls, task, find } = manual();
  const graph = defineGraph([
    { name: "order" },
    { name: "user" },
    { name: "summary", needs: ["order", "user"] },
  ]);
  const run = runGraph(graph, task, { budgetMs: 10_000 });
  assertEquals(calls.map((c) => c.name), ["order", "user"]);
  find("user").answer({ id: "u" });
  await flush();
  assertEquals(calls.map((c) => c.name), ["order", "user"]);
  find("order").answer({ id: "o" });
  await flush();
  assertEquals(calls.map((c) => c.name), ["order", "user", "summary"]);
  assertEquals(find("summary").context.inputs, { order: { id: "o" }, user: { id: "u" } });
  find("summary").answer("done");
  const report = await run;
  assertEquals(report.nodes.summary.outcome, "ok");
  assertEquals(report.nodes.summary.level, 1);
  assertEquals(report.nodes.summary.waitedOn, "order");
});

Deno.test("runGraph() starts ready nodes in declaration order and never holds more than limit calls", async () => {
  const { calls, task } = manual();
  const graph = defineGraph([{ name: "a" }, { name: "b" }, { name: "c" }, { name: "d" }]);
  const run = runGraph(graph, task, { budgetMs: 10_000, limit: 2 });
  assertEquals(calls.map((c) => c.name), ["a", "b"]);
  calls[1].answer(1);
  await flush();
  assertEquals(calls.map((c) => c.name), ["a", "b", "c"]);
  calls[0].answer(0);
  await flush();
  assertEquals(calls.map((c) => c.name), ["a", "b", "c", "d"]);
  calls[2].answer(2);
  calls[3].answer(3);
  assertEquals(Object.values((await run).nodes).map((n) => n.outcome), ["ok", "ok", "ok", "ok"]);
});

Deno.test("runGraph() skips every node after a failed need, naming the need", async () => {
  const { task, find } = manual();
  const graph = defineGraph([
    { name: "order" },
    { name: "customer", needs: ["order"] },
    { name: "address", needs: ["customer"] },
    { name: "other" },
  ]);
  const run = runGraph(graph, task, { budgetMs: 10_000 });
  find("order").fail(new Error("boom"));
  find("other").answer(1);
  const { nodes, stoppedBy } = await run;
  assertEquals(nodes.order.outcome, "failed");
  assertEquals(nodes.order.reason, "error: boom");
  assertEquals(nodes.customer, {
    outcome: "skipped",
    reason: 'skipped: need "order" failed',
    level: 1,
    waitedOn: "order",
  });
  assertEquals(nodes.address.reason, 'skipped: need "customer" skipped');
  assertEquals(nodes.other.outcome, "ok");
  assertEquals(stoppedBy, undefined);
});

Deno.test("runGraph() stops at a failed required node: running calls aborted, the rest skipped", async () => {
  const { calls, task, find } = manual();
  const graph = defineGraph([
    { name: "order", required: true },
    { name: "slow" },
    { name: "queued" },
    { name: "customer", needs: ["order"] },
  ]);
  const run = runGraph(graph, task, { budgetMs: 10_000, limit: 2 });
  find("order").fail(new Error("down"));
  const { nodes, stoppedBy } = await run;
  assertEquals(stoppedBy, "order");
  assertEquals(nodes.slow.outcome, "aborted");
  assertEquals(nodes.slow.reason, 'aborted: required branch "order" failed');
  assertEquals(nodes.queued.reason, 'skipped: required branch "order" failed');
  assertEquals(nodes.customer.reason, 'skipped: need "order" failed');
  assert(calls.find((c) => c.name === "slow")!.context.signal.aborted);
  assertEquals(calls.length, 2);
});

Deno.test("runGraph() with failFast stops at any node's failure, optional or not", async () => {
  const { calls, task, find } = manual();
  const graph = defineGraph([
    { name: "reviews" },
    { name: "order", required: true },
    { name: "queued" },
    { name: "customer", needs: ["reviews"] },
  ]);
  const run = runGraph(graph, task, { budgetMs: 10_000, limit: 2, failFast: true });
  find("reviews").fail(new Error("down"));
  const { nodes, stoppedBy } = await run;
  assertEquals(stoppedBy, "reviews");
  assertEquals(nodes.order.outcome, "aborted");
  assertEquals(nodes.order.reason, 'aborted: branch "reviews" failed');
  assertEquals(nodes.queued.reason, 'skipped: branch "reviews" failed');
  assertEquals(nodes.customer.reason, 'skipped: need "reviews" failed');
  assert(find("order").context.signal.aborted);
  assertEquals(calls.length, 2);
});

Deno.test("runGraph() with failFast answers every node when none fails", async () => {
  const { task, find } = manual();
  const graph = defineGraph([{ name: "a" }, { name: "b", needs: ["a"] }]);
  const run = runGraph(graph, task, { budgetMs: 10_000, failFast: true });
  find("a").answer(1);
  await flush();
  find("b").answer(2);
  const { nodes, stoppedBy } = await run;
  assertEquals([nodes.a.value, nodes.b.value, stoppedBy], [1, 2, undefined]);
});

Deno.test("runGraph() fails a call at its deadline even when the call ignores its signal", async () => {
  const graph = defineGraph([{ name: "stuck", timeoutMs: 1 }, { name: "after", needs: ["stuck"] }]);
  const never = deferred<unknown>();
  const report = await runGraph(graph, () => never.promise, { budgetMs: 10_000 });
  assertEquals(report.nodes.stuck.outcome, "failed");
  assertEquals(report.nodes.stuck.reason, "timeout");
  assertEquals(report.nodes.after.reason, 'skipped: need "stuck" failed');
});

Deno.test("runGraph() with graceMs lets a call that keeps its own deadline report how it ended", async () => {
  const graph = defineGraph([{ name: "own", timeoutMs: 1 }]);
  const report = await runGraph(
    graph,
    ({ name }, { deadline, signal }) =>
      new Promise((_, reject) => {
        // The call's own cut, at its deadline, with its own words.
        const timer = setTimeout(
          () => reject(new Error(`${name} cut itself`)),
          deadline - performance.now(),
        );
        signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
      }),
    { budgetMs: 10_000, graceMs: 50 },
  );
  assertEquals(report.nodes.own.reason, "error: own cut itself");
});

Deno.test("runGraph() gives a node the budget less what its required dependents need, capped by its own timeout", async () => {
  const { task, find } = manual();
  const graph = defineGraph([
    { name: "order", required: true },
    { name: "customer", needs: ["order"], required: true, minBudgetMs: 300 },
    { name: "quick", timeoutMs: 100 },
  ]);
  const origin = performance.now();
  const run = runGraph(graph, task, { budgetMs: 1_000, origin });
  assertEquals(Math.round(find("order").context.deadline - origin), 700);
  assert(find("quick").context.deadline <= origin + 1_000);
  assert(find("quick").context.deadline - origin <= 100 + (performance.now() - origin));
  find("quick").answer(1);
  find("order").answer({});
  await flush();
  assertEquals(Math.round(find("customer").context.deadline - origin), 1_000);
  find("customer").answer(2);
  const { nodes } = await run;
  assertEquals(Math.round(nodes.order.deadlineMs!), 700);
  assertEquals(Math.round(nodes.customer.deadlineMs!), 1_000);
});

Deno.test("runGraph() skips a node whose minimum budget is no longer left, saying how much was", async () => {
  const graph = defineGraph([{ name: "late", minBudgetMs: 50 }]);
  const origin = performance.now() - 980;
  const { nodes } = await runGraph(graph, () => 1, { budgetMs: 1_000, origin });
  assertEquals(nodes.late.outcome, "skipped");
  assert(/^skipped: \d+ ms of budget left, needs 50$/.test(nodes.late.reason!), nodes.late.reason);
});

Deno.test("runGraph() makes one call per forEach element, bounded by limit, and keeps their order", async () => {
  const { calls, task, find } = manual();
  const graph = defineGraph([
    { name: "order" },
    {
      name: "items",
      needs: ["order"],
      forEach: (inputs) => (inputs.order as { ids: string[] }).ids,
    },
  ]);
  const run = runGraph(graph, task, { budgetMs: 10_000, limit: 2 });
  find("order").answer({ ids: ["x", "y", "z"] });
  await flush();
  assertEquals(calls.map((c) => c.element), [undefined, "x", "y"]);
  find("items", "y").answer("Y");
  await flush();
  find("items", "x").answer("X");
  await flush();
  find("items", "z").answer("Z");
  const { nodes } = await run;
  assertEquals(nodes.items.value, ["X", "Y", "Z"]);
  assertEquals(nodes.items.calls, 3);
});

Deno.test("runGraph() fails a forEach node at its first failed call and aborts its siblings", async () => {
  const { task, find } = manual();
  const graph = defineGraph([{ name: "items", forEach: () => ["a", "b"] }]);
  const run = runGraph(graph, task, { budgetMs: 10_000 });
  find("items", "b").fail(new Error("gone"));
  const { nodes } = await run;
  assertEquals(nodes.items.outcome, "failed");
  assertEquals(nodes.items.reason, "[1] error: gone");
  assert(find("items", "a").context.signal.aborted);
});

Deno.test("runGraph() answers an empty forEach without a call", async () => {
  let called = 0;
  const graph = defineGraph([{ name: "items", forEach: () => [] }]);
  const { nodes } = await runGraph(graph, () => called++, { budgetMs: 100 });
  assertEquals(nodes.items.value, []);
  assertEquals(called, 0);
});

Deno.test("runGraph() aborts calls at every level when the caller aborts, and rejects with its reason", async () => {
  const { calls, task, find } = manual();
  const graph = defineGraph([
    { name: "order" },
    { name: "customer", needs: ["order"] },
    { name: "items", needs: ["order"], forEach: () => [1, 2] },
  ]);
  const caller = new AbortController();
  const run = runGraph(graph, task, { budgetMs: 10_000, signal: caller.signal });
  find("order").answer({});
  await flush();
  assertEquals(calls.length, 4);
  caller.abort(new Error("client left"));
  await run.then(() => assert(false, "resolved"), (e) => assertEquals(e.message, "client left"));
  assert(calls.every((c) => c.context.signal.aborted === (c.name !== "order")));
});

Deno.test("runGraph() keeps extra attempts inside limit through its spare seats", async () => {
  const { task, find } = manual();
  const graph = defineGraph([{ name: "a" }, { name: "b" }]);
  const run = runGraph(graph, task, { budgetMs: 10_000, limit: 3 });
  const seat = find("a").context.spare.tryAcquire();
  assert(seat !== undefined);
  assertEquals(find("a").context.spare.tryAcquire(), undefined);
  seat.release();
  assert(find("a").context.spare.tryAcquire() !== undefined);
  find("a").answer(1);
  find("b").answer(2);
  await run;
});

Deno.test("runGraph() rejects a bad limit and budget naming them", async () => {
  const graph = defineGraph([{ name: "a" }]);
  const failure = (run: Promise<unknown>) => run.then(() => "resolved", (e: Error) => e.message);
  assert(
    /'limit' must be a positive integer: current value is 0/.test(
      await failure(runGraph(graph, () => 1, { budgetMs: 10, limit: 0 })),
    ),
  );
  assert(
    /'budgetMs' must be a non-negative number: current value is NaN/.test(
      await failure(runGraph(graph, () => 1, { budgetMs: NaN })),
    ),
  );
});

Deno.test("runGraph() counts the calls in flight within limit across levels", async () => {
  const inFlight = new InFlight();
  const graph = defineGraph([
    { name: "a", forEach: () => [1, 2, 3, 4] },
    { name: "b", needs: ["a"], forEach: () => [1, 2, 3] },
    { name: "c" },
  ]);
  const { nodes } = await runGraph(graph, async () => {
    inFlight.enter();
    await flush(3);
    inFlight.leave();
    return 1;
  }, { budgetMs: 10_000, limit: 2 });
  assertEquals(inFlight.max, 2);
  assertEquals(inFlight.started, 8);
  assertEquals(nodes.b.value, [1, 1, 1]);
});

Deno.test("runGraph() leaves no timer or listener behind when a required failure stops calls that wait on deadlines", async () => {
  // With the test sanitizers on, a deadline timer or caller listener left armed fails this test.
  const { task, find } = manual();
  const caller = new AbortController();
  const graph = defineGraph([
    { name: "order", required: true },
    { name: "slow", timeoutMs: 60_000 },
    { name: "customer", needs: ["order"], timeoutMs: 60_000 },
  ]);
  const run = runGraph(graph, task, { budgetMs: 60_000, signal: caller.signal });
  find("order").fail(new Error("down"));
  const { nodes } = await run;
  assertEquals(nodes.slow.outcome, "aborted");
  // Aborting the caller after the run settled changes nothing.
  caller.abort(new Error("late"));
  assertEquals(nodes.slow.reason, 'aborted: required branch "order" failed');
});
