/**
 * A weighted semaphore in one isolate: Go's `golang.org/x/sync/semaphore` in TypeScript.
 *
 * @module
 */

/** Options of {@linkcode Semaphore.acquire}. */
export interface AcquireOptions {
  /** Gives up waiting when this signal aborts; the acquire rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Semaphore.run}. */
export interface SemaphoreRunOptions extends AcquireOptions {
  /** Permits `fn` holds while it runs; 1 by default. */
  weight?: number;
}

interface Waiter {
  weight: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  next: Waiter | undefined;
  prev: Waiter | undefined;
}

/**
 * Weighted permits handed out in strict FIFO order. A waiter at the head blocks everyone
 * behind it, even those whose smaller weight would fit now: no barging, so a large waiter
 * is never starved by a stream of small ones (the price is some idle capacity while it waits).
 *
 * It holds no timer and no listener once every acquire has settled. Deadlines come in as an
 * `AbortSignal` (for example `AbortSignal.timeout(ms)`).
 *
 * @example
 * ```ts
 * import { Semaphore } from "./semaphore.ts";
 * const sem = new Semaphore(4);
 * await sem.acquire(2);
 * try {
 *   // ... use two of the four permits
 * } finally {
 *   sem.release(2);
 * }
 * ```
 */
export class Semaphore {
  #capacity: number;
  #used = 0;
  #head: Waiter | undefined;
  #tail: Waiter | undefined;
  #waiting = 0;

  /** Creates a semaphore with `capacity` permits (a positive integer). */
  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot create a Semaphore as 'capacity' must be a positive integer: current value is ${capacity}`,
      );
    }
    this.#capacity = capacity;
  }

  /** Total permits. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Permits held right now. */
  get used(): number {
    return this.#used;
  }

  /** Acquirers queued right now. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Takes `weight` permits at once if no one is queued and they are free; returns whether it did.
   *
   * @example
   * ```ts
   * import { Semaphore } from "./semaphore.ts";
   * const sem = new Semaphore(1);
   * sem.tryAcquire(); // true
   * sem.tryAcquire(); // false
   * ```
   */
  tryAcquire(weight = 1): boolean {
    this.#checkWeight(weight, "tryAcquire");
    if (this.#head === undefined && this.#used + weight <= this.#capacity) {
      this.#used += weight;
      return true;
    }
    return false;
  }

  /**
   * Resolves once `weight` permits are held by the caller, in FIFO order with other waiters.
   * Rejects with `signal.reason` if the signal aborts first (the waiter leaves the queue) or is
   * already aborted, free permits or not.
   *
   * @example
   * ```ts
   * import { Semaphore } from "./semaphore.ts";
   * const sem = new Semaphore(2);
   * await sem.acquire(1, { signal: AbortSignal.timeout(100) });
   * sem.release(1);
   * ```
   */
  acquire(weight = 1, { signal }: AcquireOptions = {}): Promise<void> {
    // A bad weight or an already aborted signal rejects, as documented, rather than throwing;
    // an aborted signal does so even when permits are free (the caller has given up already).
    try {
      this.#checkWeight(weight, "acquire");
      signal?.throwIfAborted();
      if (this.tryAcquire(weight)) return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { weight, resolve, reject, next: undefined, prev: this.#tail };
      if (this.#tail) this.#tail.next = waiter;
      else this.#head = waiter;
      this.#tail = waiter;
      this.#waiting++;
      if (!signal) return;
      const onAbort = () => {
        this.#unlink(waiter);
        // The head may have been the only thing blocking smaller waiters behind it.
        this.#grant();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.resolve = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      waiter.reject = (reason) => {
        signal.removeEventListener("abort", onAbort);
        reject(reason);
      };
    });
  }

  /**
   * Runs `fn` holding `weight` permits (1 by default) and settles like it. The permits are
   * released however `fn` ends: it returns, rejects or throws. `signal` only bounds the wait for
   * the permits: if it aborts first, `fn` never runs and the call rejects with `signal.reason`;
   * once `fn` runs, stopping it is `fn`'s business.
   *
   * @example
   * ```ts
   * import { Semaphore } from "./semaphore.ts";
   * const sem = new Semaphore(8);
   * const status = await sem.run(
   *   async () => (await fetch("https://example.com/")).status,
   *   { signal: AbortSignal.timeout(1000) },
   * );
   * ```
   */
  async run<R>(
    fn: () => R | PromiseLike<R>,
    { weight = 1, signal }: SemaphoreRunOptions = {},
  ): Promise<R> {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot run under a Semaphore as 'fn' must be a function: current type is ${typeof fn}`,
      );
    }
    await this.acquire(weight, { signal });
    try {
      return await fn();
    } finally {
      this.release(weight);
    }
  }

  /**
   * Rejects every queued acquire with `reason` at once and empties the queue (p-limit's
   * `clearQueue()`, but the waiters hear about it); returns how many there were. Permits already
   * held stay held. For a shutdown, or a burst that is no longer worth serving.
   *
   * @example
   * ```ts
   * import { Semaphore } from "./semaphore.ts";
   * const sem = new Semaphore(1);
   * sem.tryAcquire();
   * const waiting = sem.acquire().catch((error) => error);
   * sem.rejectWaiters(new Error("shutting down")); // 1
   * ```
   */
  rejectWaiters(
    reason: unknown = new DOMException("The semaphore's queue was cleared", "AbortError"),
  ): number {
    const rejected = this.#waiting;
    let waiter = this.#head;
    this.#head = this.#tail = undefined;
    this.#waiting = 0;
    while (waiter !== undefined) {
      const next = waiter.next;
      waiter.next = waiter.prev = undefined;
      waiter.reject(reason);
      waiter = next;
    }
    return rejected;
  }

  /**
   * Returns `weight` permits and wakes waiters at the head of the queue that now fit.
   * Releasing more than is held is a bug in the caller and throws a `RangeError`.
   */
  release(weight = 1): void {
    this.#checkWeight(weight, "release");
    if (weight > this.#used) {
      throw new RangeError(
        `Cannot release ${weight} permits as only ${this.#used} are held`,
      );
    }
    this.#used -= weight;
    this.#grant();
  }

  #grant(): void {
    while (this.#head && this.#used + this.#head.weight <= this.#capacity) {
      const waiter = this.#head;
      this.#unlink(waiter);
      this.#used += waiter.weight;
      waiter.resolve();
    }
  }

  #unlink(waiter: Waiter): void {
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.#head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.#tail = waiter.prev;
    waiter.next = waiter.prev = undefined;
    this.#waiting--;
  }

  #checkWeight(weight: number, action: string): void {
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > this.#capacity) {
      throw new RangeError(
        `Cannot ${action} as 'weight' must be an integer from 1 to the capacity ${this.#capacity}: current value is ${weight}`,
      );
    }
  }
}
