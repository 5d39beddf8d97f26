import fc from "fast-check";
import { assert, assertEquals } from "../_assert.ts";
import { InFlight } from "../_deferred.ts";
import { defineGraph, type GraphNode, runGraph } from "../../src/aggregate/mod.ts";

/** A generated node: its needs among the nodes before it (so no cycle), and its script. */
interface Script {
  needs: number[];
  required: boolean;
  forEach: number;
  ticks: number;
  fails: boolean;
}

const graphs = fc.integer({ min: 1, max: 8 }).chain((size) =>
  fc.tuple(
    ...Array.from({ length: size }, (_, i) =>
      fc.record({
        needs: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, i - 1) }), {
          maxLength: i === 0 ? 0 : 3,
        }),
        required: fc.boolean(),
        forEach: fc.integer({ min: 0, max: 3 }),
        ticks: fc.integer({ min: 0, max: 5 }),
        fails: fc.boolean(),
      })),
  )
);

Deno.test("runGraph() property: every node ends exactly one of ok / failed / skipped / aborted, none starts before its needs answered, and never more than limit run at once", async () => {
  await fc.assert(
    fc.asyncProperty(graphs, fc.integer({ min: 1, max: 4 }), async (scripts: Script[], limit) => {
      const nodes: GraphNode[] = scripts.map((script, i) => ({
        name: `n${i}`,
        needs: script.needs.map((n) => `n${n}`),
        required: script.required,
        // 0: a plain call; otherwise one call per element.
        forEach: script.forEach === 0
          ? undefined
          : () => Array.from({ length: script.forEach - 1 }, (_, e) => e),
      }));
      const started = new Set<string>();
      // Asserting inside a call would only fail that call: violations are collected instead.
      const violations: string[] = [];
      const valueOf = (n: number) =>
        scripts[n].forEach === 0 ? n : Array.from({ length: scripts[n].forEach - 1 }, () => n);
      const inFlight = new InFlight();
      const report = await runGraph(defineGraph(nodes), async (node, { inputs, signal }) => {
        const i = Number(node.name.slice(1));
        // A need's value exists only once all its calls answered.
        for (const n of scripts[i].needs) {
          if (JSON.stringify(inputs[`n${n}`]) !== JSON.stringify(valueOf(n))) {
            violations.push(`n${i} started without the answer of n${n}`);
          }
        }
        started.add(node.name);
        // A call counts as in flight until it settles or the graph gives up on it (aborts its
        // signal): an abandoned call's seat is free at once, as in fanOut.
        inFlight.enter();
        let counted = true;
        const leave = () => counted && (counted = false, inFlight.leave());
        signal.addEventListener("abort", leave, { once: true });
        try {
          for (let t = 0; t < scripts[i].ticks && !signal.aborted; t++) await null;
          if (scripts[i].fails) throw new Error(`${node.name} failed`);
          return i;
        } finally {
          signal.removeEventListener("abort", leave);
          leave();
        }
      }, { budgetMs: 10_000, limit });
      assertEquals(violations, []);
      assert(inFlight.max <= limit, `${inFlight.max} in flight with limit ${limit}`);
      assertEquals(Object.keys(report.nodes).length, nodes.length);
      for (const node of nodes) {
        const { outcome, reason } = report.nodes[node.name];
        assert(["ok", "failed", "skipped", "aborted"].includes(outcome));
        assertEquals(outcome === "ok", reason === undefined);
        if (outcome === "ok") {
          for (const need of node.needs ?? []) assertEquals(report.nodes[need].outcome, "ok");
        }
        if (outcome === "skipped" && node.forEach === undefined) assert(!started.has(node.name));
        if (outcome === "aborted") assert(report.stoppedBy !== undefined);
        if (node.needs?.some((need) => report.nodes[need].outcome !== "ok")) {
          assert(outcome === "skipped", `${node.name} is ${outcome} with a need that gave nothing`);
        }
      }
      const failedRequired = nodes.filter((n) =>
        n.required && report.nodes[n.name].outcome !== "ok"
      );
      assertEquals(report.stoppedBy === undefined, failedRequired.length === 0);
    }),
    { numRuns: 300 },
  );
});
