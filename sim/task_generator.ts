/**
 * A seeded, lazy, resumable stream of simulated tasks with the straggler and failure pattern of
 * the simulated downstream (median 5 ms, p99 200 ms, one in 1,000 at 2 s, an error rate, "every
 * Nth fails"). Each task's draw comes from {@linkcode createLatencyModel} keyed by its index, so
 * task `i` is the same whatever the offset the stream starts at, and on every runtime.
 *
 * @module
 */

import { createLatencyModel, type Draw, type LatencyModel } from "./latency_model.ts";

/**
 * Knobs of {@linkcode generateTasks}.
 *
 * @example
 * ```ts
 * import type { TaskGeneratorOptions } from "./task_generator.ts";
 * const options: TaskGeneratorOptions = { seed: 7, count: 1_000_000, errorRate: 0.01 };
 * ```
 */
export interface TaskGeneratorOptions {
  /** Total number of tasks, indexes `0 … count - 1` (a non-negative integer). */
  count: number;
  /** First index to generate, to resume (default 0). */
  offset?: number;
  /** Same seed, same pattern (default 0). */
  seed?: number;
  /** Probability in [0, 1] that a task fails (default 0). */
  errorRate?: number;
  /** Task `i` fails when `(i + 1) % failEvery === 0`; 0 turns it off (default 0). */
  failEvery?: number;
  /** Median latency in ms (default 5). */
  medianMs?: number;
  /** 99th-percentile latency in ms before the injected tail (default 200). */
  p99Ms?: number;
  /** One task in `tailEvery` takes `tailMs`; 0 turns the tail off (default 1000). */
  tailEvery?: number;
  /** Latency of a tail task in ms (default 2000). */
  tailMs?: number;
}

/**
 * One simulated task. Its draw (latency, tail, error-rate failure) is computed on first use and
 * costs about 1.4 µs, so a run that never sleeps and has no error rate never pays for it.
 *
 * @example
 * ```ts
 * import { generateTasks } from "./task_generator.ts";
 * const [task] = generateTasks({ count: 1, seed: 1 });
 * task.index; // 0
 * task.latencyMs; // the same number on every run and runtime
 * ```
 */
export class GeneratedTask {
  /** Position in the work-set. */
  readonly index: number;
  #model: LatencyModel;
  #errorRate: number;
  #failEvery: number;
  #draw: Draw | undefined;

  /** Task `index` of a work-set; made by {@linkcode generateTasks}. */
  constructor(index: number, model: LatencyModel, errorRate: number, failEvery: number) {
    this.index = index;
    this.#model = model;
    this.#errorRate = errorRate;
    this.#failEvery = failEvery;
  }

  /** How long the task takes in ms. */
  get latencyMs(): number {
    return this.#drawn().latencyMs;
  }

  /** Whether this is one of the injected stragglers. */
  get tail(): boolean {
    return this.#drawn().tail;
  }

  /** Whether the task fails: every Nth, or by the error rate. */
  get fails(): boolean {
    if (this.#failEvery > 0 && (this.index + 1) % this.#failEvery === 0) return true;
    return this.#errorRate > 0 && this.#drawn().failure !== undefined;
  }

  #drawn(): Draw {
    return this.#draw ??= this.#model({ branch: "task", key: String(this.index) });
  }
}

/**
 * Yields tasks `offset … count - 1` one at a time; nothing is materialised, so a run of fifty
 * million tasks holds only the ones in flight.
 *
 * @example Resume a run at task 1,000
 * ```ts
 * import { generateTasks } from "./task_generator.ts";
 * for (const task of generateTasks({ seed: 42, count: 1_000_000, offset: 1_000, failEvery: 100 })) {
 *   if (task.fails) console.log(`task ${task.index} will fail`);
 * }
 * ```
 */
export function generateTasks(options: TaskGeneratorOptions): Generator<GeneratedTask, void> {
  const { count, offset = 0, seed = 0, errorRate = 0, failEvery = 0 } = options;
  requireCount("count", count);
  requireCount("offset", offset);
  requireCount("failEvery", failEvery);
  const model = createLatencyModel({
    seed,
    errorRate,
    medianMs: options.medianMs,
    p99Ms: options.p99Ms,
    tailEvery: options.tailEvery,
    tailMs: options.tailMs,
  });
  return tasks(offset, count, (index) => new GeneratedTask(index, model, errorRate, failEvery));
}

/** Kept apart so that bad options throw at the call, not at the first `next()`. */
function* tasks(
  from: number,
  to: number,
  make: (index: number) => GeneratedTask,
): Generator<GeneratedTask, void> {
  for (let index = from; index < to; index++) yield make(index);
}

function requireCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot generate tasks as '${name}' must be a non-negative integer: current value is ${value}`,
    );
  }
}
