/**
 * `CircuitBreaker`: a per-downstream breaker as a pure state machine on an injected clock, after
 * cockatiel's `CircuitBreakerPolicy` and Polly's circuit breaker.
 *
 * @module
 */

/**
 * Where a breaker stands: `closed` lets every call through, `open` lets none through, and
 * `half-open` lets a few probes through to decide between the two.
 *
 * @example
 * ```ts
 * import type { CircuitState } from "./circuit_breaker.ts";
 * const state: CircuitState = "half-open";
 * ```
 */
export type CircuitState = "closed" | "open" | "half-open";

/**
 * When a closed breaker opens. `consecutive`: after `threshold` failures in a row (cockatiel's
 * `ConsecutiveBreaker`). `proportional`: when at least `minimumCalls` calls settled in the last
 * `windowMs` and the share of failures among them is at least `threshold` (cockatiel's
 * `SamplingBreaker`, Polly's `FailureRatio` + `MinimumThroughput` + `SamplingDuration`).
 *
 * @example
 * ```ts
 * import type { FailureMode } from "./circuit_breaker.ts";
 * const strict: FailureMode = { kind: "consecutive", threshold: 5 };
 * const ratio: FailureMode = { kind: "proportional", threshold: 0.5, minimumCalls: 20, windowMs: 10_000 };
 * ```
 */
export type FailureMode =
  | { readonly kind: "consecutive"; readonly threshold: number }
  | {
    readonly kind: "proportional";
    readonly threshold: number;
    readonly minimumCalls: number;
    readonly windowMs: number;
  };

/**
 * Options of {@linkcode CircuitBreaker}; all optional.
 *
 * @example
 * ```ts
 * import type { CircuitBreakerOptions } from "./circuit_breaker.ts";
 * const options: CircuitBreakerOptions = { failures: { kind: "consecutive", threshold: 5 }, openMs: 5_000 };
 * ```
 */
export interface CircuitBreakerOptions {
  /** When to open; five consecutive failures by default. */
  failures?: FailureMode;
  /** How long the breaker stays open before it lets a probe through, in ms; 5,000 by default. */
  openMs?: number;
  /** Probes in flight at once while half-open; 1 by default. */
  probes?: number;
  /** The clock, in ms; `performance.now` by default (tests pass a counter). */
  clock?: () => number;
  /** Told every transition, after it happened; must not throw. */
  onStateChange?: (to: CircuitState, from: CircuitState) => void;
}

/**
 * A call let through by {@linkcode CircuitBreaker.tryEnter}: report how it ended, once. Only
 * the first report counts; `release()` is for a call that ended without saying anything about
 * the downstream (the caller gave up, a hedge lost), which frees a probe slot and counts nothing.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "./circuit_breaker.ts";
 * const ticket = new CircuitBreaker().tryEnter();
 * ticket?.success();
 * ```
 */
export interface CircuitTicket {
  /** The downstream answered. */
  success(): void;
  /** The downstream failed (an error status, a reset, a timeout). */
  failure(): void;
  /** The call ended without a verdict on the downstream. */
  release(): void;
}

const BUCKETS = 10;

/**
 * A circuit breaker: closed, it lets every call through and watches the outcomes; once they
 * meet its {@linkcode FailureMode} it opens and refuses every call for `openMs`; the first call
 * after that moves it to half-open and goes through as a probe (up to `probes` of them at once,
 * everything else still refused); a probe's success closes it, a probe's failure opens it again
 * for another `openMs`.
 *
 * It is pure state: it reads time only from `clock`, starts no timer and holds no promise, so it
 * is deterministic under a fake clock and costs nothing while idle. An outcome counts only in the
 * state period its call entered in: a slow call let through while closed that fails after the
 * breaker opened changes nothing, and neither does a probe that answers after another probe
 * already decided. A probe that never reports (its ticket dropped) stops holding its slot after
 * `openMs`, so a lost probe cannot keep the breaker half-open forever.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "./circuit_breaker.ts";
 *
 * let now = 0;
 * const breaker = new CircuitBreaker({
 *   failures: { kind: "consecutive", threshold: 2 },
 *   openMs: 1_000,
 *   clock: () => now,
 * });
 * breaker.tryEnter()?.failure();
 * breaker.tryEnter()?.failure();
 * breaker.state; // "open"
 * breaker.tryEnter(); // undefined: refused without calling
 * now = 1_000;
 * breaker.tryEnter()?.success(); // the probe
 * breaker.state; // "closed"
 * ```
 */
export class CircuitBreaker {
  #mode: FailureMode;
  #openMs: number;
  #probes: number;
  #clock: () => number;
  #onStateChange?: (to: CircuitState, from: CircuitState) => void;
  #state: CircuitState = "closed";
  /** Bumped on every transition; a ticket's outcome counts only in its own period. */
  #period = 0;
  #openedAt = 0;
  #consecutive = 0;
  /** Proportional mode: per time bucket, [bucket number, successes, failures]. */
  #buckets: [number, number, number][] = [];
  /** Half-open: when each probe in flight started. */
  #probeStarts = new Map<number, number>();
  #nextProbe = 0;
  #entered: Record<CircuitState, number> = { closed: 0, open: 0, "half-open": 0 };

