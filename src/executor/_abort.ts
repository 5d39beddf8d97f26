/**
 * Private cancellation helpers of the gateway's branch calls.
 *
 * @module
 */

/**
 * A child signal that aborts with `reason` after `ms`, or with the parent's reason when the
 * parent aborts first. `dispose` clears the timer and the parent listener; call it in a
 * `finally` (the helper never outlives its branch).
 *
 * @example
 * ```ts
 * import { childSignal } from "./_abort.ts";
 * const child = childSignal(new AbortController().signal, 50, new Error("timed out"));
 * try {
 *   // ... use child.signal ...
 * } finally {
 *   child.dispose();
 * }
 * ```
 */
export function childSignal(
  parent: AbortSignal,
  ms: number,
  reason: unknown,
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, dispose() {} };
  }
  const onParentAbort = () => controller.abort(parent.reason);
  const timer = setTimeout(() => controller.abort(reason), ms);
  parent.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener("abort", onParentAbort);
    },
  };
}

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
