/**
 * Counts the `setTimeout` timers pending in this process, by wrapping `globalThis.setTimeout`
 * and `clearTimeout` (every timer of fanfare's executor, gateway and simulated downstream goes
 * through them). Intervals are not counted. A bench-only instrument: nothing in `src/` knows.
 *
 * @module
 */

type Callback = (...args: unknown[]) => void;
type TimerId = ReturnType<typeof setTimeout>;

const original = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
};

/**
 * Timers set after {@linkcode TimerCensus.install} and neither fired nor cleared yet.
 *
 * @example
 * ```ts
 * import { TimerCensus } from "./_timer_census.ts";
 * const census = TimerCensus.install();
 * const id = setTimeout(() => {}, 1000);
 * census.pending; // 1
 * clearTimeout(id);
 * census.pending; // 0
 * census.uninstall();
 * ```
 */
export class TimerCensus {
  #live = new Set<TimerId>();

  private constructor() {}

  /** Wraps the global timer functions; only one census may be installed at a time. */
  static install(): TimerCensus {
    if (globalThis.setTimeout !== original.setTimeout) {
      throw new Error(
        "Cannot install a timer census as one is already installed: current setTimeout is wrapped",
      );
    }
    const census = new TimerCensus();
    const live = census.#live;
    globalThis.setTimeout = function countedSetTimeout(
      callback: Callback,
      delay?: number,
      ...args: unknown[]
    ): TimerId {
      const id: TimerId = original.setTimeout(
        (...a: unknown[]) => {
          live.delete(id);
          callback(...a);
        },
        delay,
        ...args,
      );
      live.add(id);
      return id;
    } as unknown as typeof setTimeout;
    globalThis.clearTimeout = function countedClearTimeout(id?: TimerId): void {
      if (id !== undefined) live.delete(id);
      original.clearTimeout(id);
    } as typeof clearTimeout;
    return census;
  }

  /** Timers pending now. */
  get pending(): number {
    return this.#live.size;
  }

  /** Puts the original timer functions back. */
  uninstall(): void {
    globalThis.setTimeout = original.setTimeout;
    globalThis.clearTimeout = original.clearTimeout;
  }
}

/**
 * Waits `ms` on a timer the census does not count, so the measuring code stays out of its figures.
 *
 * @example
 * ```ts
 * import { uncountedDelay } from "./_timer_census.ts";
 * await uncountedDelay(10);
 * ```
 */
export function uncountedDelay(ms: number): Promise<void> {
  return new Promise((resolve) => original.setTimeout(resolve, ms));
}
