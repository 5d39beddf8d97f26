/**
 * `Group`: Go's errgroup — start tasks, wait for all, the first error cancels the rest.
 *
 * @module
 */

import { Semaphore } from "./semaphore.ts";
import { ignore } from "./_abort.ts";

/** Options of {@linkcode Group}. */
export interface GroupOptions {
  /** Most tasks running at once; absent means no limit (each `go()` starts at once). */
  limit?: number;
  /** A parent signal: aborting it aborts the group's signal. */
  signal?: AbortSignal;
}

/**
 * A set of tasks that share one `AbortSignal`. The first task to fail aborts that signal with
 * its error, and `wait()` rejects with it after every task has settled (errgroup semantics:
 * later errors are dropped). With `limit`, `go()` waits for a free seat before starting, so
 * await it to apply backpressure to the producer.
 *
 * @example
 * ```ts
 * import { Group } from "./group.ts";
 * const group = new Group({ limit: 2 });
 * for (const url of ["https://a.example", "https://b.example"]) {
 *   await group.go((signal) => fetch(url, { signal }).then((r) => r.body?.cancel()));
 * }
 * await group.wait();
 * ```
 */
export class Group {
  #controller = new AbortController();
  #semaphore: Semaphore | undefined;
  #running = new Set<Promise<unknown>>();
  #failure: { error: unknown } | undefined;
  #parent: AbortSignal | undefined;
  #onParentAbort = () => this.#controller.abort(this.#parent!.reason);

  /** Creates an empty group. */
  constructor({ limit, signal }: GroupOptions = {}) {
    if (limit !== undefined) {
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new RangeError(
          `Cannot create a Group as 'limit' must be a positive integer: current value is ${limit}`,
        );
      }
      this.#semaphore = new Semaphore(limit);
    }
    this.#parent = signal;
    if (signal?.aborted) this.#controller.abort(signal.reason);
    else signal?.addEventListener("abort", this.#onParentAbort, { once: true });
  }

  /** Aborts when a task fails or the parent signal aborts. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * Starts `task(signal)` once a seat is free; resolves when it has started. Rejects with the
   * group's abort reason, without starting the task, if the group was aborted first.
   *
   * The task joins the group at once, before any seat is free: `wait()` waits for it whether or
   * not the caller awaited `go()`, and a refusal nobody awaits is not an unhandled rejection.
   */
  go(task: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
    const signal = this.#controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    const started = startSignal();
    started.promise.catch(ignore);
    const running = this.#run(task, signal, started);
    this.#running.add(running);
    running.then(() => this.#running.delete(running));
    return started.promise;
  }

  /** Takes a seat, then runs `task`; never rejects (a task's error is the group's failure). */
  async #run(
    task: (signal: AbortSignal) => Promise<unknown>,
    signal: AbortSignal,
    started: StartSignal,
  ): Promise<void> {
    try {
      await this.#semaphore?.acquire(1, { signal });
    } catch (reason) {
      started.reject(reason);
      return;
    }
    if (signal.aborted) {
      // Granted as the group failed: give the seat back rather than keep it forever.
      this.#semaphore?.release(1);
      started.reject(signal.reason);
      return;
    }
    // Started on a later microtask (before go() resolves) so a task that throws synchronously
    // is handled alike.
    const ran = Promise.resolve().then(() => task(signal));
    started.resolve();
    try {
      await ran;
    } catch (error) {
      if (this.#failure === undefined) {
        this.#failure = { error };
        this.#controller.abort(error);
      }
    } finally {
      this.#semaphore?.release(1);
    }
  }

  /** Resolves when every started task has settled; rejects with the first error. */
  async wait(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
    this.#parent?.removeEventListener("abort", this.#onParentAbort);
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}

/** The promise `go()` returns, settled by `#run` once the task has a seat or was refused. */
interface StartSignal {
  promise: Promise<void>;
  resolve(): void;
  reject(reason: unknown): void;
}

// Not Promise.withResolvers(): the npm package runs on Node 20, which does not have it.
function startSignal(): StartSignal {
  let resolve!: () => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
