/**
 * `fanOut`: run one function over many tasks with a hard concurrency ceiling, per-branch and
 * whole-call deadlines, and a failure policy, then join.
 *
 * @module
 */

import { DeadlineTimer } from "./_deadline_timer.ts";
import { branchFailures, sourceThrew } from "./_failures.ts";
import { BranchError, BranchTimeoutError, DeadlineError } from "./errors.ts";
import { Branch, type BranchContext } from "./_branch.ts";
import { type BranchOutcome, checkOptions, type FanOutOptions } from "./fan_out_options.ts";
import { openSource, type Reader, type TaskSource } from "./_source.ts";
import { ignore } from "./_abort.ts";

export type {
  BranchOutcome,
  FailurePolicy,
  FanOutHooks,
  FanOutOptions,
} from "./fan_out_options.ts";
export { DEFAULT_LIMIT, FAILURE_POLICIES } from "./fan_out_options.ts";
export type { BranchContext } from "./_branch.ts";

/** A task that was pulled but never started, or was running when the call settled. */
export interface UnfinishedBranch {
  /** Input index of the task. */
  index: number;
  /** Why: `"budget"` (too little time left to start), `"deadline"`, `"aborted"` or `"failFast"`. */
  reason: "budget" | "deadline" | "aborted" | "failFast";
}

/** What a fan-out gathered. Every pulled task appears exactly once across the lists. */
export interface FanOutResult<R> {
  /**
   * Successful results. Ordered (default): aligned to input index, with holes where a branch
   * did not succeed. Unordered: in completion order, with `indexes` alongside. Empty when an
   * `onResult` callback consumed them.
   */
  values: R[];
  /** Unordered mode only: input index of each entry of `values`. */
  indexes?: number[];
  /** Number of branches that succeeded. */
  succeeded: number;
  /** Branches that failed (threw, rejected or timed out), in completion order. */
  failed: BranchError[];
  /** `failed.length / (succeeded + failed.length)`, or 0 when nothing finished. */
  failedRatio: number;
  /**
   * `collectAll` only: every failure as one `AggregateError`, or `undefined` when none. When the
   * budget left tasks skipped or abandoned, a {@linkcode DeadlineError} is its last entry.
   */
  errors?: AggregateError;
  /** Pulled but never started. */
  skipped: UnfinishedBranch[];
  /** Running when the call settled: their signals were aborted and their outcome is ignored. */
  abandoned: UnfinishedBranch[];
  /** How many tasks were read from `tasks`. */
  pulled: number;
  /** Whether `tasks` was read to its end. */
  drained: boolean;
}

/**
 * Runs `fn(task, { signal, index, deadline })` for every task with at most `limit` branches
 * in flight, then joins. Tasks are pulled lazily, so an iterable of ten million items never
 * has more than `limit` branches (or their promises) alive. `tasks` may be an iterable (read
 * synchronously, the fast path), an async iterable or a `ReadableStream` (read one task at a
 * time; cancelled, or its `return()` called, when the call stops before the end).
 *
 * - `failFast`: the first failure aborts every sibling, starts nothing more, and rejects with a
 *   {@linkcode BranchError} whose `partial` holds the result gathered so far.
 * - `collectAll`: every branch runs; failures come back in `failed` and `errors`.
 * - `bestEffort` (default): every branch runs; failures come back in `failed` and
 *   `failedRatio` for the caller to judge.
 *
 * The call settles as soon as its outcome is decided (whole-call deadline, failFast failure,
 * caller abort): unfinished branches are aborted and listed in `abandoned`, never awaited.
 * A caller abort rejects with `signal.reason`. A `budgetMs` expiry, or a task skipped for lack
 * of budget, rejects with a {@linkcode DeadlineError} under failFast, and resolves with the
 * partial result otherwise (under collectAll with the `DeadlineError` in `errors`).
 *
 * Memory: `O(limit)` while running, plus the collected values (`O(N)`); pass `onResult` to
 * consume values as they complete and keep `O(limit)` throughout.
 *
 * Caveat: a branch that ignores its signal keeps running after it is counted as timed out or
 * abandoned; its slot is handed to the next task. The executor keeps no reference to it.
 *
 * @example
 * ```ts
 * import { fanOut } from "./fan_out.ts";
 * const { values, failed } = await fanOut(
 *   ["a", "b", "c"],
 *   async (name, { signal }) => (await fetch(`https://example.com/${name}`, { signal })).status,
 *   { limit: 2, timeoutMs: 500, budgetMs: 2000, policy: "bestEffort" },
 * );
 * ```
 */