  /** A closed breaker. */
  constructor(
    {
      failures = { kind: "consecutive", threshold: 5 },
      openMs = 5_000,
      probes = 1,
      clock = () => performance.now(),
      onStateChange,
    }: CircuitBreakerOptions = {},
  ) {
    checkMode(failures);
    if (!(openMs > 0) || !Number.isFinite(openMs)) {
      throw new RangeError(
        `Cannot create a CircuitBreaker as 'openMs' must be a positive finite number: current value is ${openMs}`,
      );
    }
    if (!Number.isSafeInteger(probes) || probes < 1) {
      throw new RangeError(
        `Cannot create a CircuitBreaker as 'probes' must be a positive integer: current value is ${probes}`,
      );
    }
    this.#mode = failures;
    this.#openMs = openMs;
    this.#probes = probes;
    this.#clock = clock;
    this.#onStateChange = onStateChange;
  }

  /** The state as of the last call or report (an open breaker turns half-open on a call). */
  get state(): CircuitState {
    return this.#state;
  }

  /** How many times the breaker entered each state so far (for metrics read at scrape time). */
  get transitions(): Readonly<Record<CircuitState, number>> {
    return { ...this.#entered };
  }

  /** While open: ms until a call would be let through as a probe; 0 otherwise. */
  retryAfterMs(): number {
    if (this.#state !== "open") return 0;
    return Math.max(0, this.#openedAt + this.#openMs - this.#clock());
  }

  /**
   * Lets a call through and returns its ticket, or returns `undefined` when the breaker refuses
   * it (open, or half-open with every probe slot taken). A refused call must not be sent.
   */
  tryEnter(): CircuitTicket | undefined {
    const now = this.#clock();
    if (this.#state === "open") {
      if (now < this.#openedAt + this.#openMs) return undefined;
      this.#move("half-open");
    }
    if (this.#state === "half-open") return this.#tryProbe(now);
    return this.#ticket(this.#period, undefined);
  }

  #tryProbe(now: number): CircuitTicket | undefined {
    for (const [id, startedAt] of this.#probeStarts) {
      if (now >= startedAt + this.#openMs) this.#probeStarts.delete(id);
    }
    if (this.#probeStarts.size >= this.#probes) return undefined;
    const id = this.#nextProbe++;
    this.#probeStarts.set(id, now);
    return this.#ticket(this.#period, id);
  }

  #ticket(period: number, probe: number | undefined): CircuitTicket {
    let settled = false;
    const report = (outcome: "success" | "failure" | "release") => {
      if (settled) return;
      settled = true;
      if (period !== this.#period) return;
      if (probe !== undefined) this.#probeEnded(probe, outcome);
      else if (outcome !== "release") this.#closedOutcome(outcome === "failure");
    };
    return {
      success: () => report("success"),
      failure: () => report("failure"),
      release: () => report("release"),
    };
  }

  #probeEnded(probe: number, outcome: "success" | "failure" | "release"): void {
    this.#probeStarts.delete(probe);
    if (outcome === "success") this.#move("closed");
    else if (outcome === "failure") this.#open(this.#clock());
  }

  #closedOutcome(failed: boolean): void {
    const mode = this.#mode;
    if (mode.kind === "consecutive") {
      this.#consecutive = failed ? this.#consecutive + 1 : 0;
      if (this.#consecutive >= mode.threshold) this.#open(this.#clock());
      return;
    }
    const now = this.#clock();
    const width = mode.windowMs / BUCKETS;
    const bucket = Math.floor(now / width);
    // Keep only the buckets that overlap the window ending now.
    this.#buckets = this.#buckets.filter(([b]) => b > bucket - BUCKETS);
    let last = this.#buckets.at(-1);
    if (last === undefined || last[0] !== bucket) this.#buckets.push(last = [bucket, 0, 0]);
    last[failed ? 2 : 1]++;
    if (!failed) return;
    let calls = 0;
    let failures = 0;
    for (const [, ok, bad] of this.#buckets) {
      calls += ok + bad;
      failures += bad;
    }
    if (calls >= mode.minimumCalls && failures >= mode.threshold * calls) this.#open(now);
  }

  #open(now: number): void {
    this.#openedAt = now;
    this.#move("open");
  }

  #move(to: CircuitState): void {
    const from = this.#state;
    this.#state = to;
    this.#entered[to]++;
    this.#period++;
    this.#consecutive = 0;
    this.#buckets = [];
    this.#probeStarts.clear();
    this.#onStateChange?.(to, from);
  }
}

function checkMode(mode: FailureMode): void {
  const fail = (field: string, must: string, value: unknown) => {
    throw new RangeError(
      `Cannot create a CircuitBreaker as 'failures.${field}' must be ${must}: current value is ${value}`,
    );
  };
  if (mode?.kind === "consecutive") {
    if (!Number.isSafeInteger(mode.threshold) || mode.threshold < 1) {
      fail("threshold", "a positive integer", mode.threshold);
    }
  } else if (mode?.kind === "proportional") {
    if (!(mode.threshold > 0 && mode.threshold <= 1)) {
      fail("threshold", "in (0, 1]", mode.threshold);
    }
    if (!Number.isSafeInteger(mode.minimumCalls) || mode.minimumCalls < 1) {
      fail("minimumCalls", "a positive integer", mode.minimumCalls);
    }
    if (!(mode.windowMs > 0) || !Number.isFinite(mode.windowMs)) {
      fail("windowMs", "a positive finite number", mode.windowMs);
    }
  } else {fail(
      "kind",
      `"consecutive" or "proportional"`,
      JSON.stringify((mode as { kind?: unknown })?.kind),
    );}
}
