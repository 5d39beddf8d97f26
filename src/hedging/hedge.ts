/**
 * `hedge`: send a second copy of a slow idempotent call and take whichever answers first ("The
 * Tail at Scale", Dean & Barroso), within a hedge budget and only on spare capacity.
 *
 * @module
 */
import type { HedgeDelay } from "./adaptive_delay.ts";
import type { HedgeBudget } from "./hedge_budget.ts";
import type { Semaphore, Timers } from "../executor/mod.ts";

/**
 * One attempt of a hedged call. `attempt` counts from 1 (the primary); an attempt must stop when
 * `signal` aborts, which happens as soon as another attempt won or the caller gave up.
 *
 * @example
 * ```ts
 * import type { HedgeAttempt } from "./hedge.ts";
 * const call: HedgeAttempt<Response> = (signal, attempt) =>
 *   fetch(`https://downstream.example/price/42?attempt=${attempt}`, { signal });
 * ```
 */
export type HedgeAttempt<T> = (signal: AbortSignal, attempt: number) => Promise<T> | T;

/**
 * What a hedge needs of a limiter: a permit if one is free right now, `undefined` otherwise,
 * without ever queueing. A hedge that waited for a permit would compete with primary calls for
 * capacity; this way hedging only uses capacity nobody else wants, and cannot amplify an
 * overload. Answer from local state only (a semaphore, permits of a leased block), never with a
 * round trip. {@linkcode spareOf} adapts a {@linkcode Semaphore}.
 *
 * @example
 * ```ts
 * import type { SpareCapacity } from "./hedge.ts";
 * let free = 2;
 * const spare: SpareCapacity = {
 *   tryAcquire: () => free > 0 ? (free--, { release: () => void free++ }) : undefined,
 * };
 * ```
 */
export interface SpareCapacity {
  /** One permit now, or `undefined`; the hedge releases it when its attempt ends. */
  tryAcquire(): { release(): unknown } | undefined;
}

/**
 * Why a hedge that was due was not sent: the hedge budget had no token, or the limiter had no
 * spare permit.
 *
 * @example
 * ```ts
 * import type { HedgeDeclined } from "./hedge.ts";
 * const reason: HedgeDeclined = "budget";
 * ```
 */
export type HedgeDeclined = "budget" | "capacity";

/**
 * Options of {@linkcode hedge}.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay } from "./adaptive_delay.ts";
 * import { HedgeBudget } from "./hedge_budget.ts";
 * import type { HedgeOptions } from "./hedge.ts";
 *
 * const options: HedgeOptions<Response> = {
 *   delay: new AdaptiveDelay({ quantile: 0.95 }),
 *   budget: new HedgeBudget({ ratio: 0.05 }),
 * };
 * ```
 */
export interface HedgeOptions<T> {
  /**
   * How long the previous attempt may run before the next is sent, in ms: a fixed number, or a
   * {@linkcode HedgeDelay} such as an `AdaptiveDelay`, which is read once per call and told the
   * primary attempt's latency.
   */
  delay: number | HedgeDelay;
  /** Most attempts, the primary included; 2 by default. 1 turns hedging off. */
  maxAttempts?: number;
  /** Send the next attempt at once when one fails before the delay is up; `false` by default. */
  hedgeOnFailure?: boolean;
  /** Tokens that hedges spend; each call deposits one primary. No limit when absent. */
  budget?: HedgeBudget;
  /** Permits a hedge must get without waiting. No gate when absent. */
  spare?: SpareCapacity;
  /** The caller's signal: aborting it aborts every attempt and rejects with its reason. */
  signal?: AbortSignal;
  /**
   * Frees a value that lost (an attempt that answered after the call was decided). By default a
   * `Response`'s body is cancelled and anything else is dropped.
   */
  release?: (loser: T) => unknown;
  /** Called when hedge number `attempt` (2, 3, …) is sent; must not throw. */
  onHedge?: (attempt: number) => void;
  /** Called when a due hedge was not sent, and why; must not throw. */
  onDeclined?: (reason: HedgeDeclined) => void;
  /** Clock of the latencies reported to an adaptive `delay`; `performance.now` by default. */
  clock?: () => number;
  /**
   * Where the delay's timeout is set; the global `setTimeout` and `clearTimeout` by default. The
   * gateway passes its request's own, which puts all of a request's timeouts on one timer.
   */
  timers?: Timers;
}

/**
 * How a hedged call ended.
 *
 * @example
 * ```ts
 * import type { HedgeResult } from "./hedge.ts";
 * const result: HedgeResult<string> = { value: "ok", winner: 2, attempts: 2 };
 * ```
 */
