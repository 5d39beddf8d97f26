/**
 * An aggregation endpoint: its branches compiled once into a call graph, and `runEndpoint`, which
 * runs that graph for one request, each call through the gateway's `scatterGather` (so a branch
 * gets the gateway's permits, hedging, answer checks and metrics), then shapes the answers.
 *
 * @module
 */
import {
  type BranchReport,
  type BranchResultKind,
  type BranchSpec,
  DEFAULT_BRANCH_BREAKER,
  defineRegistry,
  type Fetcher,
  type GatewayMetrics,
  scatterGather,
  WORKERS_CONNECTION_LIMIT,
} from "../gateway/mod.ts";
import { AdaptiveDelay, HedgeBudget, type SpareCapacity } from "../hedging/mod.ts";
import { CircuitBreaker, RetryBudget } from "../resilience/mod.ts";
import { BranchTimeoutError, type FailurePolicy } from "../executor/mod.ts";
import type { Limiter } from "../limits/mod.ts";
import {
  type BranchConfig,
  ConfigError,
  configIssues,
  DEFAULT_DOWNSTREAM,
  type EndpointConfig,
} from "./config.ts";
import { defineGraph, type Graph, type GraphNode } from "./graph.ts";
import { type GraphContext, type NodeReport, runGraph } from "./run_graph.ts";
import { type Shape, shapeAnswer } from "./shape.ts";
import { fillTemplate, parseTemplate, readPath, type Template } from "./template.ts";

/** Elements a `forEach` branch calls at most when its config sets no `max`. */
export const DEFAULT_FOR_EACH_MAX = 20;

/**
 * An endpoint as a TypeScript module declares it: the config's shape, where a branch may also
 * carry its `fetcher` instead of naming a downstream.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { EndpointSpec } from "./endpoint.ts";
 *
 * const spec: EndpointSpec = {
 *   name: "orders",
 *   route: "/orders/:id",
 *   branches: {
 *     order: {
 *       fetcher: new Hono().get("/orders/:id", (c) => c.json({ customerId: "c-1" })),
 *       path: "/orders/{params.id}", required: true, timeoutMs: 300,
 *     },
 *   },
 * };
 * ```
 */
export interface EndpointSpec extends Omit<EndpointConfig, "branches"> {
  branches: Record<string, BranchConfig & { fetcher?: Fetcher }>;
}

/** One branch of a compiled endpoint: a graph node with what its calls and answer need. */
export interface AggregateNode extends GraphNode {
  /** A one-branch registry, the same object for every request (the gateway caches by it). */
  readonly registry: readonly BranchSpec[];
  /** The branch's name in metrics: `<endpoint>.<branch>`. */
  readonly metricName: string;
  readonly template: Template;
  readonly shape: Shape;
  /** Key of its answer in the response. */
  readonly group: string;
  /** Used by other branches only, not in the response. */
  readonly internal: boolean;
}

/**
 * A compiled endpoint: what every request to it shares.
 *
 * @example
 * ```ts
 * import type { Endpoint } from "./endpoint.ts";
 * const route = (endpoint: Endpoint) => endpoint.route;
 * ```
 */
export interface Endpoint {
  readonly name: string;
  readonly route: string;
  /** Default budget in ms when the request gives none. */
  readonly budgetMs: number;
  /** Calls in flight per request. */
  readonly limit: number;
  /** Request headers templates may read. */
  readonly headers: readonly string[];
  /** The failure policy when the request names none. */
  readonly policy: FailurePolicy;
  /** Query parameters templates read: a request without one is refused. */
  readonly query: readonly string[];
  readonly graph: Graph<AggregateNode>;
}

/**
 * Compiles `spec` (validated as the config is: see `configIssues`) against `downstreams`, the
 * fetchers by downstream name; a branch with its own `fetcher` needs none. Throws a
 * `ConfigError` naming each problem, or a `RangeError` naming a downstream without a fetcher.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { compileEndpoint } from "./endpoint.ts";
 *
 * const downstream = new Hono().get("/orders/:id", (c) => c.json({ customerId: "c-1" }));
 * const endpoint = compileEndpoint({
 *   name: "orders",
 *   route: "/orders/:id",
 *   branches: { order: { path: "/orders/{params.id}", required: true, timeoutMs: 300 } },
 * }, { downstreams: { default: downstream } });
 * ```
 */
