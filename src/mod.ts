/**
 * fanfare: bounded scatter-gather for edge runtimes.
 *
 * @example
 * ```ts
 * import { fanOut } from "./mod.ts";
 * const { values } = await fanOut([1, 2, 3], async (n) => n * 2, { limit: 2 });
 * ```
 *
 * @module
 */

export {
  type BranchContext,
  type BranchOutcome,
  DEFAULT_LIMIT,
  type FailurePolicy,
  fanOut,
  type FanOutHooks,
  type FanOutOptions,
  type FanOutResult,
  type UnfinishedBranch,
} from "./fan_out.ts";
export {
  type FanOutStream,
  fanOutStream,
  type FanOutStreamOptions,
  type FanOutStreamStats,
  type StreamResult,
  type TaskSource,
} from "./fan_out_stream.ts";
export { GeneratedTask, generateTasks, type TaskGeneratorOptions } from "./task_generator.ts";
export {
  BranchError,
  BranchTimeoutError,
  DeadlineError,
  isBranchError,
  isDeadlineError,
} from "./errors.ts";
export { type AcquireOptions, Semaphore } from "./semaphore.ts";
export { Group, type GroupOptions } from "./group.ts";
export { runWorkers, type RunWorkersOptions } from "./pool.ts";
export { type Fetcher, urlFetcher, type UrlFetcherOptions } from "./fetcher.ts";
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
  type BranchReport,
  BUDGET_HEADER,
  DownstreamError,
  type GatherOptions,
  type GatherReport,
  scatterGather,
  WORKERS_CONNECTION_LIMIT,
} from "./scatter_gather.ts";
export {
  Counter,
  DEFAULT_BUCKETS,
  Gauge,
  Histogram,
  type Labels,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
} from "./metrics.ts";
export {
  type BranchResultKind,
  createGatewayMetrics,
  type GatewayMetrics,
  type HedgeMetrics,
  hedgeMetrics,
} from "./gateway_metrics.ts";
export {
  hedge,
  type HedgeAttempt,
  type HedgeDeclined,
  type HedgeOptions,
  type HedgeResult,
  type SpareCapacity,
  spareOf,
} from "./hedge.ts";
export { HedgeBudget, type HedgeBudgetOptions } from "./hedge_budget.ts";
export { AdaptiveDelay, type AdaptiveDelayOptions, type HedgeDelay } from "./adaptive_delay.ts";
export {
  type JobSpec,
  simulateWork,
  splitJob,
  subTaskId,
  type SubTaskMessage,
  type WorkOutcome,
} from "./job.ts";
export {
  type FinishedBy,
  JobJoin,
  type JobStatus,
  type JobView,
  type JoinReport,
  type SubTaskOutcome,
} from "./job_join.ts";
export { type AdmissionOutcome, JobAdmission } from "./job_admission.ts";
export {
  consumeDeadLetters,
  consumeSubTasks,
  type JoinClient,
  type QueuedMessage,
} from "./job_consumer.ts";
export type { JobBackend } from "./job_backend.ts";
export {
  AdmissionRejectedError,
  isAdmissionRejectedError,
  isPermitDeadlineError,
  type Limiter,
  type LimiterAcquireOptions,
  type Permit,
  PermitDeadlineError,
  permitOf,
} from "./limiter.ts";
export {
  type AcquireOutcome,
  type Lease,
  type LeaseRequest,
  type LedgerCounters,
  type LedgerEvent,
  type LedgerOptions,
  type LedgerState,
  type LedgerStats,
  PermitLedger,
} from "./permit_ledger.ts";
export { LedgerHost, type LedgerHostOptions } from "./ledger_host.ts";
export {
  type AcquireReply,
  httpPermitService,
  type HttpPermitServiceOptions,
  type PermitRequest,
  type PermitService,
} from "./permit_service.ts";
export { LocalLimiter, type LocalLimiterOptions } from "./local_limiter.ts";
export { ServiceLimiter, type ServiceLimiterOptions } from "./service_limiter.ts";
export { BlockPool, type BlockPoolOptions, type BlockPoolStats } from "./block_pool.ts";
export {
  BlockLeasingLimiter,
  type BlockLeasingOptions,
  type BlockLeasingStats,
} from "./block_leasing_limiter.ts";
export { limiterFromEnv } from "./limiter_from_env.ts";
