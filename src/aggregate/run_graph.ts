/**
 * `runGraph`: run a call graph as its answers arrive, each node as soon as its needs have
 * answered, at most `limit` calls in flight, every call under a deadline cut from one budget.
 *
 * @module
 */
import { BranchTimeoutError, DeadlineTimer, Semaphore } from "../executor/mod.ts";
import type { Graph, GraphNode } from "./graph.ts";

/**
 * How a node ended: it answered (`ok`), its call failed or ran out of time (`failed`), it never
 * started (`skipped`: a need gave no answer, too little budget, or the graph was stopped), or it
 * was cut while running because the graph was stopped (`aborted`).
 *
 * @example
 * ```ts
 * import type { NodeOutcome } from "./run_graph.ts";
 * const outcome: NodeOutcome = "skipped";
 * ```
 */
export type NodeOutcome = "ok" | "failed" | "skipped" | "aborted";

/**
 * What became of one node. Times are ms since the run's `origin`; a node that never started has
 * none.
 *
 * @example
 * ```ts
 * import type { NodeReport } from "./run_graph.ts";
 * const report: NodeReport = {
 *   outcome: "skipped", reason: 'skipped: need "order" failed', level: 1, waitedOn: "order",
 * };
 * ```
 */
export interface NodeReport {
  outcome: NodeOutcome;
  /** `ok` only: the answer (an array of answers for a `forEach` node). */
  value?: unknown;
  /** `failed` only: what the call threw (a `BranchTimeoutError` when its deadline passed). */
  error?: unknown;
  /** Why it gave no value; absent when ok. */
  reason?: string;
  /** Its level in the graph (0: no needs). */
  level: number;
  /** The need whose answer came last, which is what this node waited on. */
  waitedOn?: string;
  /** When its first call started. */
  startMs?: number;
  /** When it was decided. */
  endMs?: number;
  /** The deadline of its first call. */
  deadlineMs?: number;
  /** `forEach` nodes only: calls it made (elements started). */
  calls?: number;
}

/**
 * A run's account: every node's report by name, and the required node whose failure stopped
 * the graph, if one did.
 *
 * @example
 * ```ts
 * import type { GraphReport } from "./run_graph.ts";
 * const report: GraphReport = { nodes: { order: { outcome: "ok", value: {}, level: 0 } } };
 * ```
 */
export interface GraphReport {
  nodes: Record<string, NodeReport>;
  stoppedBy?: string;
}

/**
 * What a node's call gets: its signal and deadline, its needs' values, and for a `forEach` node
 * the element it is for.
 *
 * @example
 * ```ts
 * import type { GraphContext } from "./run_graph.ts";
 * const call = (context: GraphContext) => fetch(`/items/${context.element}`, context);
 * ```
 */
export interface GraphContext {
  /** Aborts at the call's deadline, when the graph stops, or when the caller aborts. */
  readonly signal: AbortSignal;
  /** `performance.now()` time by which the call must be done. */
  readonly deadline: number;
  /** The value of each need, by name. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** `forEach` nodes: the element of this call; `undefined` otherwise. */
  readonly element: unknown;
  /** `forEach` nodes: the element's index; 0 otherwise. */
  readonly elementIndex: number;
  /**
   * The run's free seats, for extra attempts (hedges) that must stay inside `limit`: one seat
   * now, or `undefined`.
   */
  readonly spare: { tryAcquire(): { release(): void } | undefined };
}

/**
 * Options of {@linkcode runGraph}.
 *
 * @example
 * ```ts
 * import type { RunGraphOptions } from "./run_graph.ts";
 * const options: RunGraphOptions = { budgetMs: 800, limit: 6 };
 * ```
 */