export function compileEndpoint(
  spec: EndpointSpec,
  { downstreams = {} }: { downstreams?: Readonly<Record<string, Fetcher>> } = {},
): Endpoint {
  const declared: EndpointConfig = {
    ...spec,
    branches: Object.fromEntries(
      Object.entries(spec.branches).map(([name, { fetcher: _, ...branch }]) => [name, branch]),
    ),
  };
  const issues = configIssues({
    downstreams: Object.fromEntries(Object.keys(downstreams).map((name) => [name, {}])),
    endpoints: [declared],
  });
  if (issues.length > 0) throw new ConfigError(issues, `endpoint "${spec.name}"`);
  const query = new Set<string>();
  const nodes = Object.entries(spec.branches).map(([branch, config]): AggregateNode => {
    const downstream = config.downstream ?? DEFAULT_DOWNSTREAM;
    const fetcher = config.fetcher ?? downstreams[downstream];
    if (fetcher === undefined) {
      throw new RangeError(
        `Cannot compile endpoint "${spec.name}" as branch "${branch}" calls downstream "${downstream}", which has no fetcher: current downstreams are ${
          JSON.stringify(Object.keys(downstreams))
        }`,
      );
    }
    const template = parseTemplate(config.path);
    for (const p of template.placeholders) if (p.source === "query") query.add(p.name);
    const metricName = `${spec.name}.${branch}`;
    const idempotent = config.idempotent ?? true;
    const registry = defineRegistry([{
      name: metricName,
      fetcher,
      // The path is filled per call and handed to the gateway in place of an id.
      path: (filled: string) => filled,
      required: config.required ?? false,
      idempotent,
      timeoutMs: config.timeoutMs,
      ...branchGuards(config),
    }]);
    return {
      name: branch,
      needs: config.needs,
      required: config.required ?? false,
      timeoutMs: config.timeoutMs,
      minBudgetMs: config.minBudgetMs,
      forEach: config.forEach && forEachOf(config.forEach),
      registry,
      metricName,
      template,
      shape: { target: config.target, pick: config.pick, rename: config.rename },
      group: config.group ?? branch,
      internal: config.internal ?? false,
    };
  });
  return Object.freeze({
    name: spec.name,
    route: spec.route,
    budgetMs: spec.budgetMs ?? 1000,
    limit: spec.limit ?? WORKERS_CONNECTION_LIMIT,
    headers: spec.headers ?? [],
    policy: spec.policy ?? "bestEffort",
    query: [...query],
    graph: defineGraph(nodes),
  });
}

/**
 * A declared branch's hedging, retries and breaker, each with state of its own.
 *
 * @example
 * ```ts
 * import { branchGuards } from "./endpoint.ts";
 * const { hedge } = branchGuards({ hedge: { delayMs: 20 } }); // a fixed 20 ms delay
 * ```
 */
export function branchGuards(
  config: Pick<BranchConfig, "hedge" | "retry" | "breaker">,
): Pick<BranchSpec, "hedge" | "retry" | "breaker"> {
  return {
    hedge: config.hedge === undefined ? undefined : {
      delay: config.hedge.delayMs ??
        new AdaptiveDelay({ quantile: config.hedge.quantile ?? 0.95 }),
      maxAttempts: config.hedge.maxAttempts,
      budget: new HedgeBudget({ ratio: config.hedge.ratio ?? 0.05 }),
    },
    // As guardBranches gives the product's branches: a budget of half the calls plus 10.
    retry: config.retry === undefined ? undefined : {
      budget: new RetryBudget({ ratio: config.retry.ratio ?? 0.5, burst: 10 }),
      maxAttempts: config.retry.maxAttempts ?? 2,
    },
    breaker: config.breaker === true ? new CircuitBreaker(DEFAULT_BRANCH_BREAKER) : undefined,
  };
}

function forEachOf(
  { from, max = DEFAULT_FOR_EACH_MAX }: { from: string; max?: number },
): (inputs: Readonly<Record<string, unknown>>) => readonly unknown[] {
  const [need, ...path] = from.split(".");
  return function elementsOf(inputs) {
    const elements = readPath(inputs[need], path);
    if (!Array.isArray(elements)) {
      throw new TypeError(
        `Cannot call forEach as {${from}} must be an array: current value is ${
          elements === undefined ? "missing" : typeof elements
        }`,
      );
    }
    if (elements.length > max) {
      throw new RangeError(
        `Cannot call forEach as {${from}} may hold at most ${max} elements: current value has ${elements.length}`,
      );
    }
    return elements;
  };
}

/**
 * What one request brings to the templates: path parameters, query parameters, and the allowed
 * headers (lower-case names).
 *
 * @example
 * ```ts
 * import type { EndpointRequest } from "./endpoint.ts";
 * const request: EndpointRequest = { params: { id: "o-1" }, query: {}, headers: {} };
 * ```
 */
export interface EndpointRequest {
  params: Readonly<Record<string, string>>;
  query: Readonly<Record<string, string>>;
  headers: Readonly<Record<string, string>>;
}

