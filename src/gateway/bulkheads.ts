/**
 * `Bulkheads`: one adaptive concurrency limit per downstream, so that one slow downstream
 * cannot hold every permit of the global ceiling and starve the others.
 *
 * A bulkhead wraps a branch's `Fetcher`, so the registry, not the scatter-gather, carries it:
 * every call of the branch (hedges included) takes a permit of its downstream's own
 * `AdaptiveLimiter` first. When that downstream slows down, its limit falls, its surplus calls
 * are turned away at once (the branch fails with a `BulkheadRejectedError`, which bestEffort
 * reports as degraded) and the global permits they would have sat on stay free for the others.
 *
 * @module
 */
import {
  AdaptiveLimiter,
  type AdaptiveLimiterOptions,
  type AdaptiveLimiterStats,
  isAdmissionRejectedError,
} from "../limits/mod.ts";
import { type BranchRegistry, defineRegistry } from "./branch_registry.ts";
import type { Fetcher } from "./fetcher.ts";
import { BUDGET_HEADER } from "./scatter_gather.ts";

/**
 * A branch's call was turned away by its downstream's bulkhead: the downstream is slow or
 * saturated and already has all the calls its limit allows.
 *
 * @example
 * ```ts
 * import { BulkheadRejectedError } from "./bulkheads.ts";
 * new BulkheadRejectedError("reviews", "queue_full", 4).message;
 * ```
 */
export class BulkheadRejectedError extends Error {
  /** The branch whose bulkhead turned the call away. */
  readonly branch: string;
  /** Why: `"queue_full"`, `"sojourn"` or `"budget"`. */
  readonly reason: string;

  /** Branch `branch`'s bulkhead, at `limit`, turned a call away for `reason`. */
  constructor(branch: string, reason: string, limit: number) {
    super(`Bulkhead of '${branch}' is full (${reason}): limit is ${limit} calls in flight`);
    this.name = "BulkheadRejectedError";
    this.branch = branch;
    this.reason = reason;
  }
}

/**
 * Options of {@linkcode Bulkheads}: those of each downstream's `AdaptiveLimiter`.
 *
 * @example
 * ```ts
 * import type { BulkheadOptions } from "./bulkheads.ts";
 * const options: BulkheadOptions = { maxLimit: 32, maxQueue: 8 };
 * ```
 */
export type BulkheadOptions = AdaptiveLimiterOptions;

/**
 * A bulkhead's default sojourn bound in ms, under overload and otherwise: the longest default
 * branch timeout (300 ms), so that in practice a call's own deadline decides how long it waits.
 *
 * @example
 * ```ts
 * import { BULKHEAD_SOJOURN_MS } from "./bulkheads.ts";
 * BULKHEAD_SOJOURN_MS; // 300
 * ```
 */
export const BULKHEAD_SOJOURN_MS = 300;

/**
 * One `AdaptiveLimiter` per branch name, and the registry wrapper that puts each branch behind
 * its own.
 *
 * Defaults differ from the inbound limiter's: a ceiling of 64 calls per downstream (the default
 * global ceiling's capacity), an initial limit at that ceiling (a healthy downstream is never the
 * bottleneck; only latency or drops bring the limit down), a queue of 8, and a sojourn bound of
 * {@linkcode BULKHEAD_SOJOURN_MS} instead of the inbound queue's 5–25 ms: a call waits while it
 * can still start within its own deadline. Turning a request away at the door costs nothing and
 * gives a fast 503; turning one of its calls away here throws away the work of its other branches
 * and fails the answer if the branch is required — measured at 2× and 4× capacity, bulkhead
 * sojourn sheds of required branches were nearly all the failed answers. Waiting longer makes the
 * request slower instead, and that latency is what brings the inbound limit down; the queue bound
 * (8) still caps the global permits a slow downstream's waiters can hold.
 *
 * The ceiling was 32, half the global one, so that a stuck downstream held at most half of it.
 * Once optional branches stopped queueing for global permits (`optionalWaitMs`), the two required
 * downstreams each needed about half the global ceiling at its capacity, and at 32 their
 * bulkheads turned required calls away as soon as it filled: 11 % of admitted answers were 502s
 * at 1× and 94 % at 2× (`exp:overload` at b197bef). A stuck downstream's limit falls instead, by
 * a tenth on every window of drops.
 *
 * The permit is held from the call to its response's headers, not while its body is read: that
 * is the downstream's latency, and reading a small JSON body is the gateway's own work.
 *
 * @example
 * ```ts
 * import { Bulkheads } from "./bulkheads.ts";
 * import { defaultRegistry } from "./branch_registry.ts";
 * import { urlFetcher } from "./fetcher.ts";
 *
 * const bulkheads = new Bulkheads({ maxLimit: 32 });
 * const registry = bulkheads.guard(defaultRegistry(urlFetcher("http://127.0.0.1:8788/")));
 * bulkheads.stats().price?.limit; // 32 (64 by default)
 * ```
 */
