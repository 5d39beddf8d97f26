/**
 * The gateway benchmark's scenarios, shared by the benchmark (in-process runs) and by the
 * processes it starts for the loopback runs, so that both serve exactly the same thing.
 *
 * @module
 */
import {
  type BranchRegistry,
  type DefaultBranchName,
  defaultRegistry,
  type Fetcher,
} from "../src/gateway/mod.ts";
import type { FailurePolicy } from "../src/executor/mod.ts";
import type { DownstreamOptions } from "../sim/downstream.ts";

/** Seed of the simulated downstream's latency model: every run draws the same latencies. */
export const SEED = 20240601;

/**
 * The simulated downstream of every scenario: the model's defaults (median 5 ms, p99 200 ms,
 * lognormal) without the random 1-in-1,000 injected tail, which the straggler scenario forces
 * on one branch instead.
 */
export const DOWNSTREAM_OPTIONS: Readonly<DownstreamOptions> = Object.freeze({
  seed: SEED,
  tailEvery: 0,
});

/** The five branches of {@linkcode defaultRegistry}, in registry order. */
export const BRANCHES: readonly DefaultBranchName[] = [
  "price",
  "inventory",
  "reviews",
  "recommendations",
  "shipping",
];

/** The default registry's own per-branch timeouts, in ms (see `src/branch_registry.ts`). */
export const DEFAULT_TIMEOUTS_MS: Readonly<Record<DefaultBranchName, number>> = Object.freeze({
  price: 300,
  inventory: 300,
  reviews: 200,
  recommendations: 250,
  shipping: 200,
});

/** Per-branch timeout of the "wide" registries: never shorter than the request's budget. */
export const WIDE_TIMEOUT_MS = 10_000;

/** The branch that sleeps the model's `tailMs` (2 s) on every call in the straggler scenario. */
export const STRAGGLER: DefaultBranchName = "reviews";

/** Which scenario, by id. */
export type ScenarioId = "healthy" | "healthy-default-timeouts" | "straggler";

/** One scenario: the gateway's registry and the query every request sends. */
export interface Scenario {
  id: ScenarioId;
  label: string;
  policy: FailurePolicy;
  budgetMs: number;
  /** Per-branch timeouts the registry ends up with. */
  timeoutsMs: Record<DefaultBranchName, number>;
  /** The registry over `fetcher` (the downstream, in-process or over HTTP). */
  registry(fetcher: Fetcher): BranchRegistry;
}

const wide = Object.fromEntries(BRANCHES.map((name) => [name, WIDE_TIMEOUT_MS])) as Record<
  DefaultBranchName,
  number
>;

/** The scenarios, in run order. */
export const SCENARIOS: readonly Scenario[] = [
  {
    id: "healthy",
    label: "F=5 healthy, budget 10000 ms, per-branch timeouts 10000 ms",
    policy: "bestEffort",
    budgetMs: 10_000,
    timeoutsMs: wide,
    registry: (fetcher) => defaultRegistry(fetcher, { timeoutMs: wide }),
  },
  {
    id: "healthy-default-timeouts",
    label: "F=5 healthy, budget 10000 ms, default registry timeouts (200-300 ms)",
    policy: "bestEffort",
    budgetMs: 10_000,
    timeoutsMs: { ...DEFAULT_TIMEOUTS_MS },
    registry: (fetcher) => defaultRegistry(fetcher),
  },
  {
    id: "straggler",
    label: `${STRAGGLER} sleeps 2000 ms, bestEffort, budget 300 ms, per-branch timeouts 10000 ms`,
    policy: "bestEffort",
    budgetMs: 300,
    timeoutsMs: wide,
    registry: (fetcher) =>
      defaultRegistry(fetcher, {
        timeoutMs: wide,
        query: (branch) => branch === STRAGGLER ? { tail: "1" } : undefined,
      }),
  },
];

/** The scenario called `id`; a RangeError names the known ones otherwise. */
export function scenarioById(id: string): Scenario {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (scenario === undefined) {
    throw new RangeError(
      `Cannot pick a gateway scenario as 'id' must be one of ${
        SCENARIOS.map((s) => s.id).join(", ")
      }: current value is ${JSON.stringify(id)}`,
    );
  }
  return scenario;
}