/**
 * Options of {@linkcode runEndpoint}.
 *
 * @example
 * ```ts
 * import type { EndpointRunOptions } from "./endpoint.ts";
 * const options: EndpointRunOptions = { budgetMs: 800 };
 * ```
 */
export interface EndpointRunOptions {
  /** The request's time in ms from `origin`, shared by every level of the graph. */
  budgetMs: number;
  /** Aborting it (the client went away) aborts every call; the run rejects with its reason. */
  signal?: AbortSignal;
  /** `performance.now()` when the request arrived; the report's times count from it. */
  origin?: number;
  /** Where each call records its outcome and duration (as `<endpoint>.<branch>`). */
  metrics?: GatewayMetrics;
  /** The global ceiling: a permit per call. */
  limiter?: Limiter;
  /** The limiter's spare capacity for hedges; a hedge also needs a free seat of the request. */
  spare?: SpareCapacity;
  /** Longest an optional call waits for a permit of `limiter`, in ms (`scatterGather`'s). */
  optionalWaitMs?: number;
  /**
   * The request's failure policy, the endpoint's by default: `failFast` stops the graph at the
   * first branch that gives no answer (the others only shape the answer).
   */
  policy?: FailurePolicy;
  /**
   * Extra query parameters of each call, by the endpoint's branch name (the simulated
   * downstream's faults, see `routes/faults.ts`).
   */
  query?: (branch: string) => Record<string, string> | undefined;
}

/**
 * One branch of a run, as the answer's `timings` tell it: the gateway's report plus where it
 * sat in the graph.
 *
 * @example
 * ```ts
 * import type { AggregateBranchReport } from "./endpoint.ts";
 * const report: AggregateBranchReport = {
 *   outcome: "ok", startMs: 9.1, endMs: 15.2, level: 1, needs: ["order"], waitedOn: "order",
 * };
 * ```
 */
export interface AggregateBranchReport extends BranchReport {
  level: number;
  needs?: string[];
  waitedOn?: string;
  /** `forEach` branches: calls made. */
  calls?: number;
}

/**
 * What {@linkcode runEndpoint} gathered.
 *
 * @example
 * ```ts
 * import type { AggregateReport } from "./endpoint.ts";
 * const report: AggregateReport = { data: {}, branches: {}, failedRequired: [], complete: true };
 * ```
 */
export interface AggregateReport {
  /** Every answered branch but internal ones, shaped, under its group. */
  data: Record<string, unknown>;
  branches: Record<string, AggregateBranchReport>;
  /** Required branches that gave no answer, in declaration order. */
  failedRequired: string[];
  /** The branch whose failure stopped the graph: a required one, or under failFast any. */
  stoppedBy?: string;
  /** Whether every branch answered. */
  complete: boolean;
}

/**
 * How long the graph lets a call overrun its deadline before cutting it itself, in ms: the
 * gather's own timers, armed a moment after the graph's and rounded up to whole ms, need that
 * long to fire first.
 */
const CALL_GRACE_MS = 5;

/** A call the gateway reported as not ok, with its report. */
class CallFailure extends Error {
  readonly report: BranchReport;
  constructor(report: BranchReport) {
    super(report.reason ?? report.outcome);
    this.name = "CallFailure";
    this.report = report;
  }
}

/**
 * Runs `endpoint` for one request: each branch as soon as its needs answered, its path filled
 * from the request and its needs' answers, every call through `scatterGather` under the
 * deadline the graph gives it. Resolves with the shaped data and every branch's report; rejects
 * only with the caller's abort reason or the limiter's `AdmissionRejectedError`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { compileEndpoint, runEndpoint } from "./endpoint.ts";
 *
 * const downstream = new Hono()
 *   .get("/orders/:id", (c) => c.json({ customerId: "c-1" }))
 *   .get("/customers/:id", (c) => c.json({ id: c.req.param("id"), name: "Ada" }));
 * const endpoint = compileEndpoint({
 *   name: "orders",
 *   route: "/orders/:id",
 *   branches: {
 *     order: { path: "/orders/{params.id}", required: true, timeoutMs: 300 },
 *     customer: { path: "/customers/{order.customerId}", needs: ["order"], timeoutMs: 300 },
 *   },
 * }, { downstreams: { default: downstream } });
 * const report = await runEndpoint(endpoint, { params: { id: "o-1" }, query: {}, headers: {} }, {
 *   budgetMs: 500,
 * });
 * report.data.customer; // { id: "c-1", name: "Ada" }
 * ```
 */