export interface HedgeResult<T> {
  /** The winning attempt's value. */
  value: T;
  /** Which attempt won, from 1 (the primary). */
  winner: number;
  /** How many attempts were sent. */
  attempts: number;
}

/** Reason given to the attempts that lost. */
function lostReason(): DOMException {
  return new DOMException("Cannot use this attempt as another attempt won the hedge", "AbortError");
}

/**
 * Runs `attempt(signal, 1)`; if it has not answered after `delay` ms, also runs
 * `attempt(signal, 2)` (and so on up to `maxAttempts`), and resolves with the first success.
 * The moment one attempt wins, every other attempt's signal aborts, and a value that still
 * arrives is released (a `Response` body is cancelled).
 *
 * A hedge is sent only when `budget` has a token and `spare` grants a permit at once; otherwise
 * no more hedges are sent for this call and `onDeclined` says why. A failing attempt does not
 * end the call while another is running; when all have failed the call rejects with the first
 * error that is not an `AbortError`, or the first error if all are. Only hedge idempotent calls:
 * the downstream may see every attempt through.
 *
 * Every path out (a win, the last failure, the caller's abort, even during the delay) clears the
 * delay timer, removes the abort listener, aborts the attempts still running and releases their
 * permits; nothing of the call outlives it.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay } from "./adaptive_delay.ts";
 * import { hedge } from "./hedge.ts";
 * import { HedgeBudget } from "./hedge_budget.ts";
 *
 * const delay = new AdaptiveDelay(); // one per downstream, shared by its calls
 * const budget = new HedgeBudget({ ratio: 0.05 });
 * const { value, winner, attempts } = await hedge(
 *   (signal, attempt) => fetch(`https://downstream.example/price/42?attempt=${attempt}`, { signal }),
 *   { delay, budget, signal: AbortSignal.timeout(300) },
 * );
 * ```
 */
export function hedge<T>(
  attempt: HedgeAttempt<T>,
  {
    delay,
    maxAttempts = 2,
    hedgeOnFailure = false,
    budget,
    spare,
    signal,
    release = releaseResponse,
    onHedge,
    onDeclined,
    clock = () => performance.now(),
    timers = globalThis,
  }: HedgeOptions<T>,
): Promise<HedgeResult<T>> {
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    return Promise.reject(
      new RangeError(
        `Cannot hedge as 'maxAttempts' must be a positive integer: current value is ${maxAttempts}`,
      ),
    );
  }
  const delayMs = typeof delay === "number" ? delay : delay.delayMs();
  if (!(delayMs >= 0) || !Number.isFinite(delayMs)) {
    return Promise.reject(
      new RangeError(
        `Cannot hedge as the delay must be a finite non-negative number of ms: current value is ${delayMs}`,
      ),
    );
  }
  if (signal?.aborted) return Promise.reject(signal.reason);
  budget?.deposit();
  return new Promise<HedgeResult<T>>((resolve, reject) => {
    new HedgeRace(
      attempt,
      {
        delay,
        delayMs,
        maxAttempts,
        hedgeOnFailure,
        budget,
        spare,
        signal,
        release,
        onHedge,
        onDeclined,
        clock,
        timers,
      },
      resolve,
      reject,
    ).start();
  });
}

/** {@linkcode hedge}'s options, defaults applied and the delay read. */
interface RaceOptions<T> {
  delay: number | HedgeDelay;
  delayMs: number;
  maxAttempts: number;
  hedgeOnFailure: boolean;
  budget: HedgeBudget | undefined;
  spare: SpareCapacity | undefined;
  signal: AbortSignal | undefined;
  release: (loser: T) => unknown;
  onHedge: ((attempt: number) => void) | undefined;
  onDeclined: ((reason: HedgeDeclined) => void) | undefined;
  clock: () => number;
  timers: Timers;
}

/** An attempt in flight: what aborts it, and the spare permit it holds, if any. */
interface Running {
  controller: AbortController;
  permit: { release(): unknown } | undefined;
}

/**
 * One call of {@linkcode hedge}: its attempts and its state in one object, with its steps as
 * methods rather than a closure each, since the gateway hedges a branch per request. It is its
 * caller's abort listener (`handleEvent`).
 */
class HedgeRace<T> {
  readonly #attempt: HedgeAttempt<T>;
  readonly #options: RaceOptions<T>;
  readonly #resolve: (result: HedgeResult<T>) => void;
  readonly #reject: (reason: unknown) => void;
  /** By attempt number, from 1; an entry is removed when its attempt ends. */
  readonly #running = new Map<number, Running>();
  readonly #startedAt: number;
  readonly #tryHedge = () => this.#hedgeNow();
  #sent = 0;
  #done = false;
  #stopped: boolean;
  #timer: unknown;
  #failure: { error: unknown } | undefined;

