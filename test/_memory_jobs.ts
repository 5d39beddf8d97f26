/**
 * A `JobBackend` held in memory: the real `JobAdmission` and `JobJoin`, a list for the queue. For
 * tests of the jobs routes that need no Workers runtime.
 *
 * @example
 * ```ts
 * import { memoryJobBackend } from "./_memory_jobs.ts";
 * const { backend, sent } = memoryJobBackend({ bound: 100 });
 * ```
 *
 * @module
 */
import {
  JobAdmission,
  type JobBackend,
  JobJoin,
  type JobSpec,
  type SubTaskMessage,
} from "../src/jobs/mod.ts";

/** The backend, the messages sent so far, and the admission to inspect. */
export function memoryJobBackend({ bound }: { bound: number }) {
  const admission = new JobAdmission({ bound });
  const jobs = new Map<string, { join: JobJoin; spec: JobSpec; leaseId: string }>();
  const sent: SubTaskMessage[] = [];
  // As the join object does: a job that is over gives back every lease its id holds.
  const finish = (jobId: string) => admission.releaseHolder(jobId, Date.now());
  const backend: JobBackend = {
    admit: (request) => Promise.resolve(admission.admit(request, Date.now())),
    release: (leaseId) => {
      admission.release(leaseId, Date.now());
      return Promise.resolve();
    },
    start(spec, leaseId) {
      const join = JobJoin.start({
        jobId: spec.jobId,
        total: spec.items.length,
        deadlineAt: spec.deadlineAt,
      });
      jobs.set(spec.jobId, { join, spec, leaseId });
      return Promise.resolve(join.view());
    },
    send(messages) {
      sent.push(...messages);
      return Promise.resolve();
    },
    view: (jobId) => Promise.resolve(jobs.get(jobId)?.join.view()),
    cancel(jobId) {
      const job = jobs.get(jobId);
      if (job === undefined) return Promise.resolve(undefined);
      if (job.join.cancel(Date.now())) finish(jobId);
      return Promise.resolve(job.join.view());
    },
    spec: (jobId) => Promise.resolve(jobs.get(jobId)?.spec),
  };
  return { backend, sent, admission };
}