export async function runEndpoint(
  endpoint: Endpoint,
  request: EndpointRequest,
  {
    budgetMs,
    signal,
    origin = performance.now(),
    metrics,
    limiter,
    spare,
    optionalWaitMs,
    policy = endpoint.policy,
    query,
  }: EndpointRunOptions,
): Promise<AggregateReport> {
  const { graph, limit } = endpoint;
  const calls = new Map<string, BranchReport>();
  let rejected: { error: unknown } | undefined;
  const call = async (node: AggregateNode, context: GraphContext): Promise<unknown> => {
    const path = fillTemplate(node.template, {
      ...request,
      inputs: context.inputs,
      item: context.element,
    });
    const seats = spare === undefined ? context.spare : bothSpare(context.spare, spare);
    let gathered;
    try {
      gathered = await scatterGather(node.registry, path, {
        budgetMs: Math.max(0, context.deadline - performance.now()),
        signal: context.signal,
        limit,
        origin,
        metrics,
        limiter,
        spare: seats,
        optionalWaitMs,
        query: query && (() => query(node.name)),
      });
    } catch (error) {
      // Only the caller's abort or a full admission queue reject a gather: the latter ends the
      // whole request, as it does for the product route.
      if (!context.signal.aborted && rejected === undefined) {
        rejected = { error };
        controller.abort(error);
      }
      throw error;
    }
    const report = gathered.branches[node.metricName];
    if (context.elementIndex === 0) calls.set(node.name, report);
    if (report.outcome === "ok") return gathered.data[node.metricName];
    throw new CallFailure(report);
  };
  // The graph stops on the caller's abort and on a rejected admission alike.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal!.reason);
  if (signal?.aborted) throw signal.reason;
  signal?.addEventListener("abort", onAbort, { once: true });
  let graphReport;
  try {
    graphReport = await runGraph(graph, call, {
      budgetMs,
      limit,
      signal: controller.signal,
      origin,
      reasonOf,
      // Each call's gather keeps the same deadline and reports a timeout as one (in the answer
      // and the metrics alike); the graph's own cut waits a little behind it.
      graceMs: CALL_GRACE_MS,
      failFast: policy === "failFast",
    });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  const report: AggregateReport = { data: {}, branches: {}, failedRequired: [], complete: true };
  graph.nodes.forEach((node) => {
    const result = graphReport.nodes[node.name];
    const branch = branchReport(node, result, calls.get(node.name));
    report.branches[node.name] = branch;
    if (result.outcome === "ok") {
      if (!node.internal) {
        report.data[node.group] = node.forEach === undefined
          ? shapeAnswer(result.value, node.shape)
          : (result.value as unknown[]).map((value) => shapeAnswer(value, node.shape));
      }
      return;
    }
    report.complete = false;
    if (node.required) report.failedRequired.push(node.name);
    // A branch the graph never started; a call the gateway skipped (no permit) it counted itself.
    if (result.outcome === "skipped") {
      metrics?.branchOutcomes.inc({ branch: node.metricName, outcome: "skipped" });
    }
  });
  if (graphReport.stoppedBy !== undefined) report.stoppedBy = graphReport.stoppedBy;
  return report;
}

function branchReport(
  node: AggregateNode,
  result: NodeReport,
  call: BranchReport | undefined,
): AggregateBranchReport {
  const report: AggregateBranchReport = {
    outcome: outcomeOf(result),
    reason: result.reason,
    startMs: result.startMs,
    endMs: result.endMs,
    deadlineMs: result.deadlineMs,
    level: result.level,
  };
  if (node.forEach === undefined && call?.attempts !== undefined) {
    report.hedged = call.hedged;
    report.attempts = call.attempts;
    report.retries = call.retries;
    report.winner = call.winner;
  }
  if (node.needs !== undefined && node.needs.length > 0) report.needs = [...node.needs];
  if (result.waitedOn !== undefined) report.waitedOn = result.waitedOn;
  if (result.calls !== undefined) report.calls = result.calls;
  return report;
}

function outcomeOf({ outcome, error }: NodeReport): BranchResultKind {
  if (outcome === "ok" || outcome === "skipped" || outcome === "aborted") return outcome;
  if (error instanceof CallFailure) return error.report.outcome;
  return error instanceof BranchTimeoutError ? "timeout" : "error";
}

function reasonOf(error: unknown): string {
  if (error instanceof CallFailure) return error.message;
  if (error instanceof BranchTimeoutError) return "timeout";
  // A template or forEach that could not be filled: our own words, naming the placeholder.
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}

/** A hedge needs both a free seat of the request and a spare permit of the ceiling. */
function bothSpare(seats: SpareCapacity, spare: SpareCapacity): SpareCapacity {
  return {
    tryAcquire() {
      const seat = seats.tryAcquire();
      if (seat === undefined) return undefined;
      const permit = spare.tryAcquire();
      if (permit === undefined) {
        seat.release();
        return undefined;
      }
      return {
        release() {
          seat.release();
          permit.release();
        },
      };
    },
  };
}
