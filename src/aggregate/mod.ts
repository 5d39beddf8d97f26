/**
 * Declarative aggregation: a graph of downstream calls where each branch starts as soon as the
 * branches it needs have answered, all of them inside one request budget.
 *
 * @example
 * ```ts
 * import { defineGraph, runGraph } from "./mod.ts";
 * const graph = defineGraph([{ name: "order" }, { name: "customer", needs: ["order"] }]);
 * const report = await runGraph(graph, () => ({ ok: true }), { budgetMs: 300 });
 * ```
 *
 * @module
 */

export { defineGraph, findCycle, type Graph, type GraphNode } from "./graph.ts";
export {
  type GraphContext,
  type GraphReport,
  type NodeOutcome,
  type NodeReport,
  runGraph,
  type RunGraphOptions,
} from "./run_graph.ts";
