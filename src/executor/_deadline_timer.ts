/**
 * One timer for many deadlines, shared by the executors: armed at the earliest deadline it was
 * given and only ever moved earlier, so branches cost a comparison, not a `setTimeout` each.
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
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(at - performance.now())));
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