export interface RunGraphOptions {
  /** The whole run's time in ms, shared by every level. */
  budgetMs: number;
  /** Calls in flight at once, `forEach` calls included; 6 by default. */
  limit?: number;
  /** Aborting it aborts every call; the run then rejects with its reason. */
  signal?: AbortSignal;
  /** `performance.now()` when the request arrived: the budget and the report count from it. */
  origin?: number;
  /** Words for a failed call's `reason`; `"timeout"` or `"error: <message>"` by default. */
  reasonOf?: (error: unknown) => string;
  /**
   * How long after a call's deadline the graph cuts it itself, in ms; 0 by default. Give calls
   * that keep their deadline on their own (and report how they ended) the first word: the
   * graph's cut is then the backstop for a call that does not.
   */
  graceMs?: number;
  /**
   * Whether the first node to give no value stops the graph, required or not (the product
   * route's `failFast`); only a required node's does by default.
   */
  failFast?: boolean;
}

/** One call in flight. */
interface Call {
  node: number;
  element: number;
  controller: AbortController;
  deadline: number;
  timeoutMs: number;
}

/** One node's state during a run. */
interface NodeState {
  /** Needs not yet answered. */
  pending: number;
  report: NodeReport | undefined;
  elements: readonly unknown[] | undefined;
  values: unknown[];
  answered: number;
  inputs: Record<string, unknown> | undefined;
  startMs: number | undefined;
  deadlineMs: number | undefined;
  waitedOn: string | undefined;
  started: number;
}

/**
 * Runs `graph`: every node without needs is ready at once; a node becomes ready as soon as its
 * last need answers (its `inputs` then hold every need's value) and its calls queue for a seat,
 * ready nodes in the order they became ready (declaration order among those ready together). At
 * most `limit` calls are in flight.
 *
 * Each call's deadline is the earliest of its own `timeoutMs` and the request's deadline less
 * the node's reserve (see `defineGraph`); a call is not started with less than its
 * `minBudgetMs` left before that (the node is skipped). At its deadline a call is aborted with a
 * `BranchTimeoutError` and its node fails at once, whether or not the call heeds its signal.
 *
 * A node that gives no value makes every node that needs it `skipped` with that reason; a
 * `required` one (with `failFast`, any) stops the graph: running calls are aborted (`aborted`),
 * and every node not started is `skipped`, naming it. A `forEach` node answers once all its
 * calls did; its first failed call fails it (the others are aborted). One timer serves all
 * deadlines; nothing is left armed or listening once the run settles, and an abandoned call is
 * never awaited.
 *
 * Resolves with every node's report; rejects only with the caller's abort reason.
 *
 * @example
 * ```ts
 * import { defineGraph } from "./graph.ts";
 * import { runGraph } from "./run_graph.ts";
 *
 * const graph = defineGraph([
 *   { name: "order", required: true },
 *   { name: "customer", needs: ["order"] },
 * ]);
 * const report = await runGraph(graph, async (node, { inputs }) => {
 *   if (node.name === "order") return { customerId: "c-1" };
 *   return { id: (inputs.order as { customerId: string }).customerId };
 * }, { budgetMs: 500 });
 * report.nodes.customer.value; // { id: "c-1" }
 * ```
 */