export class Bulkheads {
  readonly #options: BulkheadOptions;
  readonly #limiters = new Map<string, AdaptiveLimiter>();

  /** No bulkhead yet; {@linkcode guard} makes one per branch. */
  constructor(options: BulkheadOptions = {}) {
    const maxLimit = options.maxLimit ?? 64;
    this.#options = {
      maxQueue: 8,
      targetMs: Math.min(BULKHEAD_SOJOURN_MS, options.intervalMs ?? BULKHEAD_SOJOURN_MS),
      intervalMs: Math.max(BULKHEAD_SOJOURN_MS, options.targetMs ?? 0),
      ...options,
      maxLimit,
      initialLimit: options.initialLimit ?? maxLimit,
    };
    // Fail at construction, not on the first call of each branch.
    new AdaptiveLimiter(this.#options);
  }

  /** The registry with each branch's fetcher behind its downstream's bulkhead. */
  guard(registry: BranchRegistry): BranchRegistry {
    return defineRegistry(registry.map((spec) => ({
      ...spec,
      path: spec.path,
      fetcher: this.#guardFetcher(spec.name, spec.fetcher),
    })));
  }

  /** The limiter of branch `name`, created on first use. */
  limiterFor(name: string): AdaptiveLimiter {
    let limiter = this.#limiters.get(name);
    if (limiter === undefined) {
      limiter = new AdaptiveLimiter(this.#options);
      this.#limiters.set(name, limiter);
    }
    return limiter;
  }

  /** Each bulkhead's state, by branch name. */
  stats(): Record<string, AdaptiveLimiterStats> {
    return Object.fromEntries([...this.#limiters].map(([name, l]) => [name, l.stats()]));
  }

  #guardFetcher(name: string, fetcher: Fetcher): Fetcher {
    const limiter = this.limiterFor(name);
    return {
      fetch: async function bulkheadFetch(request: Request): Promise<Response> {
        // A call under the limit reads neither its budget nor its signal: on Deno, reading
        // either builds it, a tenth of what the call costs in process.
        let permit = limiter.tryAcquire();
        if (permit === undefined) {
          const header = request.headers.get(BUDGET_HEADER);
          const budgetMs = Number(header);
          const deadline = header !== null && Number.isFinite(budgetMs)
            ? performance.now() + budgetMs
            : undefined;
          try {
            permit = await limiter.acquire(1, { signal: request.signal, deadline });
          } catch (error) {
            if (!isAdmissionRejectedError(error)) throw error;
            throw new BulkheadRejectedError(name, error.reason, limiter.stats().limit);
          }
        }
        let failed = true;
        try {
          const response = await fetcher.fetch(request);
          failed = response.status >= 500;
          return response;
        } finally {
          // A timeout or a 5xx is a drop: the downstream's limit backs off even when the
          // cut-off hides how slow it really was. Not awaited: an adaptive permit is given back
          // before its release returns, and never rejects.
          void (failed ? permit.drop() : permit.release());
        }
      },
      inMemory: fetcher.inMemory,
      origin: fetcher.origin,
    };
  }
}
