/**
 * The scatter-gather gateway: a registry of downstream branches, the `Fetcher` they call,
 * `scatterGather()` that fans one request out under a budget, and its metrics and live stats.
 *
 * @example
 * ```ts
 * import { defaultRegistry, scatterGather, urlFetcher } from "./mod.ts";
 * const registry = defaultRegistry(urlFetcher("http://127.0.0.1:8081/"));
 * const report = await scatterGather(registry, "sku-1", { budgetMs: 300 });
 * ```
 *
 * @module
 */

export { type Fetcher, inProcessFetcher, urlFetcher, type UrlFetcherOptions } from "./fetcher.ts";
export {
  type BranchHedging,
  type BranchRegistry,
  type BranchSpec,
  type DefaultBranchName,
  defaultRegistry,
  type DefaultRegistryOptions,
  defineRegistry,
  hedgeOptionalReads,
} from "./branch_registry.ts";
export {
  type AnswerBranch,
  AnswerError,
  type AnswerLimits,
  type AnswerRefusal,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_DEPTH,
  readAnswer,
} from "./read_answer.ts";
export {
  type BranchReport,
  BUDGET_HEADER,
  DownstreamError,
  type GatherOptions,
  type GatherReport,
  OPTIONAL_WAIT_MS,
  scatterGather,
  WORKERS_CONNECTION_LIMIT,
} from "./scatter_gather.ts";
export {
  type BranchResultKind,
  circuitGauges,
  createGatewayMetrics,
  type GatewayMetrics,
  type HedgeMetrics,
  hedgeMetrics,
  limiterGauges,
  RETRY_METRICS,
  type RetryMetrics,
  retryMetrics,
} from "./gateway_metrics.ts";
export {
  type BranchRetry,
  DEFAULT_BRANCH_BREAKER,
  enterCircuit,
  guardBranches,
  guardedCall,
  type GuardedTry,
  type GuardEvents,
} from "./branch_resilience.ts";
export {
  type BranchStats,
  LiveStats,
  type LiveStatsOptions,
  type LiveStatsReport,
} from "./live_stats.ts";
export { type BulkheadOptions, BulkheadRejectedError, Bulkheads } from "./bulkheads.ts";
export {
  ADMISSION_METRICS,
  BULKHEAD_LIMIT_METRIC,
  overloadMetrics,
  type OverloadSources,
} from "./overload_metrics.ts";
export { overloadFromEnv, type OverloadProtection } from "./overload_from_env.ts";
