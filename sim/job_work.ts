/**
 * The simulated work of a demo job's sub-tasks: seeded, so a sub-task's outcome is the same on
 * every delivery and every runtime. Not library code: the Workers demo passes it to
 * `consumeSubTasks`.
 *
 * @module
 */
import type { SubTaskMessage, WorkOutcome } from "../src/jobs/mod.ts";
import { createLatencyModel } from "./latency_model.ts";

/**
 * The error a sub-task marked `crash` throws, so tests can make a consumer fail on chosen
 * sub-tasks.
 *
 * @example
 * ```ts
 * import { SimulatedCrash } from "./job_work.ts";
 * new SimulatedCrash("job-1:2").message; // "Simulated crash while working on sub-task job-1:2"
 * ```
 */
export class SimulatedCrash extends Error {
  /** A crash while working on sub-task `id`. */
  constructor(id: string) {
    super(`Simulated crash while working on sub-task ${id}`);
    this.name = "SimulatedCrash";
  }
}

/**
 * The simulated work of one sub-task: a seeded, deterministic outcome (same message, same
 * outcome), a failure with probability `errorRate`, and a thrown {@linkcode SimulatedCrash}
 * when the message is marked `crash`.
 *
 * @example
 * ```ts
 * import { simulateWork } from "./job_work.ts";
 * const outcome = simulateWork({
 *   jobId: "job-1", subTaskId: "job-1:0", index: 0, item: "a", seed: 7, errorRate: 0, crash: false,
 * });
 * outcome.status; // "ok"
 * ```
 */
export function simulateWork(message: SubTaskMessage): WorkOutcome {
  if (message.crash) throw new SimulatedCrash(message.subTaskId);
  const draw = createLatencyModel({
    seed: message.seed,
    errorRate: message.errorRate,
    tailEvery: 0,
  })(
    { branch: "sub-task", key: message.subTaskId },
  );
  if (draw.failure !== undefined) return { status: "failed", reason: "simulated failure" };
  // The drawn latency, scaled to [0, 1), stands in for a computed score.
  return {
    status: "ok",
    value: { item: message.item, score: draw.latencyMs / (1 + draw.latencyMs) },
  };
}
