/**
 * A dependency graph of calls, checked and worked out once: each node's level, its dependents,
 * and the budget it must leave to the required nodes after it.
 *
 * @module
 */

/**
 * One node of a call graph: a name, the nodes whose answers it uses, and what it may cost.
 *
 * @example
 * ```ts
 * import type { GraphNode } from "./graph.ts";
 * const customer: GraphNode = { name: "customer", needs: ["order"], timeoutMs: 200 };
 * ```
 */
export interface GraphNode {
  /** Unique within its graph. */
  readonly name: string;
  /** Nodes that must answer before this one starts; their values are its `inputs`. */
  readonly needs?: readonly string[];
  /** Whether the graph is lost without it: its failure stops the graph. `false` by default. */
  readonly required?: boolean;
  /** Its own time limit per call in ms; the request's budget caps it further. None by default. */
  readonly timeoutMs?: number;
  /** Not started with less budget than this left, in ms; 1 by default. */
  readonly minBudgetMs?: number;
  /**
   * Makes the node one call per element of what this returns (called with the inputs once its
   * needs answered): its value is then the array of the calls' values. Throwing fails the node.
   */
  readonly forEach?: (inputs: Readonly<Record<string, unknown>>) => readonly unknown[];
}

/**
 * A checked graph: the nodes in declaration order plus what every run of it shares.
 *
 * @example
 * ```ts
 * import { defineGraph } from "./graph.ts";
 * const graph = defineGraph([{ name: "order" }, { name: "customer", needs: ["order"] }]);
 * graph.levels; // [0, 1]
 * ```
 */
export interface Graph<N extends GraphNode = GraphNode> {
  /** The nodes, in declaration order: ready nodes start in this order. */
  readonly nodes: readonly N[];
  /** Index of each node's needs. */
  readonly needs: readonly (readonly number[])[];
  /** Index of the nodes that need each node. */
  readonly dependents: readonly (readonly number[])[];
  /** 0 for a node without needs, else one more than its deepest need. */
  readonly levels: readonly number[];
  /**
   * Budget in ms each node leaves to the required nodes after it: the largest sum of
   * `minBudgetMs` along any chain of required dependents.
   */
  readonly reserveMs: readonly number[];
}

/**
 * Checks `nodes` (unique non-empty names, known needs, no cycle, positive limits) and works out
 * levels, dependents and reserves. Throws a `RangeError` naming the first problem; a cycle is
 * named node by node (`a → b → a`).
 *
 * How the budget is split: a node may run until the request's deadline less its reserve (the
 * `minBudgetMs` of the required nodes still to run after it, along their longest chain), and
 * at most its own `timeoutMs`. Optional dependents get whatever is left when their turn comes,
 * so a slow optional level never costs a required one its answer.
 *
 * @example
 * ```ts
 * import { defineGraph } from "./graph.ts";
 * const graph = defineGraph([
 *   { name: "order", required: true },
 *   { name: "customer", needs: ["order"], required: true, minBudgetMs: 50 },
 * ]);
 * graph.reserveMs; // [50, 0]
 * ```
 */
export function defineGraph<N extends GraphNode>(nodes: readonly N[]): Graph<N> {
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new RangeError(
      `Cannot define a graph as 'nodes' must be a non-empty array: current value is ${
        Array.isArray(nodes) ? "an empty array" : typeof nodes
      }`,
    );
  }
  const index = new Map<string, number>();
  nodes.forEach((node, i) => {
    if (typeof node.name !== "string" || node.name === "" || index.has(node.name)) {
      throw new RangeError(
        `Cannot define a graph as each 'name' must be a unique non-empty string: current value is ${
          JSON.stringify(node.name)
        }`,
      );
    }
    for (const field of ["timeoutMs", "minBudgetMs"] as const) {
      const value = node[field];
      if (value !== undefined && !(value > 0)) {
        throw new RangeError(
          `Cannot define a graph as '${field}' of node '${node.name}' must be a positive number: current value is ${value}`,
        );
      }
    }
    index.set(node.name, i);
  });
  const needs = nodes.map((node) =>
    (node.needs ?? []).map((name: string) => {
      const need = index.get(name);
      if (need === undefined) {
        throw new RangeError(
          `Cannot define a graph as node '${node.name}' needs an unknown node: current value is ${
            JSON.stringify(name)
          }`,
        );
      }
      return need;
    })
  );
  const cycle = findCycle(needs);
  if (cycle !== undefined) {
    throw new RangeError(
      `Cannot define a graph as its needs must not form a cycle: current value is ${
        cycle.map((i) => nodes[i].name).join(" → ")
      }`,
    );
  }
  const dependents: number[][] = nodes.map(() => []);
  needs.forEach((list: number[], i: number) => list.forEach((need) => dependents[need].push(i)));
  const levels: number[] = [];
  const level = (i: number): number =>
    levels[i] ??= needs[i].length === 0 ? 0 : 1 + Math.max(...needs[i].map(level));
  nodes.forEach((_, i) => level(i));
  const reserveMs: number[] = [];
  const reserve = (i: number): number =>
    reserveMs[i] ??= Math.max(
      0,
      ...dependents[i].filter((d) => nodes[d].required === true).map((d) =>
        (nodes[d].minBudgetMs ?? 1) + reserve(d)
      ),
    );
  nodes.forEach((_, i) => reserve(i));
  return Object.freeze({
    nodes: Object.freeze([...nodes]),
    needs,
    dependents,
    levels,
    reserveMs,
  });
}

/**
 * A cycle among `needs` (node indexes, the first repeated at the end), or `undefined`.
 *
 * @example
 * ```ts
 * import { findCycle } from "./graph.ts";
 * findCycle([[1], [0]]); // [0, 1, 0]
 * ```
 */
export function findCycle(needs: readonly (readonly number[])[]): number[] | undefined {
  // 0 unvisited, 1 on the current path, 2 done.
  const state = new Uint8Array(needs.length);
  const path: number[] = [];
  const visit = (i: number): number[] | undefined => {
    if (state[i] === 2) return undefined;
    if (state[i] === 1) return [...path.slice(path.indexOf(i)), i];
    state[i] = 1;
    path.push(i);
    for (const need of needs[i]) {
      const cycle = visit(need);
      if (cycle !== undefined) return cycle;
    }
    path.pop();
    state[i] = 2;
    return undefined;
  };
  for (let i = 0; i < needs.length; i++) {
    const cycle = visit(i);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}
