/**
 * Distributed jobs: the job model, the `JobJoin` that counts sub-tasks once, admission over
 * the permit ledger, and the queue consumers. The platform behind them is a `JobBackend`.
 *
 * @example
 * ```ts
 * import { JobJoin } from "./mod.ts";
 * const join = JobJoin.start({ jobId: "job-1", total: 2, deadlineAt: Date.now() + 30_000 });
 * ```
 *
 * @module
 */

export { type JobSpec, splitJob, subTaskId, type SubTaskMessage, type WorkOutcome } from "./job.ts";
export {
  type FinishedBy,
  JobJoin,
  type JobStatus,
  type JobView,
  type JoinMeta,
  type JoinReport,
  type RecordedOutcome,
  type RecordResult,
  type SubTaskOutcome,
} from "./job_join.ts";
export { type AdmissionOutcome, type AdmissionRequest, JobAdmission } from "./job_admission.ts";
export {
  consumeDeadLetters,
  consumeSubTasks,
  type JoinClient,
  type QueuedMessage,
} from "./job_consumer.ts";
export type { JobBackend } from "./job_backend.ts";
