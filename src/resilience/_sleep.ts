/**
 * The one timer of the resilience policies: a wait that an `AbortSignal` cuts short.
 *
 * @module
 */

/**
 * Waits `ms`, or rejects with `signal.reason` as soon as `signal` aborts; the timer and the
 * listener are removed either way. Policies take it as an option so tests can pass one that
 * records the wait and resolves at once.
 *
 * @example
 * ```ts
 * import { sleep } from "./_sleep.ts";
 * await sleep(1, AbortSignal.timeout(100));
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A wait as the policies take it: `sleep` by default, a recorder in tests.
 *
 * @example
 * ```ts
 * import type { Sleep } from "./_sleep.ts";
 * const instant: Sleep = () => Promise.resolve();
 * ```
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;