export function fanOut<T, R>(
  tasks: TaskSource<T>,
  fn: (task: T, context: BranchContext) => R | PromiseLike<R>,
  options: FanOutOptions<R> = {},
): Promise<FanOutResult<R>> {
  // Misuse rejects like every other failure, so `.catch()` callers see it too.
  let source: Reader<T>;
  let checked: Checked<R>;
  try {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot fan out as 'fn' must be a function: current type is ${typeof fn}`,
      );
    }
    checked = checkOptions(options);
    source = openSource(tasks, "Cannot fan out as 'tasks'");
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => {
    new Run(source, fn, checked, resolve, reject).start();
  });
}

type Checked<R> = ReturnType<typeof checkOptions<R>>;

/**
 * A worker's seat. Each worker has its own context, so a seat whose `branch` is no longer the
 * worker's own was given up on, and a late result is ignored.
 */
interface Slot {
  branch: Branch | undefined;
}

class Run<T, R> {
  /** The task source; `#iterator` is its iterator when it is a plain iterable (the fast path). */
  #source: Reader<T>;
  #iterator: Iterator<T> | undefined;
  /** Async sources: the read under way, which the next read waits for (one at a time). */
  #reading: Promise<unknown> = Promise.resolve();
  #fn: (task: T, context: BranchContext) => R | PromiseLike<R>;
  #options: Checked<R>;
  #resolve: (result: FanOutResult<R>) => void;
  #reject: (error: unknown) => void;
  #slots: Slot[] = [];
  #activeWorkers = 0;
  #spawning = false;
  #settled = false;
  #stopPulling = false;
  /** The source threw or was closed: it is not touched again. */
  #iteratorDone = false;
  #callDeadline = Infinity;
  /** Set once the budget left a task unstarted or a branch unfinished. */
  #outOfBudget: DeadlineError | undefined;
  #timer: DeadlineTimer;
  #onCallerAbort = () => this.#decide("aborted", this.#options.signal!.reason);
  #result: FanOutResult<R> = {
    values: [],
    succeeded: 0,
    failed: [],
    failedRatio: 0,
    skipped: [],
    abandoned: [],
    pulled: 0,
    drained: false,
  };

  constructor(
    source: Reader<T>,
    fn: (task: T, context: BranchContext) => R | PromiseLike<R>,
    options: Checked<R>,
    resolve: (result: FanOutResult<R>) => void,
    reject: (error: unknown) => void,
  ) {
    this.#source = source;
    this.#iterator = source.sync;
    this.#fn = fn;
    this.#options = options;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#timer = new DeadlineTimer(() => this.#onTimer(), options.timers);
    if (!options.ordered) this.#result.indexes = [];
  }

  start(): void {
    const { signal, budgetMs, limit } = this.#options;
    if (signal?.aborted) {
      this.#closeIterator(signal.reason);
      this.#reject(signal.reason);
      return;
    }
    signal?.addEventListener("abort", this.#onCallerAbort, { once: true });
    if (budgetMs !== undefined) {
      this.#callDeadline = performance.now() + budgetMs;
      this.#timer.armBy(this.#callDeadline);
    }
    this.#spawning = true;
    // A sync source is read by each worker before its first await, so this loop stops at the
    // source's end. An async source starts one worker, and each read task starts the next.
    const workers = this.#iterator === undefined ? 1 : limit;
    for (let i = 0; i < workers && !this.#stopPulling && !this.#settled; i++) this.#spawn();
    this.#spawning = false;
    if (this.#activeWorkers === 0) this.#finish();
  }

  #spawn(): void {
    const slot: Slot = { branch: undefined };
    this.#slots.push(slot);
    this.#activeWorkers++;
    this.#work(slot);
  }

  /** The next task of an async source, read only once the read before it has settled. */
  #read(): Promise<IteratorResult<T>> {
    const step = this.#reading.then(() => this.#source.next());
    this.#reading = step.then(ignore, ignore);
    return step;
  }

  async #work(slot: Slot): Promise<void> {
    const { timeoutMs, minBudgetMs, hooks } = this.#options;
    // Reading the clock costs 50-190 ns a branch here: only when a deadline or a hook needs it.
    const timed = timeoutMs !== undefined || this.#callDeadline !== Infinity || !!hooks?.onSettle;
    const branch = new Branch();
    while (!this.#stopPulling && !this.#settled) {
      let step: IteratorResult<T>;
      let done: boolean | undefined;
      try {
        // The fast path: a plain iterable is read without a promise.
        if (this.#iterator !== undefined) step = this.#iterator.next();
        else {
          step = await this.#read();
          // A task whose read was under way when the call settled was never started: dropped.
          if (this.#settled) return;
          // One more worker per task read, so an async source never has idle readers queued.
          if (!step.done && this.#activeWorkers < this.#options.limit) this.#spawn();
        }
        // Read here: a `next()` that returns no object throws on this read.
        done = step.done;
      } catch (cause) {
        // A source that threw is finished: `return()` is not called on it (as in `for…of`).
        this.#iteratorDone = true;
        this.#decide("source", cause);
        return;
      }
      if (done) {
        this.#result.drained = true;
        this.#stopPulling = true;
        break;
      }
      const index = this.#result.pulled++;
      const now = timed ? performance.now() : 0;
      if (this.#callDeadline - now < minBudgetMs) {
        this.#result.skipped.push({ index, reason: "budget" });
        this.#outOfBudget ??= new DeadlineError(this.#options.budgetMs!);
        this.#observeSettle(index, "skipped", undefined);
        this.#stopPulling = true;
        this.#closeIterator(undefined);
        // A task that cannot run decides a failFast call: it cannot succeed any more.
        if (this.#options.policy === "failFast") {
          this.#decide("deadline", this.#outOfBudget);
          return;
        }
        break;
      }
      const deadline = timeoutMs === undefined
        ? this.#callDeadline
        : Math.min(this.#callDeadline, now + timeoutMs);
      branch.begin(index, now, deadline);
      slot.branch = branch;
      if (timeoutMs !== undefined) this.#timer.armBy(deadline);
      if (hooks?.onStart) {
        this.#observeStart(index);
        if (this.#settled) return;
      }
      let value: R;
      try {
        value = await this.#fn(step.value, branch);
      } catch (cause) {
        if (slot.branch !== branch) return;
        slot.branch = undefined;
        this.#fail(new BranchError(index, cause), branch);
        continue;
      }
      if (slot.branch !== branch) return;
      slot.branch = undefined;
      this.#succeed(value, branch);
    }
    this.#activeWorkers--;
    if (this.#activeWorkers === 0 && !this.#spawning) this.#finish();
  }

  #succeed(value: R, branch: Branch): void {
    const { ordered, onResult } = this.#options;
    this.#result.succeeded++;
    this.#observeSettle(branch.index, "ok", branch.startedAt);
    if (this.#settled) return;
    if (onResult) {
      try {
        onResult(value, branch.index);
      } catch (cause) {
        this.#decide("source", cause);
      }
    } else if (ordered) this.#result.values[branch.index] = value;
    else {
      this.#result.values.push(value);
      this.#result.indexes!.push(branch.index);
    }
  }

  #fail(error: BranchError, branch: Branch): void {
    const outcome: BranchOutcome = error instanceof BranchTimeoutError ? "timeout" : "error";
    this.#observeSettle(branch.index, outcome, branch.startedAt);
    this.#result.failed.push(error);
    if (this.#options.policy === "failFast") this.#decide("failFast", error);
  }

  // An observer that throws fails the call like any callback, rather than escaping the worker.
  #observeStart(index: number): void {
    try {
      this.#options.hooks!.onStart!(index);
    } catch (cause) {
      this.#decide("source", cause);
    }
  }

  /** `startedAt` is undefined for a branch never started; the clock is read only for a hook. */
  #observeSettle(index: number, outcome: BranchOutcome, startedAt: number | undefined): void {
    const onSettle = this.#options.hooks?.onSettle;
    if (onSettle === undefined) return;
    try {
      onSettle(index, outcome, startedAt === undefined ? 0 : performance.now() - startedAt);
    } catch (cause) {
      this.#decide("source", cause);
    }
  }

  /** Gives up on a running branch: its worker's seat passes to a fresh worker. */
  #giveUp(slot: Slot, reason: unknown): Branch {
    const branch = slot.branch!;
    slot.branch = undefined;
    branch.abort(reason);
    return branch;
  }

  #onTimer(): void {
    if (this.#settled) return;
    const now = performance.now();
    if (now >= this.#callDeadline) {
      this.#outOfBudget ??= new DeadlineError(this.#options.budgetMs!);
      this.#decide("deadline", this.#outOfBudget);
      return;
    }
    let next = this.#callDeadline;
    for (const slot of this.#slots) {
      if (this.#settled) return;
      const branch = slot.branch;
      if (branch === undefined) continue;
      if (branch.deadline <= now) {
        const error = new BranchTimeoutError(branch.index, this.#options.timeoutMs!);
        this.#giveUp(slot, error);
        this.#fail(error, branch);
        if (!this.#settled) this.#work(slot);
      } else if (branch.deadline < next) next = branch.deadline;
    }
    // A replacement worker above may already have armed an earlier timer, or settled the call
    // (the last task timed out): then no timer may outlive it.
    if (!this.#settled) this.#timer.armBy(next);
  }

  /** The outcome is known before every branch finished: abort the rest and settle now. */
  #decide(why: "failFast" | "deadline" | "aborted" | "source", reason: unknown): void {
    if (this.#settled) return;
    // Settled from here on, so an observer throwing inside this method cannot re-enter it.
    this.#settled = true;
    this.#stopPulling = true;
    const abandonedAs = why === "source" ? "aborted" : why;
    for (const slot of this.#slots) {
      if (slot.branch === undefined) continue;
      const branch = this.#giveUp(slot, reason);
      this.#result.abandoned.push({ index: branch.index, reason: abandonedAs });
      this.#observeSettle(branch.index, "abandoned", branch.startedAt);
    }
    this.#closeIterator(reason);
    const result = this.#seal();
    if (why === "aborted") return this.#reject(reason);
    if (why === "source") {
      return this.#reject(sourceThrew("the fan-out as a task source or callback", reason));
    }
    if (why === "failFast" || this.#options.policy === "failFast") {
      (reason as BranchError | DeadlineError).partial = result;
      return this.#reject(reason);
    }
    this.#resolve(result);
  }

  #finish(): void {
    if (this.#settled) return;
    this.#resolve(this.#seal());
  }

  /** Releases every timer and listener and computes the summary fields. */
  #seal(): FanOutResult<R> {
    this.#settled = true;
    this.#timer.clear();
    this.#options.signal?.removeEventListener("abort", this.#onCallerAbort);
    this.#slots = [];
    const result = this.#result;
    const finished = result.succeeded + result.failed.length;
    result.failedRatio = finished === 0 ? 0 : result.failed.length / finished;
    if (this.#options.policy === "collectAll") {
      // Tasks the budget left unfinished count as failures here: they did not all run.
      const outOfBudget = this.#outOfBudget && {
        error: this.#outOfBudget,
        unfinished: result.skipped.length + result.abandoned.length,
      };
      if (result.failed.length > 0 || outOfBudget) {
        result.errors = branchFailures(result.failed, finished, outOfBudget);
      }
    }
    return result;
  }

  /** Calls the source's `return()` once, and never after it ended or threw. */
  #closeIterator(reason: unknown): void {
    if (this.#iteratorDone || this.#result.drained) return;
    this.#iteratorDone = true;
    this.#source.close(reason);
  }
}
