/**
 * fanfare on Cloudflare Workers: the Durable Objects and the queue handler to export from your
 * Worker's entry and bind in `wrangler.toml`.
 *
 * - `PermitObject` — the global concurrency ceiling that `BlockLeasingLimiter`s lease permits
 *   from (bound as `LIMITER`); its HTTP API for Deno and Bun fleets lives under `LIMITER_PATH`.
 * - `JobJoinObject`, `JobAdmissionObject` and `handleJobQueue` — the distributed jobs: a join per
 *   job, one admission bound on outstanding sub-tasks, and the consumer of the sub-task queue and
 *   its dead-letter queue (`SUBTASK_QUEUE`, `DEAD_LETTER_QUEUE`); `workersJobBackend(env)` is
 *   what the `/jobs` routes of `@fanfare/fanfare/hono` take.
 *
 * @example
 * ```ts ignore
 * // The entry of your Worker.
 * import { handleJobQueue, type JobMessageBatch, type JobsEnv } from "@fanfare/fanfare/workers";
 * export { JobAdmissionObject, JobJoinObject, PermitObject } from "@fanfare/fanfare/workers";
 *
 * export default {
 *   queue: (batch: JobMessageBatch, env: JobsEnv) =>
 *     handleJobQueue(batch, env, { work: (message) => ({ status: "ok", value: message.item }) }),
 * };
 * ```
 *
 * @module
 */

export {
  LIMITER_PATH,
  PermitObject,
  type PermitObjectEnv,
  type PermitObjectStats,
} from "./permit_object.ts";
export {
  DEAD_LETTER_QUEUE,
  handleJobQueue,
  JobAdmissionObject,
  JobJoinObject,
  type JobMessageBatch,
  type JobQueueOptions,
  type JobsEnv,
  SUBTASK_QUEUE,
  workersJobBackend,
} from "./workers_jobs.ts";