export function runGraph<N extends GraphNode>(
  graph: Graph<N>,
  task: (node: N, context: GraphContext) => unknown,
  {
    budgetMs,
    limit = 6,
    signal,
    origin = performance.now(),
    reasonOf = defaultReason,
    graceMs = 0,
    failFast = false,
  }: RunGraphOptions,
): Promise<GraphReport> {
  if (!Number.isInteger(limit) || limit < 1) {
    return Promise.reject(
      new RangeError(
        `Cannot run the graph as 'limit' must be a positive integer: current value is ${limit}`,
      ),
    );
  }
  if (!(budgetMs >= 0)) {
    return Promise.reject(
      new RangeError(
        `Cannot run the graph as 'budgetMs' must be a non-negative number: current value is ${budgetMs}`,
      ),
    );
  }
  if (signal?.aborted) return Promise.reject(signal.reason);
  const { nodes, needs, dependents, levels, reserveMs } = graph;
  const requestDeadline = origin + budgetMs;
  const seats = new Semaphore(limit);
  const states: NodeState[] = nodes.map((_, i) => ({
    pending: needs[i].length,
    report: undefined,
    elements: undefined,
    values: [],
    answered: 0,
    inputs: undefined,
    startMs: undefined,
    deadlineMs: undefined,
    waitedOn: undefined,
    started: 0,
  }));
  const queue: { node: number; element: number }[] = [];
  const live = new Set<Call>();
  let undecided = nodes.length;
  let stoppedBy: string | undefined;
  let finished = false;
  let resolveRun!: (report: GraphReport) => void;
  let rejectRun!: (reason: unknown) => void;
  const run = new Promise<GraphReport>((resolve, reject) => {
    resolveRun = resolve;
    rejectRun = reject;
  });

  const timer = new DeadlineTimer(() => {
    const now = performance.now();
    for (const call of live) {
      if (call.deadline + graceMs > now || !live.has(call)) continue;
      const error = new BranchTimeoutError(call.node, call.timeoutMs);
      end(call, error);
      fail(call.node, error, "");
    }
    if (finished) return;
    let next = Infinity;
    for (const call of live) next = Math.min(next, call.deadline + graceMs);
    timer.armBy(next);
  });
  const onAbort = () => {
    const reason = signal!.reason;
    for (const call of live) end(call, reason);
    finish();
    rejectRun(reason);
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  const spare = {
    tryAcquire: () => {
      if (finished || !seats.tryAcquire()) return undefined;
      let held = true;
      return {
        release: () => {
          if (!held) return;
          held = false;
          seats.release();
          pump();
        },
      };
    },
  };

  /** Takes `call` out of the running: its seat is free and its signal aborted with `reason`. */
  function end(call: Call, reason?: unknown): void {
    if (!live.delete(call)) return;
    seats.release();
    if (reason !== undefined) call.controller.abort(reason);
  }

  function decide(i: number, report: Omit<NodeReport, "level">): void {
    const state = states[i];
    if (state.report !== undefined) return;
    const full: NodeReport = { ...report, level: levels[i] } as NodeReport;
    if (state.waitedOn !== undefined) full.waitedOn = state.waitedOn;
    if (state.startMs !== undefined) {
      full.startMs = state.startMs;
      full.endMs = performance.now() - origin;
      full.deadlineMs = state.deadlineMs;
    }
    if (nodes[i].forEach !== undefined && state.elements !== undefined) full.calls = state.started;
    state.report = full;
    undecided--;
    if (full.outcome === "ok") {
      for (const d of dependents[i]) {
        const dependent = states[d];
        dependent.waitedOn = nodes[i].name;
        if (--dependent.pending === 0 && dependent.report === undefined) ready(d);
      }
    } else {
      // Stop before cascading, so that the dependents read "need failed" as the reason they
      // gave no value, and everything else the required node's name.
      if ((failFast || nodes[i].required === true) && stoppedBy === undefined) {
        stop(i, full.outcome);
      }
      for (const d of dependents[i]) {
        states[d].waitedOn ??= nodes[i].name;
        decide(d, {
          outcome: "skipped",
          reason: `skipped: need "${nodes[i].name}" ${describeOutcome(full.outcome)}`,
        });
      }
      // A node still running this one's calls (forEach siblings) has nothing left to wait for.
      for (const call of live) if (call.node === i) end(call, new Error(full.reason));
    }
    if (finished) return;
    if (undecided === 0) {
      finish();
      const report: GraphReport = { nodes: {} };
      nodes.forEach((node, index) => report.nodes[node.name] = states[index].report!);
      if (stoppedBy !== undefined) report.stoppedBy = stoppedBy;
      resolveRun(report);
    } else {
      pump();
    }
  }

  function stop(i: number, outcome: NodeOutcome): void {
    const name = nodes[i].name;
    stoppedBy = name;
    const why = `${nodes[i].required === true ? "required " : ""}branch "${name}" ${
      describeOutcome(outcome)
    }`;
    const stopped = new Error(`The graph stopped as ${why}`);
    queue.length = 0;
    const running = new Set<number>();
    for (const call of live) {
      running.add(call.node);
      end(call, stopped);
    }
    states.forEach((state, d) => {
      if (d === i || state.report !== undefined || needs[d].includes(i)) return;
      if (running.has(d) || state.started > 0) {
        decide(d, { outcome: "aborted", reason: `aborted: ${why}` });
      } else decide(d, { outcome: "skipped", reason: `skipped: ${why}` });
    });
  }

  function fail(i: number, error: unknown, prefix: string): void {
    decide(i, { outcome: "failed", error, reason: prefix + reasonOf(error) });
  }

  /** Node `i`'s needs all answered: queue its calls (none for an empty `forEach`). */
  function ready(i: number): void {
    const state = states[i];
    const node = nodes[i];
    if (needs[i].length > 0) {
      state.inputs = {};
      for (const need of needs[i]) state.inputs[nodes[need].name] = states[need].report!.value;
    }
    if (node.forEach === undefined) {
      state.elements = [undefined];
    } else {
      try {
        state.elements = node.forEach(state.inputs ?? {});
      } catch (error) {
        fail(i, error, "");
        return;
      }
      if (state.elements.length === 0) {
        decide(i, { outcome: "ok", value: [] });
        return;
      }
    }
    for (let element = 0; element < state.elements.length; element++) {
      queue.push({ node: i, element });
    }
  }

  function pump(): void {
    while (!finished && queue.length > 0 && seats.tryAcquire()) {
      const { node: i, element } = queue.shift()!;
      const state = states[i];
      if (state.report !== undefined) {
        seats.release();
        continue;
      }
      const node = nodes[i];
      const now = performance.now();
      const cap = requestDeadline - reserveMs[i];
      const leftMs = cap - now;
      const minMs = node.minBudgetMs ?? 1;
      if (leftMs < minMs) {
        seats.release();
        decide(i, {
          outcome: "skipped",
          reason: `skipped: ${Math.max(0, Math.floor(leftMs))} ms of budget left, needs ${minMs}`,
        });
        continue;
      }
      const timeoutMs = node.timeoutMs ?? Infinity;
      const deadline = Math.min(now + timeoutMs, cap);
      const call: Call = {
        node: i,
        element,
        controller: new AbortController(),
        deadline,
        timeoutMs: Math.round(Math.min(timeoutMs, leftMs)),
      };
      live.add(call);
      if (state.started++ === 0) {
        state.startMs = now - origin;
        state.deadlineMs = deadline - origin;
      }
      timer.armBy(deadline + graceMs);
      const context: GraphContext = {
        signal: call.controller.signal,
        deadline,
        inputs: state.inputs ?? {},
        element: state.elements![element],
        elementIndex: element,
        spare,
      };
      let answer: Promise<unknown>;
      try {
        answer = Promise.resolve(task(node, context));
      } catch (error) {
        answer = Promise.reject(error);
      }
      answer.then(
        (value) => settle(call, true, value),
        (error) => settle(call, false, error),
      );
    }
  }

  function settle(call: Call, ok: boolean, outcome: unknown): void {
    // Late: cut by its deadline, a stop, a sibling's failure or the caller.
    if (!live.has(call)) return;
    end(call);
    const i = call.node;
    const state = states[i];
    if (!ok) {
      const prefix = nodes[i].forEach === undefined ? "" : `[${call.element}] `;
      fail(i, outcome, prefix);
      return;
    }
    state.values[call.element] = outcome;
    if (++state.answered === state.elements!.length) {
      decide(i, {
        outcome: "ok",
        value: nodes[i].forEach === undefined ? state.values[0] : state.values,
      });
    } else pump();
  }

  function finish(): void {
    finished = true;
    timer.clear();
    signal?.removeEventListener("abort", onAbort);
  }

  nodes.forEach((_, i) => needs[i].length === 0 && ready(i));
  pump();
  return run;
}

function describeOutcome(outcome: NodeOutcome): string {
  return outcome === "ok" ? "answered" : outcome;
}

function defaultReason(error: unknown): string {
  if (error instanceof BranchTimeoutError) return "timeout";
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}
