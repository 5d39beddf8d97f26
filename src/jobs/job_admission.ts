/**
 * Admission of distributed jobs: backpressure as a bound on outstanding sub-tasks. A job is let
 * in only while the sub-tasks of every job still running, plus its own, fit under the bound;
 * otherwise it is refused at once with a retry hint. Built on {@linkcode PermitLedger}: each
 * admitted job holds a lease weighing its sub-task count, released when its join finalises and
 * reclaimed by itself at the job's deadline should that release never come.
 *
 * @module
 */
import { type LedgerState, PermitLedger } from "../limits/mod.ts";

/**
 * The answer to {@linkcode JobAdmission.admit}: admitted with a lease to release when the job is
 * over, refused for now (retry after `retryAfterMs`), or too large ever to fit.
 *
 * @example
 * ```ts
 * import type { AdmissionOutcome } from "./job_admission.ts";
 * const outcome: AdmissionOutcome = { kind: "refused", outstanding: 90, bound: 100, retryAfterMs: 4000 };
 * ```
 */
export type AdmissionOutcome =
  | { kind: "admitted"; leaseId: string; outstanding: number; bound: number }
  | { kind: "refused"; outstanding: number; bound: number; retryAfterMs: number }
  | { kind: "too large"; bound: number };

/**
 * What a job asks {@linkcode JobAdmission.admit} for.
 *
 * @example
 * ```ts
 * import type { AdmissionRequest } from "./job_admission.ts";
 * const request: AdmissionRequest = { jobId: "job-1", subTasks: 8, ttlMs: 30_000 };
 * ```
 */
export interface AdmissionRequest {
  /** The job, recorded as the lease's holder. */
  jobId: string;
  /** Its sub-task count: the weight it adds to the outstanding total. */
  subTasks: number;
  /** How long it may stay outstanding: its deadline plus a grace. */
  ttlMs: number;
}

/** Shortest retry hint, so that a refused client never spins. */
const MIN_RETRY_AFTER_MS = 1000;

/**
 * Bounded admission of jobs by outstanding sub-tasks; no queue of waiting jobs (a refused job
 * is told when to retry, the fast 503 of an overloaded service).
 *
 * @example
 * ```ts
 * import { JobAdmission } from "./job_admission.ts";
 *
 * const admission = new JobAdmission({ bound: 10 });
 * const first = admission.admit({ jobId: "a", subTasks: 8, ttlMs: 5000 }, 0); // admitted
 * admission.admit({ jobId: "b", subTasks: 4, ttlMs: 5000 }, 0); // refused, retryAfterMs 5000
 * if (first.kind === "admitted") admission.release(first.leaseId, 100);
 * ```
 */
export class JobAdmission {
  #ledger: PermitLedger;

  /** Admission under `bound` outstanding sub-tasks (a positive integer). */
  constructor({ bound }: { bound: number }) {
    if (!Number.isSafeInteger(bound) || bound < 1) {
      throw new RangeError(
        `Cannot create job admission as 'bound' must be a positive integer: current value is ${bound}`,
      );
    }
    this.#ledger = new PermitLedger({ capacity: bound, maxWaiters: 0 });
  }

  /**
   * Rebuilds admission from {@linkcode JobAdmission.toState}; `bound` replaces the stored one.
   *
   * @example
   * ```ts
   * import { JobAdmission } from "./job_admission.ts";
   * const state = new JobAdmission({ bound: 10 }).toState();
   * const again = JobAdmission.fromState(JSON.parse(JSON.stringify(state)), { bound: 20 });
   * ```
   */
  static fromState(state: LedgerState, { bound }: { bound: number }): JobAdmission {
    const admission = new JobAdmission({ bound });
    admission.#ledger = PermitLedger.fromState(state, { capacity: bound });
    return admission;
  }

  /** The bound on outstanding sub-tasks. */
  get bound(): number {
    return this.#ledger.capacity;
  }

  /** Sub-tasks of the jobs admitted and not yet released or expired, as of `now`. */
  outstanding(now: number): number {
    this.#ledger.advance(now);
    return this.#ledger.inUse;
  }

  /** Admits the job if its sub-tasks fit under the bound now; never queues it. */
  admit({ jobId, subTasks, ttlMs }: AdmissionRequest, now: number): AdmissionOutcome {
    const bound = this.#ledger.capacity;
    if (Number.isSafeInteger(subTasks) && subTasks > bound) return { kind: "too large", bound };
    const outcome = this.#ledger.acquire({ holder: jobId, weight: subTasks, ttlMs }, now);
    this.#ledger.takeEvents();
    const outstanding = this.#ledger.inUse;
    if (outcome.kind === "granted") {
      return { kind: "admitted", leaseId: outcome.lease.id, outstanding, bound };
    }
    // The earliest lease expiry is the latest moment room is sure to come back.
    const retryAfterMs = Math.max(MIN_RETRY_AFTER_MS, this.#ledger.nextWakeAt() - now);
    return { kind: "refused", outstanding, bound, retryAfterMs };
  }

  /** Returns a job's sub-tasks to the bound; idempotent (false when not held). */
  release(leaseId: string, now: number): boolean {
    const released = this.#ledger.release(leaseId, now);
    this.#ledger.takeEvents();
    return released;
  }

  /**
   * Returns the room of every lease `holder` holds (a job's own and those of its resends);
   * how many leases that was.
   */
  releaseHolder(holder: string, now: number): number {
    let released = 0;
    for (const lease of this.#ledger.leases()) {
      if (lease.holder === holder && this.#ledger.release(lease.id, now)) released++;
    }
    this.#ledger.takeEvents();
    return released;
  }

  /** The state to persist. */
  toState(): LedgerState {
    return this.#ledger.toState();
  }
}
