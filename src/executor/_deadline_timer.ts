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

/** Calls `onFire` once the earliest deadline given to {@linkcode DeadlineTimer.armBy} passes. */
export class DeadlineTimer {
  #onFire: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at = Infinity;

  /** `onFire` runs with the timer already disarmed, so it may arm it again. */
  constructor(onFire: () => void) {
    this.#onFire = onFire;
  }

  /** When it fires next, in `performance.now()` time; `Infinity` when disarmed. */
  get at(): number {
    return this.#at;
  }

  /** Makes it fire by `at` (`performance.now()` time); a later or infinite `at` changes nothing. */
  armBy(at: number): void {
    if (at >= this.#at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = at;
    // Runtimes fire a timer longer than 2^31 - 1 ms after 1 ms instead: a far deadline takes
    // a longest timer, whose firing finds nothing due and arms the next one.
    const delay = Math.ceil(at - performance.now());
    this.#timer = setTimeout(this.#fire, Math.min(Math.max(0, delay), MAX_TIMER_MS));
  }

  /** Disarms it. */
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#at = Infinity;
    this.#onFire();
  };
}
