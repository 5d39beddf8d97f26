/**
 * Concurrency limits: the `Limiter` contract and its homes (`LocalLimiter` in process; the pure
 * `PermitLedger` behind a permit service, and leased in blocks, for a fleet); and the
 * adaptive limit learned from latency (`GradientLimit`, `AdmissionQueue`, `AdaptiveLimiter`)
 * that sheds load before it queues.
 *
 * @example
 * ```ts
 * import { LocalLimiter } from "./mod.ts";
 * const limiter = new LocalLimiter({ capacity: 4 });
 * {
 *   await using _permit = await limiter.acquire(1, { deadline: performance.now() + 100 });
 *   // at most four of these blocks run at once in this process
 * }
 * ```
 *
 * @module
 */

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
  AUTHORIZATION_HEADER,
  httpPermitService,
  type HttpPermitServiceOptions,
  permitApiSchemas,
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
export {
  GradientLimit,
  type GradientLimitOptions,
  type GradientLimitState,
} from "./gradient_limit.ts";
export {
  AdmissionQueue,
  type AdmissionQueueOptions,
  type AdmissionStats,
  type LimitAlgorithm,
  type OfferOutcome,
  type QueueChanges,
  SHED_REASONS,
  type ShedReason,
} from "./admission_queue.ts";
export {
  AdaptiveLimiter,
  type AdaptiveLimiterOptions,
  type AdaptiveLimiterStats,
  type AdaptivePermit,
  type Admission,
  type Decided,
  type Refusal,
} from "./adaptive_limiter.ts";
