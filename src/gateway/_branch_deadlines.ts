/**
 * The cancellation of one request's branch calls: every branch gets a signal of its own that
 * aborts at the earliest of the request's signal, the branch's own deadline and the request's
 * end, served by one listener on the request's signal and one timer for all its branches.
 *
 * Why not a child controller, a timer and a listener per branch plus an
 * `abortable` race around each await: that is three listeners, a timer and an eagerly built
 * timeout error per branch, and `bench:overhead` found them a fifth of the gateway's cost. Nor
 * a listener on the signal the fan-out gives each branch: the fan-out would make a controller per
 * branch for it, and it only aborts when the fan-out settles, which `close` covers.
 *
 * @module
 */
import { BranchTimeoutError, DeadlineTimer, type Timers } from "../executor/mod.ts";

/**
 * One branch's call: its own signal, and a race that rejects as soon as that signal aborts, so
 * that a downstream which ignores its signal cannot hold the branch (or its permit) past its
 * deadline.
 *
 * @example
 * ```ts
 * import { BranchDeadlines } from "./_branch_deadlines.ts";
 * const deadlines = new BranchDeadlines({ leadMs: 200, signal: new AbortController().signal });
 * const call = deadlines.open(0);
 * try {
 *   await call.race(fetch("https://example.com/", { signal: call.signal }));
 * } finally {
 *   deadlines.end(call);
 *   deadlines.close(() => new Error("request answered"));
 * }
 * ```
 */
export class BranchCall {
  /** Index of the branch in its registry. */
  readonly index: number;
  /** Own deadline in `performance.now()` time once armed; `Infinity` otherwise. */
  deadline = Infinity;
  /** The branch's own time limit, named in its timeout error. */
  timeoutMs = 0;
  /** Aborts when the request's signal does, or at the own deadline. */
  readonly signal: AbortSignal;
  #controller: AbortController;
  #reject: ((reason: unknown) => void) | undefined;

  /** The call of branch `index`. */
  constructor(index: number) {
    this.index = index;
    this.#controller = new AbortController();
    // Read once: Bun's `signal` getter costs as much as a small allocation.
    this.signal = this.#controller.signal;
  }

  /**
   * Settles like `work`, or rejects with the signal's reason as soon as it aborts; `work` must
   * itself stop (or release what arrives late) once the signal has aborted. At most one race at a
   * time.
   */
  race<T>(work: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (signal.aborted) {
      work.catch(() => {});
      return Promise.reject(signal.reason);
    }
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      work.then(resolve, reject);
    });
  }

  /** Aborts the signal and the race with `reason`; later calls change nothing. */
  abort(reason: unknown): void {
    if (this.signal.aborted) return;
    this.#controller.abort(reason);
    this.#reject?.(reason);
  }
}

/**
 * The live branch calls of one request. Open a call when a branch starts, arm its own deadline
 * when it has one that ends before the request's, end it when the branch settles, and close the
 * whole once the request is answered.
 *
 * @example
 * ```ts
 * import { BranchDeadlines } from "./_branch_deadlines.ts";
 * const deadlines = new BranchDeadlines({ leadMs: 200, signal: new AbortController().signal });
 * const call = deadlines.open(0);
 * deadlines.arm(call, { deadline: performance.now() + 200, timeoutMs: 200 });
 * deadlines.end(call);
 * deadlines.close(() => new Error("request answered"));
 * ```
 */
export class BranchDeadlines {
  #live: (BranchCall | undefined)[] = [];
  #signal: AbortSignal | undefined;
  #leadMs: number;
  #timer: DeadlineTimer;
  #onAbort = () => this.abortAll(this.#signal!.reason);

  /**
   * `leadMs`: the shortest own time limit of any branch. The timer is armed that long after the
   * first own deadline is armed and only moved earlier, so branches started together, whose
   * deadlines come a few ms apart, share one `setTimeout` instead of re-arming it each.
   * `signal`: the request's; its abort aborts every live call. `timers`: where the timer is set,
   * the request's `RequestTimers` in the gateway (the global pair by default).
   */
  constructor(
    { leadMs, signal, timers }: { leadMs: number; signal?: AbortSignal; timers?: Timers },
  ) {
    this.#leadMs = leadMs;
    this.#signal = signal;
    this.#timer = new DeadlineTimer(() => this.#expire(), timers);
    if (signal?.aborted === false) signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** A call for branch `index`; aborted already when the request's signal is. */
  open(index: number): BranchCall {
    const call = new BranchCall(index);
    if (this.#signal?.aborted) {
      call.abort(this.#signal.reason);
      return call;
    }
    this.#live[index] = call;
    return call;
  }

  /** Gives `call` its own deadline: at `deadline` it aborts with a `BranchTimeoutError`. */
  arm(call: BranchCall, { deadline, timeoutMs }: { deadline: number; timeoutMs: number }): void {
    call.deadline = deadline;
    call.timeoutMs = timeoutMs;
    if (deadline < this.#timer.at) {
      this.#timer.armBy(Math.min(deadline, performance.now() + this.#leadMs));
    }
  }

  /** The branch of `call` settled: it no longer needs aborting. */
  end(call: BranchCall): void {
    if (this.#live[call.index] === call) this.#live[call.index] = undefined;
  }

  /** Aborts every live call with `reason`. */
  abortAll(reason: unknown): void {
    for (const call of this.#live) call?.abort(reason);
  }

  /**
   * The request is decided: every call still live (a branch the fan-out gave up on) is aborted
   * with `reasonOf()`, called only if there is one, and no timer or listener of the request
   * outlives it.
   */
  close(reasonOf: () => unknown): void {
    this.#timer.clear();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (this.#live.some((call) => call !== undefined)) this.abortAll(reasonOf());
  }

  #expire(): void {
    const now = performance.now();
    let next = Infinity;
    for (const call of this.#live) {
      if (call === undefined || call.deadline === Infinity) continue;
      if (call.deadline <= now) {
        call.abort(new BranchTimeoutError(call.index, call.timeoutMs));
      } else if (call.deadline < next) next = call.deadline;
    }
    this.#timer.armBy(next);
  }
}