  constructor(
    attempt: HedgeAttempt<T>,
    options: RaceOptions<T>,
    resolve: (result: HedgeResult<T>) => void,
    reject: (reason: unknown) => void,
  ) {
    this.#attempt = attempt;
    this.#options = options;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#startedAt = options.clock();
    this.#stopped = options.maxAttempts === 1;
  }

  start(): void {
    this.#options.signal?.addEventListener("abort", this, { once: true });
    this.#launch(undefined);
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    const reason = this.#options.signal!.reason;
    this.#finish(() => reason);
    this.#reject(reason);
  }

  /** Ends the race; the attempts still running are aborted with `reasonOf()`. */
  #finish(reasonOf: () => unknown): void {
    this.#done = true;
    this.#options.timers.clearTimeout(this.#timer);
    this.#options.signal?.removeEventListener("abort", this);
    // Most races end with nothing else running: no abort reason (a DOMException, which records
    // a stack) is built for them.
    if (this.#running.size === 0) return;
    const reason = reasonOf();
    for (const { controller, permit } of this.#running.values()) {
      controller.abort(reason);
      permit?.release();
    }
    this.#running.clear();
  }

  #end(n: number): void {
    this.#running.get(n)?.permit?.release();
    this.#running.delete(n);
  }

  #stop(reason: HedgeDeclined): void {
    this.#stopped = true;
    this.#options.timers.clearTimeout(this.#timer);
    this.#options.onDeclined?.(reason);
  }

  #hedgeNow(): void {
    const { budget, spare } = this.#options;
    if (budget !== undefined && !budget.tryTake()) return this.#stop("budget");
    const permit = spare?.tryAcquire();
    if (spare !== undefined && permit === undefined) {
      budget?.refund();
      return this.#stop("capacity");
    }
    this.#options.onHedge?.(this.#sent + 1);
    this.#launch(permit);
  }

  #launch(permit: { release(): unknown } | undefined): void {
    const n = ++this.#sent;
    const controller = new AbortController();
    this.#running.set(n, { controller, permit });
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(this.#attempt(controller.signal, n));
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then((value) => this.#answered(n, value), (error) => this.#failed(n, error));
    const { timers, maxAttempts, delayMs } = this.#options;
    timers.clearTimeout(this.#timer);
    if (!this.#stopped && this.#sent < maxAttempts) {
      this.#timer = timers.setTimeout(this.#tryHedge, delayMs);
    }
  }

  #answered(n: number, value: T): void {
    if (this.#done) return void this.#options.release(value);
    // The primary's latency: its own, or a lower bound when it is cut off by this win.
    const { delay, clock } = this.#options;
    if ((n === 1 || this.#running.has(1)) && typeof delay !== "number") {
      delay.observe(clock() - this.#startedAt);
    }
    this.#end(n);
    this.#finish(lostReason);
    this.#resolve({ value, winner: n, attempts: this.#sent });
  }

  #failed(n: number, error: unknown): void {
    if (this.#done) return;
    this.#end(n);
    const failure = this.#failure;
    if (failure === undefined || (isAbortError(failure.error) && !isAbortError(error))) {
      this.#failure = { error };
    }
    const { hedgeOnFailure, maxAttempts } = this.#options;
    if (hedgeOnFailure && !this.#stopped && this.#sent < maxAttempts) this.#hedgeNow();
    if (this.#running.size === 0) {
      this.#finish(lostReason);
      this.#reject(this.#failure!.error);
    }
  }
}

/**
 * Adapts a {@linkcode Semaphore} to {@linkcode SpareCapacity}: a hedge takes one of its permits
 * only when one is free right now.
 *
 * @example
 * ```ts
 * import { spareOf } from "./hedge.ts";
 * import { Semaphore } from "../executor/semaphore.ts";
 *
 * const seats = new Semaphore(64);
 * const spare = spareOf(seats);
 * const permit = spare.tryAcquire(); // undefined when all 64 are taken
 * permit?.release();
 * ```
 */
export function spareOf(semaphore: Semaphore): SpareCapacity {
  return {
    tryAcquire: function trySemaphore() {
      if (!semaphore.tryAcquire(1)) return undefined;
      let held = true;
      return {
        release() {
          if (held) semaphore.release(1);
          held = false;
        },
      };
    },
  };
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError" ||
    error instanceof DOMException && error.name === "AbortError";
}

function releaseResponse(loser: unknown): void {
  if (loser instanceof Response) loser.body?.cancel().catch(() => {});
}
