/**
 * The simulated downstream's log of the calls it received, with the W3C trace headers each
 * carried, so that a test can check every call of a request descends from the request's span.
 *
 * @module
 */

/**
 * One call as the downstream received it.
 *
 * @example
 * ```ts
 * import type { ReceivedCall } from "./downstream_calls.ts";
 * const call: ReceivedCall = {
 *   branch: "price",
 *   id: "sku-1",
 *   attempt: 0,
 *   traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
 * };
 * ```
 */
export interface ReceivedCall {
  branch: string;
  id: string;
  /** The `attempt` query parameter: 0 for a first call, n for the n-th hedge or retry. */
  attempt: number;
  /** The `traceparent` header as received, or `null` when there was none. */
  traceparent: string | null;
  /** The `tracestate` header as received, when there was one. */
  tracestate?: string;
}

/**
 * The last `capacity` calls received (256 by default), oldest first; older ones are dropped, so
 * the log stays bounded under load.
 *
 * @example
 * ```ts
 * import { DownstreamCalls } from "./downstream_calls.ts";
 *
 * const calls = new DownstreamCalls();
 * calls.record({ branch: "price", id: "sku-1", attempt: 0, traceparent: null });
 * calls.snapshot({ id: "sku-1" }).length; // 1
 * ```
 */
export class DownstreamCalls {
  #calls: ReceivedCall[] = [];
  #capacity: number;

  constructor({ capacity = 256 }: { capacity?: number } = {}) {
    this.#capacity = capacity;
  }

  /** Keeps `call`, dropping the oldest one past the capacity. */
  record(call: ReceivedCall): void {
    this.#calls.push(call);
    if (this.#calls.length > this.#capacity) this.#calls.shift();
  }

  /** The calls kept, oldest first; only those for product `id` when it is given. */
  snapshot({ id }: { id?: string } = {}): ReceivedCall[] {
    return this.#calls.filter((call) => id === undefined || call.id === id).map((call) => ({
      ...call,
    }));
  }

  /** Forgets every call. */
  reset(): void {
    this.#calls = [];
  }
}
