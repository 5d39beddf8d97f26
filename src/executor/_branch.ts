/**
 * The context a branch function receives, shared by `fanOut` and `fanOutStream`: one object per
 * seat, re-armed for each task, with the branch's signal made only on demand.
 *
 * @module
 */

/**
 * What a branch function receives besides its task. It describes the branch while it runs;
 * once the branch has settled, the executor re-uses the object for that worker's next task,
 * so copy out what must outlive the branch.
 */
export interface BranchContext {
  /**
   * Aborts at the earliest of: caller abort, whole-call deadline, own timeout, failFast — and
   * only while the branch runs: once it has settled nothing aborts it, so a `Response` it
   * returned can still be read.
   */
  readonly signal: AbortSignal;
  /**
   * Whether the executor has given up on this branch (its `signal` has aborted, or would have):
   * reading it makes no signal, so a branch that only needs to know pays for no controller.
   */
  readonly aborted: boolean;
  /** Input index of the task. */
  readonly index: number;
  /** When this branch must be done, in `performance.now()` time; `Infinity` when unbounded. */
  readonly deadline: number;
}

const RUNNING = Symbol("running");

/**
 * The context handed to `fn`. One per worker, re-armed for each task it runs: a fresh object
 * per task cost ~45 ns, about half of the executor's overhead. A worker runs one branch at a
 * time and a worker that is given up on keeps its context, so a context never changes while
 * its branch runs.
 *
 * Each branch that reads `signal` gets its own `AbortController`, made on that first read; a
 * branch that never reads it costs none. A signal shared by the call's branches would be
 * cheaper, but a later abort of the call would then reach the branches that had already
 * settled (and the response bodies they returned).
 *
 * @example
 * ```ts
 * import { Branch } from "./_branch.ts";
 * const branch = new Branch();
 * branch.begin(0, performance.now(), Infinity);
 * branch.abort(new Error("timed out")); // branch.signal is now aborted
 * ```
 */
export class Branch implements BranchContext {
  index = 0;
  deadline = Infinity;
  startedAt = 0;
  #controller: AbortController | undefined;
  /** Why this branch was aborted, or `RUNNING` (any value, `undefined` too, can be a reason). */
  #abortReason: unknown = RUNNING;

  /** Re-arms this context for the worker's next task. */
  begin(index: number, startedAt: number, deadline: number): void {
    this.index = index;
    this.startedAt = startedAt;
    this.deadline = deadline;
    this.#controller = undefined;
    this.#abortReason = RUNNING;
  }

  /** This branch's own signal, made on the first read. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== RUNNING) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Whether {@linkcode abort} was called since the branch began. */
  get aborted(): boolean {
    return this.#abortReason !== RUNNING;
  }

  /** Aborts this branch's signal (if one was made, or when it is made later). */
  abort(reason: unknown): void {
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}
