/**
 * One timer for many deadlines, shared by the executors: armed at the earliest deadline it was
 * given and only ever moved earlier, so branches cost a comparison, not a `setTimeout` each.
 * Deadlines beyond `setTimeout`'s range are kept exact: the timer is clamped to its longest
 * delay and the owner's `onFire` re-arms it for what is still pending.
 *
 * @example
 * ```ts
 * import { DeadlineTimer } from "./_deadline_timer.ts";
 * const timer = new DeadlineTimer(() => console.log("a deadline passed"));
 * timer.armBy(performance.now() + 50);
 * timer.clear();
 * ```
 *
 * @module
 */

/** The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A `setTimeout` and `clearTimeout` pair, as the globals are (`globalThis` is one): where
 * fanfare's timeouts are set. The gateway passes each request's own, which puts all of a
 * request's timeouts on one timer.
 *
 * @example
 * ```ts
 * import type { Timers } from "./_deadline_timer.ts";
 * const timers: Timers = globalThis;
 * const handle = timers.setTimeout(() => console.log("due"), 10);
 * timers.clearTimeout(handle);
 * ```
 */
export interface Timers {
  /** Runs `run` after `delayMs`; returns what `clearTimeout` takes. */
  setTimeout(run: () => void, delayMs: number): unknown;
  /** Cancels a timeout not yet run; anything else (`undefined` too) changes nothing. */
  clearTimeout(handle: unknown): void;
}

/** Calls `onFire` once the earliest deadline given to {@linkcode DeadlineTimer.armBy} passes. */
export class DeadlineTimer {
  #onFire: () => void;
  #timers: Timers;
  #timer: unknown;
  #at = Infinity;

  /**
   * `onFire` runs with the timer already disarmed, so it may arm it again; `timers` set it (the
   * global ones by default).
   */
  constructor(onFire: () => void, timers: Timers = globalThis) {
    this.#onFire = onFire;
    this.#timers = timers;
  }

  /** When it fires next, in `performance.now()` time; `Infinity` when disarmed. */
  get at(): number {
    return this.#at;
  }

  /** Makes it fire by `at` (`performance.now()` time); a later or infinite `at` changes nothing. */
  armBy(at: number): void {
    if (at >= this.#at) return;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#at = at;
    // Runtimes fire a timer longer than 2^31 - 1 ms after 1 ms instead: a far deadline takes
    // a longest timer, whose firing finds nothing due and arms the next one.
    const delay = Math.ceil(at - performance.now());
    this.#timer = this.#timers.setTimeout(this.#fire, Math.min(Math.max(0, delay), MAX_TIMER_MS));
  }

  /** Disarms it. */
  clear(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#at = Infinity;
    this.#onFire();
  };
}
