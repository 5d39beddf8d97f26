/**
 * A worker pool: Go's "N goroutines reading one channel", with an iterator as the channel.
 *
 * @module
 */

/** Options of {@linkcode runWorkers}. */
export interface RunWorkersOptions {
  /** How many workers pull from the iterator at once (a positive integer). */
  workers: number;
  /** Workers stop pulling when it aborts; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Starts up to `workers` loops (no more than there are tasks) that each pull the next task from
 * one shared iterator and await `work(task, index)` before pulling again, so at most `workers`
 * tasks are ever in flight and the iterator is read lazily. Resolves when the iterator is drained and every worker is idle.
 * The first error (from `work` or from the iterator) stops all pulling and rejects with it once
 * the in-flight tasks have settled; a later error is dropped.
 *
 * Fits a long or endless stream of like tasks with no per-task result to gather; `fanOut` is
 * this loop plus results, deadlines and policies.
 *
 * @example
 * ```ts
 * import { runWorkers } from "./pool.ts";
 * let total = 0;
 * await runWorkers([1, 2, 3], { workers: 2 }, async (n) => {
 *   total += n;
 * });
 * total; // 6
 * ```
 */
export async function runWorkers<T>(
  tasks: Iterable<T>,
  { workers, signal }: RunWorkersOptions,
  work: (task: T, index: number) => unknown,
): Promise<void> {
  if (!Number.isSafeInteger(workers) || workers < 1) {
    throw new RangeError(
      `Cannot run workers as 'workers' must be a positive integer: current value is ${workers}`,
    );
  }
  signal?.throwIfAborted();
  const iterator = tasks[Symbol.iterator]();
  let next = 0;
  let failure: { error: unknown } | undefined;
  let drained = false;
  const worker = async () => {
    while (!drained && failure === undefined && !signal?.aborted) {
      const index = next++;
      try {
        const step = iterator.next();
        // Read inside the try: a `next()` that returns no object throws here.
        if (step.done) {
          drained = true;
          return;
        }
        await work(step.value, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const running: Promise<void>[] = [];
  // A worker reads its first task before its first await, so this stops at the source's end:
  // no more workers than tasks (plus the one that found the end).
  for (let i = 0; i < workers && !drained && failure === undefined; i++) running.push(worker());
  await Promise.all(running);
  // Stopped early (a failure or an abort): let the source run its own clean-up.
  if (!drained) iterator.return?.();
  if (failure !== undefined) throw failure.error;
  signal?.throwIfAborted();
}
