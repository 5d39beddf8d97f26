/**
 * The context a branch function receives, shared by `fanOut` and `fanOutStream`: one object per
 * seat, re-armed for each task, with a per-branch signal made only on demand.
 *
 * @module
 */

/**
 * What a branch function receives besides its task. It describes the branch while it runs;
 * once the branch has settled, the executor re-uses the object for that worker's next task,
 * so copy out what must outlive the branch.
 */
export interface BranchContext {
  /** Aborts at the earliest of: caller abort, whole-call deadline, own timeout, failFast. */
  readonly signal: AbortSignal;
  /** Input index of the task. */
  readonly index: number;
  /** When this branch must be done, in `performance.now()` time; `Infinity` when unbounded. */
  readonly deadline: number;
}

/** What a branch needs of its run to make its signal. */
export interface SharedSignal {
  readonly signal: AbortSignal;
  readonly perBranchSignals: boolean;
}

/**
 * The context handed to `fn`. One per worker, re-armed for each task it runs: a fresh object
 * per task cost ~45 ns, about half of the executor's overhead. A worker runs one branch at a
 * time and a worker that is given up on keeps its context, so a context never changes while
 * its branch runs. The per-branch signal is made only on demand.
 *
 * @example
 * ```ts
 * import { Branch } from "./_branch.ts";
 * const run = { signal: new AbortController().signal, perBranchSignals: true };
 * const branch = new Branch(run);
 * branch.begin(0, performance.now(), Infinity);
 * branch.abort(new Error("timed out")); // branch.signal is now aborted
 * ```
 */
export class Branch implements BranchContext {
  index = 0;
  deadline = Infinity;
  startedAt = 0;
  #run: SharedSignal;
  #controller: AbortController | undefined;
  #abortReason: unknown;

  constructor(run: SharedSignal) {
    this.#run = run;
  }

  /** Re-arms this context for the worker's next task. */
  begin(index: number, startedAt: number, deadline: number): void {
    this.index = index;
    this.startedAt = startedAt;
    this.deadline = deadline;
    this.#controller = undefined;
    this.#abortReason = undefined;
  }

  /** The call's shared signal, or this branch's own when it has a per-branch deadline. */
  get signal(): AbortSignal {
    // Without a per-branch timeout every branch shares the call's signal: no allocation.
    if (!this.#run.perBranchSignals) return this.#run.signal;
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      const reason = this.#abortReason ??
        (this.#run.signal.aborted ? this.#run.signal.reason : undefined);
      if (reason !== undefined) this.#controller.abort(reason);
    }
    return this.#controller.signal;
  }

  /** Aborts this branch's own signal (if one was made, or when it is made later). */
  abort(reason: unknown): void {
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}
