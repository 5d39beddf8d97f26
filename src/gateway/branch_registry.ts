/**
 * Which downstream calls make up a product page, and how much each one matters.
 *
 * @module
 */
import { AdaptiveDelay, HedgeBudget, type HedgeDelay } from "../hedging/mod.ts";
import type { CircuitBreaker } from "../resilience/mod.ts";
import type { BranchRetry } from "./branch_resilience.ts";
import type { Fetcher } from "./fetcher.ts";
import type { AnswerLimits } from "./read_answer.ts";

/**
 * How a branch is hedged: after `delay` ms (fixed, or an `AdaptiveDelay` kept for this
 * downstream) a second attempt is sent, if `budget` has a token and the limiter a spare permit.
 * Only an idempotent branch may have one.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay } from "../hedging/adaptive_delay.ts";
 * import type { BranchHedging } from "./branch_registry.ts";
 * import { HedgeBudget } from "../hedging/hedge_budget.ts";
 *
 * const hedging: BranchHedging = {
 *   delay: new AdaptiveDelay({ quantile: 0.95 }),
 *   budget: new HedgeBudget({ ratio: 0.05 }),
 * };
 * ```
 */
export interface BranchHedging {
  /** Wait before a hedge, in ms, or the downstream's own adaptive delay. */
  readonly delay: number | HedgeDelay;
  /** Most attempts, the primary included; 2 by default. */
  readonly maxAttempts?: number;
  /** Hedge at once when an attempt fails before the delay; `false` by default. */
  readonly hedgeOnFailure?: boolean;
  /** The downstream's hedge budget; unlimited when absent. */
  readonly budget?: HedgeBudget;
}

/**
 * One branch of the scatter-gather: where to send it, whether the page can do without it, how
 * long it may take, and what of its answer the gateway accepts (`maxBodyBytes`, `maxDepth`,
 * `accept`: see `read_answer.ts`; small by default).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { BranchSpec } from "./branch_registry.ts";
 *
 * const price: BranchSpec = {
 *   name: "price",
 *   fetcher: new Hono().get("/price/:id", (c) => c.json({ amountCents: 999 })),
 *   path: (id) => `/price/${encodeURIComponent(id)}`,
 *   required: true,
 *   idempotent: true,
 *   timeoutMs: 300,
 * };
 * ```
 */
export interface BranchSpec extends AnswerLimits {
  /** Key of the branch's data in the joined product, e.g. `"price"`. */
  readonly name: string;
  /** Who answers the branch. */
  readonly fetcher: Fetcher;
  /** Path and query, relative to the fetcher, for product `id` (already validated). */
  path(id: string): string;
  /** Whether the gateway must answer 502 when this branch fails. */
  readonly required: boolean;
  /** Whether the call may be repeated or hedged safely (GETs are). */
  readonly idempotent: boolean;
  /** The branch's own time limit in ms; the request's remaining budget caps it further. */
  readonly timeoutMs: number;
  /** Hedging of this branch; none when absent. Needs `idempotent`. */
  readonly hedge?: BranchHedging;
  /**
   * The downstream's circuit breaker: while it is open the branch fails at once as
   * `circuit-open`, with no permit taken and no request sent. None when absent.
   */
  readonly breaker?: CircuitBreaker;
  /** Retries of a fast failure; none when absent. Needs `idempotent`. */
  readonly retry?: BranchRetry;
}

/**
 * The branches of one gateway, in the order they are started. Names are unique.
 *
 * @example
 * ```ts
 * import { type BranchRegistry, defaultRegistry } from "./branch_registry.ts";
 * import { urlFetcher } from "./fetcher.ts";
 *
 * const registry: BranchRegistry = defaultRegistry(urlFetcher("http://127.0.0.1:8788/"));
 * ```
 */
export type BranchRegistry = readonly BranchSpec[];

/**
 * Checks a registry (unique names, positive finite timeouts, a fetcher and a path builder on
 * each branch, hedging only on idempotent branches) and returns it frozen.
 *
 * @example
 * ```ts
 * import { defineRegistry } from "./branch_registry.ts";
 *
 * const registry = defineRegistry([{
 *   name: "price",
 *   fetcher: { fetch: () => Promise.resolve(Response.json({ amountCents: 999 })) },
 *   path: (id) => `/price/${id}`,
 *   required: true,
 *   idempotent: true,
 *   timeoutMs: 300,
 * }]);
 * ```
 */
export function defineRegistry(branches: readonly BranchSpec[]): BranchRegistry {
  if (!Array.isArray(branches) || branches.length === 0) {
    throw new RangeError(
      `Cannot define a branch registry as 'branches' must be a non-empty array: current value is ${
        Array.isArray(branches) ? "an empty array" : typeof branches
      }`,
    );
  }
  const names = new Set<string>();
  for (const branch of branches) {
    if (typeof branch.name !== "string" || branch.name === "" || names.has(branch.name)) {
      throw new RangeError(
        `Cannot define a branch registry as each 'name' must be a unique non-empty string: current value is ${
          JSON.stringify(branch.name)
        }`,
      );
    }
    names.add(branch.name);
    if (typeof branch.fetcher?.fetch !== "function" || typeof branch.path !== "function") {
      throw new TypeError(
        `Cannot define a branch registry as branch '${branch.name}' needs a 'fetcher' with a fetch method and a 'path' function`,
      );
    }
    if (!(branch.timeoutMs > 0) || !Number.isFinite(branch.timeoutMs)) {
      throw new RangeError(
        `Cannot define a branch registry as 'timeoutMs' of branch '${branch.name}' must be a positive finite number: current value is ${branch.timeoutMs}`,
      );
    }
    for (const field of ["maxBodyBytes", "maxDepth"] as const) {
      const value = branch[field];
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
        throw new RangeError(
          `Cannot define a branch registry as '${field}' of branch '${branch.name}' must be a positive integer: current value is ${value}`,
        );
      }
    }
    for (const repeats of ["hedge", "retry"] as const) {
      if (branch[repeats] !== undefined && branch.idempotent !== true) {
        throw new RangeError(
          `Cannot define a branch registry as branch '${branch.name}' has '${repeats}' but a ${repeats} repeats the call, which needs 'idempotent: true': current value is ${branch.idempotent}`,
        );
      }
    }
  }
  return Object.freeze([...branches]);
}

