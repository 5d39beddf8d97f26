/**
 * Per-branch counters of the simulated downstream: calls served, in flight, aborted by the client.
 *
 * @module
 */

/**
 * Counters of one branch.
 *
 * @example
 * ```ts
 * import type { BranchCounters } from "./downstream_stats.ts";
 *
 * const idle: BranchCounters = { served: 0, inFlight: 0, aborted: 0 };
 * ```
 */
export interface BranchCounters {
  /** Calls answered (with any status) to a client that was still waiting. */
  served: number;
  /** Calls started and not yet finished. */
  inFlight: number;
  /** Calls whose client aborted before the answer. */
  aborted: number;
}

/**
 * Counts calls per branch. A call is `start`ed once and then `finish`ed once, as served or aborted.
 *
 * @example
 * ```ts
 * import { DownstreamStats } from "./downstream_stats.ts";
 *
 * const stats = new DownstreamStats();
 * stats.start("price");
 * stats.finish("price", "served");
 * stats.snapshot(); // { price: { served: 1, inFlight: 0, aborted: 0 } }
 * ```
 */
export class DownstreamStats {
  #branches = new Map<string, BranchCounters>();
  #maxBranches: number;

  /**
   * Counters for at most `maxBranches` branch names (64 by default); calls to any further name
   * are counted under `(other)`, so that requests naming junk branches cannot grow the map.
   */
  constructor({ maxBranches = 64 }: { maxBranches?: number } = {}) {
    this.#maxBranches = maxBranches;
  }

  /** Records that a call to `branch` began. */
  start(branch: string): void {
    this.#counters(branch).inFlight++;
  }

  /** Records how a call to `branch` that was `start`ed ended. */
  finish(branch: string, outcome: "served" | "aborted"): void {
    const counters = this.#counters(branch);
    if (counters.inFlight === 0) {
      throw new RangeError(
        `Cannot finish a call to branch '${branch}' as none is in flight: current value is 0`,
      );
    }
    counters.inFlight--;
    counters[outcome]++;
  }

  /** A copy of every branch's counters, keyed by branch name. */
  snapshot(): Record<string, BranchCounters> {
    const copy: Record<string, BranchCounters> = {};
    for (const [branch, counters] of this.#branches) copy[branch] = { ...counters };
    return copy;
  }

  /**
   * Zeroes `served` and `aborted`. Calls still in flight stay counted, so that their `finish`
   * keeps `inFlight` exact.
   */
  reset(): void {
    for (const [branch, { inFlight }] of this.#branches) {
      if (inFlight === 0) this.#branches.delete(branch);
      else this.#branches.set(branch, { served: 0, inFlight, aborted: 0 });
    }
  }

  #counters(branch: string): BranchCounters {
    if (!this.#branches.has(branch) && this.#branches.size >= this.#maxBranches) {
      branch = OTHER;
    }
    let counters = this.#branches.get(branch);
    if (counters === undefined) {
      counters = { served: 0, inFlight: 0, aborted: 0 };
      this.#branches.set(branch, counters);
    }
    return counters;
  }
}

/** Where calls to branch names past the bound are counted. */
const OTHER = "(other)";
