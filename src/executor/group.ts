/**
 * `Group`: Go's errgroup — start tasks, wait for all, the first error cancels the rest.
 *
 * @module
 */

import { Semaphore } from "./semaphore.ts";

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
    if (limit !== undefined) this.#semaphore = new Semaphore(limit);
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
   */
  async go(task: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
    const signal = this.#controller.signal;
    signal.throwIfAborted();
    await this.#semaphore?.acquire(1, { signal });
    if (signal.aborted) {
      // Granted as the group failed: give the seat back rather than keep it forever.
      this.#semaphore?.release(1);
      signal.throwIfAborted();
    }
    // Started on a later microtask so a task that throws synchronously is handled alike.
    const running: Promise<unknown> = Promise.resolve()
      .then(() => task(signal))
      .then(undefined, (error) => {
        if (this.#failure !== undefined) return;
        this.#failure = { error };
        this.#controller.abort(error);
      })
      .finally(() => {
        this.#running.delete(running);
        this.#semaphore?.release(1);
      });
    this.#running.add(running);
  }

  /** Resolves when every started task has settled; rejects with the first error. */
  async wait(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
    this.#parent?.removeEventListener("abort", this.#onParentAbort);
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}
