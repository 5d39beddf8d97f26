/**
 * The job model of the distributed fan-out: a job is a list of items, each item becomes one
 * sub-task message on a queue, and every message carries the job's id (the correlation key that
 * picks the join) and its own sub-task id (the unit the join counts once). The work itself is
 * the consumer's (the simulation in `sim/job_work.ts` is the demo's).
 *
 * @module
 */
/**
 * A job as the producer accepted it.
 *
 * @example
 * ```ts
 * import type { JobSpec } from "./job.ts";
 * const spec: JobSpec = {
 *   jobId: "job-1", items: ["a", "b"], deadlineAt: 1_700_000_030_000, seed: 7, errorRate: 0,
 *   crash: [], unsent: [],
 * };
 * ```
 */
export interface JobSpec {
  /** The correlation key: names the join and prefixes every sub-task id. */
  jobId: string;
  /** One sub-task per item, in order; sub-task `i` works on `items[i]`. */
  items: string[];
  /** When the join finalises with what it has (ms since the epoch). */
  deadlineAt: number;
  /** Seed of the simulated work. */
  seed: number;
  /** Probability in [0, 1] that a sub-task's work fails (reported, not retried). */
  errorRate: number;
  /** Testing aid: indexes of sub-tasks whose consumer throws on every attempt. */
  crash: number[];
  /** Testing aid: indexes of sub-tasks the producer does not send (a lost message). */
  unsent: number[];
}

/**
 * One queue message: one sub-task of one job.
 *
 * @example
 * ```ts
 * import type { SubTaskMessage } from "./job.ts";
 * const message: SubTaskMessage = {
 *   jobId: "job-1", subTaskId: "job-1:0", index: 0, item: "a", seed: 7, errorRate: 0, crash: false,
 * };
 * ```
 */
export interface SubTaskMessage {
  /** The correlation key. */
  jobId: string;
  /** Unique within the job and stable across redeliveries: `<jobId>:<index>`. */
  subTaskId: string;
  /** Position of the sub-task in the job. */
  index: number;
  /** What to work on. */
  item: string;
  /** Seed of the simulated work. */
  seed: number;
  /** Probability that the simulated work fails. */
  errorRate: number;
  /** Testing aid: the consumer throws instead of working. */
  crash: boolean;
}

/**
 * The id of sub-task `index` of job `jobId`.
 *
 * @example
 * ```ts
 * import { subTaskId } from "./job.ts";
 * subTaskId("job-1", 3); // "job-1:3"
 * ```
 */
export function subTaskId(jobId: string, index: number): string {
  return `${jobId}:${index}`;
}

/**
 * The index of `id` within job `jobId` holding `total` sub-tasks, or `undefined` when `id` is
 * not one of its sub-tasks.
 *
 * @example
 * ```ts
 * import { subTaskIndex } from "./job.ts";
 * subTaskIndex("job-1", 4, "job-1:3"); // 3
 * subTaskIndex("job-1", 4, "job-2:3"); // undefined
 * ```
 */
export function subTaskIndex(jobId: string, total: number, id: string): number | undefined {
  const prefix = `${jobId}:`;
  if (!id.startsWith(prefix)) return undefined;
  const digits = id.slice(prefix.length);
  if (!/^(0|[1-9][0-9]*)$/.test(digits)) return undefined;
  const index = Number(digits);
  return index < total ? index : undefined;
}

/**
 * Splits a job into its sub-task messages, in index order. With `only`, just those indexes
 * (to send some sub-tasks again); otherwise every sub-task the spec does not hold back as
 * `unsent`.
 *
 * @example
 * ```ts
 * import { splitJob } from "./job.ts";
 * const messages = splitJob({
 *   jobId: "job-1", items: ["a", "b", "c"], deadlineAt: 0, seed: 1, errorRate: 0,
 *   crash: [1], unsent: [2],
 * });
 * messages.map((m) => [m.subTaskId, m.crash]); // [["job-1:0", false], ["job-1:1", true]]
 * ```
 */
export function splitJob(spec: JobSpec, only?: readonly number[]): SubTaskMessage[] {
  const crash = new Set(spec.crash);
  const unsent = new Set(spec.unsent);
  const indexes = only ?? [...spec.items.keys()].filter((index) => !unsent.has(index));
  return indexes.map((index) => {
    if (!Number.isSafeInteger(index) || index < 0 || index >= spec.items.length) {
      throw new RangeError(
        `Cannot split job '${spec.jobId}' as a sub-task index must be from 0 to ${
          spec.items.length - 1
        }: current value is ${index}`,
      );
    }
    return {
      jobId: spec.jobId,
      subTaskId: subTaskId(spec.jobId, index),
      index,
      item: spec.items[index],
      seed: spec.seed,
      errorRate: spec.errorRate,
      crash: crash.has(index),
    };
  });
}

/**
 * What a sub-task's work came to: a value, or a failure the join records as such.
 *
 * @example
 * ```ts
 * import type { WorkOutcome } from "./job.ts";
 * const outcome: WorkOutcome = { status: "ok", value: { item: "a", score: 0.42 } };
 * ```
 */
export type WorkOutcome =
  | { status: "ok"; value: { item: string; score: number } }
  | { status: "failed"; reason: string };
