/**
 * The contract between the jobs routes and the platform that runs distributed jobs: where
 * admission is decided, where a job's join lives, and which queue takes its sub-tasks. The
 * Workers adapter provides it over Durable Objects and Queues.
 *
 * @module
 */
import type { JobSpec, SubTaskMessage } from "./job.ts";
import type { AdmissionOutcome, AdmissionRequest } from "./job_admission.ts";
import type { JobView } from "./job_join.ts";

/**
 * What the jobs routes need from the platform.
 *
 * @example
 * ```ts
 * import type { JobBackend } from "./job_backend.ts";
 * declare const backend: JobBackend;
 * const view = await backend.view("job-1", 0); // undefined for an unknown job
 * ```
 */
export interface JobBackend {
  /** Asks the shared admission for room for a job's sub-tasks. */
  admit(request: AdmissionRequest): Promise<AdmissionOutcome>;
  /** Gives an admitted job's room back (idempotent). */
  release(leaseId: string): Promise<void>;
  /**
   * Creates the job's join, which gives back the room of every lease held by the job's id
   * (`leaseId` and its resends') when the job is over.
   */
  start(spec: JobSpec, leaseId: string): Promise<JobView>;
  /** Sends sub-task messages to the queue. */
  send(messages: SubTaskMessage[]): Promise<void>;
  /** The job's view; waits up to `waitMs` for it to be over. `undefined` for an unknown job. */
  view(jobId: string, waitMs: number): Promise<JobView | undefined>;
  /** Cancels the job (it is over, its room given back); `undefined` for an unknown job. */
  cancel(jobId: string): Promise<JobView | undefined>;
  /** The job as accepted; `undefined` for an unknown job. */
  spec(jobId: string): Promise<JobSpec | undefined>;
}
