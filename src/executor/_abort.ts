/**
 * Cancellation helpers shared by the executor, the limiters and the gateway.
 *
 * @module
 */

/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts. A value
 * that arrives after the abort is handed to `onLate` (to cancel a response body, say) and
 * dropped. The abort listener is removed either way.
 *
 * @example
 * ```ts
 * import { abortable } from "./_abort.ts";
 * const response = await abortable(
 *   fetch("https://example.com/"),
 *   AbortSignal.timeout(100),
 *   (late) => late.body?.cancel(),
 * );
 * ```
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onLate: (value: T) => unknown,
): Promise<T> {
  if (signal.aborted) {
    promise.then(onLate).catch(ignore);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      // Neither a late failure nor a failing `onLate` concerns anyone any more.
      promise.then(onLate).catch(ignore);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Swallows a rejection nobody is waiting for any more. */
export function ignore(): void {}
