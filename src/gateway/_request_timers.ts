/**
 * `RequestTimers`: every timeout of one request (its budget, its branches' own deadlines, its
 * hedges' delays) on a single `setTimeout`.
 *
 * Why: Deno 2.9's `setTimeout` builds a Node-style `Timeout` each call, which profiles of
 * `bench:overhead` showed among a request's costs; a product request of the `npm start` defaults
 * armed five (one per hedged branch, one for the branches' deadlines, one for the budget). Here
 * a request arms one, at the earliest time anything of it is due, once per turn of the event
 * loop: timeouts set in the same turn (a fan-out starts its branches in one) share it. It stays
 * per request on purpose: on Workers a timer belongs to the request that set it.
 *
 * @module
 */

import { DeadlineTimer } from "../executor/mod.ts";

/** What {@linkcode RequestTimers.setTimeout} returns: the handle to clear. */
interface Entry {
  at: number;
  run: () => void;
}

/**
 * Timeouts of one request on one `setTimeout`, with the shape of the global pair (a `Timers`
 * of `hedge()`). Close it when the request is answered: it drops what is left and arms nothing
 * after.
 *
 * @example
 * ```ts
 * import { RequestTimers } from "./_request_timers.ts";
 * const timers = new RequestTimers();
 * const hedgeAt = timers.setTimeout(() => console.log("hedge"), 20);
 * timers.setTimeout(() => console.log("deadline"), 200);
 * timers.clearTimeout(hedgeAt);
 * timers.close();
 * ```
 */
export class RequestTimers {
  #entries: Entry[] = [];
  #timer = new DeadlineTimer(() => this.#fire());
  #armQueued = false;
  #closed = false;

  /** Runs `run` after `delayMs`, unless cleared first or the timers are closed. */
  setTimeout(run: () => void, delayMs: number): Entry {
    const entry = { at: performance.now() + Math.max(0, delayMs), run };
    if (this.#closed) return entry;
    this.#entries.push(entry);
    // Armed once this turn's timeouts are all in: a fan-out sets several in one turn.
    if (!this.#armQueued && entry.at < this.#timer.at) {
      this.#armQueued = true;
      queueMicrotask(this.#arm);
    }
    return entry;
  }

  /** Cancels a timeout; one already run or cleared (or `undefined`) changes nothing. */
  clearTimeout(entry: unknown): void {
    const index = this.#entries.indexOf(entry as Entry);
    if (index === -1) return;
    this.#entries.splice(index, 1);
    // A timer armed for an earlier entry is left to fire and re-arm: cheaper than moving it.
    if (this.#entries.length === 0) this.#timer.clear();
  }

  /** Drops every timeout left; later ones are never run. */
  close(): void {
    this.#closed = true;
    this.#entries = [];
    this.#timer.clear();
  }

  /** Arms the timer by the earliest entry (it only ever moves earlier). */
  #arm = (): void => {
    this.#armQueued = false;
    let next = Infinity;
    for (const entry of this.#entries) if (entry.at < next) next = entry.at;
    this.#timer.armBy(next);
  };

  #fire(): void {
    const now = performance.now();
    const due = this.#entries.filter((entry) => entry.at <= now);
    if (due.length > 0) this.#entries = this.#entries.filter((entry) => entry.at > now);
    // In the order they fell due, when a late firing finds several.
    if (due.length > 1) due.sort((a, b) => a.at - b.at);
    for (const entry of due) entry.run();
    this.#arm();
  }
}