/** Names of the {@linkcode defaultRegistry} branches. */
export type DefaultBranchName = "price" | "inventory" | "reviews" | "recommendations" | "shipping";

/** Options of {@linkcode defaultRegistry}. */
export interface DefaultRegistryOptions {
  /** Extra query parameters for a branch's calls, e.g. the simulated downstream's `latencyMs`. */
  query?: (branch: DefaultBranchName) => Record<string, string> | undefined;
  /** Replaces some branches' own time limits in ms. */
  timeoutMs?: Partial<Record<DefaultBranchName, number>>;
  /** Hedging per branch; none by default (see {@linkcode hedgeOptionalReads}). */
  hedge?: Partial<Record<DefaultBranchName, BranchHedging>>;
  /** A breaker and retries per branch; none by default (see `guardBranches`). */
  resilience?: Partial<
    Record<DefaultBranchName, { breaker?: CircuitBreaker; retry?: BranchRetry }>
  >;
}

/**
 * Hedging for the default registry's optional reads (`reviews`, `recommendations`, `shipping`):
 * each with its own adaptive p95 delay and a 5 % hedge budget, as `bench:hedge` measures.
 *
 * Why these: they are idempotent GETs, and as optional branches they are the ones a tail turns
 * into a degraded page (their timeouts are 200–250 ms, inside the simulated downstream's tail),
 * so a hedge there buys whole answers, not just speed. The required `price` and `inventory`
 * are left alone by default: they are the calls whose downstreams carry every request's load,
 * and a gateway that does want them hedged says so per branch.
 *
 * @example
 * ```ts
 * import { defaultRegistry, hedgeOptionalReads } from "./branch_registry.ts";
 * import { urlFetcher } from "./fetcher.ts";
 *
 * const registry = defaultRegistry(urlFetcher("http://127.0.0.1:8788/"), {
 *   hedge: hedgeOptionalReads(),
 * });
 * ```
 */
export function hedgeOptionalReads(
  { quantile = 0.95, ratio = 0.05 }: { quantile?: number; ratio?: number } = {},
): Partial<Record<DefaultBranchName, BranchHedging>> {
  const optional: DefaultBranchName[] = ["reviews", "recommendations", "shipping"];
  return Object.fromEntries(optional.map((name) => [name, {
    delay: new AdaptiveDelay({ quantile }),
    budget: new HedgeBudget({ ratio }),
  }]));
}

/**
 * The product page's five branches, all on one fetcher, at `/<branch>/<id>`:
 *
 * | branch            | required | timeout |
 * |-------------------|----------|---------|
 * | `price`           | yes      | 300 ms  |
 * | `inventory`       | yes      | 300 ms  |
 * | `reviews`         | no       | 200 ms  |
 * | `recommendations` | no       | 250 ms  |
 * | `shipping`        | no       | 200 ms  |
 *
 * `inventory` is required: a page that cannot say whether the product can be bought would
 * offer an "add to cart" it cannot honour, which is worse than an honest 502. The others only
 * decorate the page, so it degrades without them. Timeouts sit above the simulated downstream's
 * p99 (200 ms by default) so that only its injected tail is cut.
 *
 * @example
 * ```ts
 * import { defaultRegistry } from "./branch_registry.ts";
 * import { urlFetcher } from "./fetcher.ts";
 *
 * const registry = defaultRegistry(urlFetcher("http://127.0.0.1:8788/"), {
 *   query: (branch) => branch === "reviews" ? { fail: "1" } : undefined,
 * });
 * ```
 */
export function defaultRegistry(
  fetcher: Fetcher,
  { query = () => undefined, timeoutMs = {}, hedge = {}, resilience = {} }: DefaultRegistryOptions =
    {},
): BranchRegistry {
  const table: [DefaultBranchName, boolean, number][] = [
    ["price", true, 300],
    ["inventory", true, 300],
    ["reviews", false, 200],
    ["recommendations", false, 250],
    ["shipping", false, 200],
  ];
  return defineRegistry(table.map(([name, required, ownTimeoutMs]) => ({
    name,
    fetcher,
    path: function branchPath(id: string): string {
      const path = `/${name}/${encodeURIComponent(id)}`;
      const extra = query(name);
      if (extra === undefined) return path;
      const params = new URLSearchParams(extra);
      return params.size === 0 ? path : `${path}?${params}`;
    },
    required,
    idempotent: true,
    timeoutMs: timeoutMs[name] ?? ownTimeoutMs,
    hedge: hedge[name],
    breaker: resilience[name]?.breaker,
    retry: resilience[name]?.retry,
  })));
}
