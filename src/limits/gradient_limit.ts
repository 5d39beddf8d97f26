/**
 * `GradientLimit`: a concurrency limit learned from latency — how many requests may be in flight
 * at once before they start to queue somewhere (an event loop, a socket, a downstream). A pure
 * state machine: it reads no clock and starts no timer; the caller hands it each sample with
 * the time it was taken.
 *
 * ## Why this algorithm
 *
 * Three families were on the table, from Netflix's concurrency-limits and Envoy's
 * adaptive-concurrency filter:
 *
 * - **AIMD** grows by one per success and halves on a drop (a timeout, a rejection). It reacts
 *   to failures only, so it lets latency climb all the way to the budget before it backs off:
 *   by then every admitted request is late. Rejected as the primary signal.
 * - **Vegas** estimates the queue as `limit × (1 − minRtt / rtt)` against the *minimum* latency
 *   ever seen (re-probed now and then). Our requests join five downstreams whose latency is
 *   heavy-tailed (median 5 ms, p99 200 ms each): the minimum of a request's latency is a fraction
 *   of its typical value even on an idle machine, so Vegas reads noise as queueing and pins the
 *   limit low. Envoy's variant measures its baseline at a pinned concurrency of 3 for a while
 *   every minute — shedding healthy traffic on a timer to learn a number.
 * - **Gradient2** (Netflix's default) compares a short-term latency with a long-term average of
 *   itself: `gradient = tolerance × long / short`, clamped to [0.5, 1], then
 *   `limit ← limit × gradient + √limit` and smoothed. No probing, and the baseline is a typical
 *   latency, not an extreme one. (Here only a fall is smoothed; see `smoothing`.)
 *
 * So: Gradient2's update, with two changes taken from Envoy. (1) The short-term latency is the
 * **median of a window** of samples (at least `windowSamples` of them and `minWindowMs` long), as
 * Envoy aggregates its sample window, instead of each sample: one request's latency is the max
 * of five heavy-tailed draws, and per-sample updates would chase that noise. (2) The long-term
 * baseline is an **asymmetric average**: it follows a drop in latency quickly (`recovery`) and a
 * rise slowly (`drift`), so a sustained overload does not teach the limiter that slow is normal
 * (Gradient2's own fix is to decay the long average once it is twice the short one; this is the
 * same idea applied all the time). And from Gradient2 again: a window in which the limit was
 * not used (at most half of it in flight) does not raise it, so an idle gateway does not grow
 * an unearned limit; and the limit stays within [`minLimit`, `maxLimit`]. From AIMD, one
 * thing: a window where more than `dropShare` of the requests were dropped (timed out, failed)
 * backs off multiplicatively whatever its median says — a gateway's latency is capped by the
 * timeouts that cut it, so past that point latency stops rising and only drops tell.
 *
 * @module
 */

/**
 * Options of {@linkcode GradientLimit}. Every field has a default fit for a gateway whose
 * requests take tens of ms.
 *
 * @example
 * ```ts
 * import type { GradientLimitOptions } from "./gradient_limit.ts";
 * const options: GradientLimitOptions = { initialLimit: 20, maxLimit: 200, tolerance: 1.5 };
 * ```
 */
export interface GradientLimitOptions {
  /** The limit before any sample; 20 by default (Netflix's default). */
  initialLimit?: number;
  /** Never below this; 1 by default. */
  minLimit?: number;
  /** Never above this: the ceiling; 1000 by default. */
  maxLimit?: number;
  /**
   * Latency may reach `tolerance ×` its baseline before the limit falls; 4 by default (Netflix's
   * Gradient2 uses 1.5 on steadier latencies; ours is the slowest of five heavy-tailed branches
   * on a shared machine, and a window median 1.5× its baseline is common without any queue). At 2,
   * `exp:overload` saw the gateway's own CPU at capacity double the median and the limit fall
   * below what the gateway sustained: half the requests shed at 1×, 28 % goodput at 4×; at 4,
   * 66 % and 62 %, with admitted requests' p99 still about half their 1 s budget up to 4×.
   */
  tolerance?: number;
  /**
   * Weight of a lower target limit against the current one, in (0, 1]; 0.2 by default. Only the
   * fall is smoothed: growth by `√limit` applies whole, so a limit cut by a passing stall (a step
   * up in load, a GC pause) climbs back within about a second instead of four, the time in which
   * `exp:overload-steps` saw it shed most of what it shed.
   */
  smoothing?: number;
  /** A window closes once it holds this many samples…; 20 by default. */
  windowSamples?: number;
  /** …and spans at least this many ms; 25 by default. */
  minWindowMs?: number;
  /**
   * Weight of a window's median in the baseline when it is higher; 0.005 by default. Under a
   * sustained overload the limiter holds windows near `tolerance ×` the baseline, so this is
   * how fast it would let latency creep: at 25 windows a second, about 6 % a second.
   */
  drift?: number;
  /** Weight of a window's median in the baseline when it is lower; 0.3 by default. */
  recovery?: number;
  /**
   * Share of a window's samples that may be drops (timeouts, 5xx) before the window counts as
   * overloaded whatever its latency; 0.1 by default.
   */
  dropShare?: number;
}

/**
 * The state of a {@linkcode GradientLimit}, for gauges and tests.
 *
 * @example
 * ```ts
 * import type { GradientLimitState } from "./gradient_limit.ts";
 * const state: GradientLimitState = { limit: 20, baselineMs: 30, lastWindowMs: 31, windows: 4 };
 * ```
 */
export interface GradientLimitState {
  /** The current limit, a whole number in [minLimit, maxLimit]. */
  limit: number;
  /** The long-term latency the windows are compared with; `undefined` before the first window. */
  baselineMs: number | undefined;
  /** The median of the last closed window; `undefined` before the first. */
  lastWindowMs: number | undefined;
  /** Windows closed so far. */
  windows: number;
}

/**
 * A concurrency limit that rises while latency stays near its baseline and falls when latency
 * climbs. Feed it one sample per finished request; read `limit`.
 *
 * @example
 * ```ts
 * import { GradientLimit } from "./gradient_limit.ts";
 *
 * const limit = new GradientLimit({ initialLimit: 10, maxLimit: 100 });
 * let now = 0;
 * for (let i = 0; i < 200; i++) {
 *   now += 5;
 *   limit.onSample({ latencyMs: 20, inFlight: limit.limit, now });
 * }
 * limit.limit > 10; // true: healthy latency while the limit was in use raised it
 * ```
 */
export class GradientLimit {
  readonly #min: number;
  readonly #max: number;
  readonly #tolerance: number;
  readonly #smoothing: number;
  readonly #windowSamples: number;
  readonly #minWindowMs: number;
  readonly #drift: number;
  readonly #recovery: number;
  /** Unrounded, so that many small steps add up. */
  #estimate: number;
  #baseline: number | undefined;
  #lastWindow: number | undefined;
  #windows = 0;
  #window: number[] = [];
  #windowStart: number | undefined;
  #maxInFlight = 0;
  #drops = 0;
  readonly #dropShare: number;

  /** A limit starting at `initialLimit`. */
  constructor(
    {
      initialLimit = 20,
      minLimit = 1,
      maxLimit = 1000,
      tolerance = 4,
      smoothing = 0.2,
      windowSamples = 20,
      minWindowMs = 25,
      drift = 0.005,
      recovery = 0.3,
      dropShare = 0.1,
    }: GradientLimitOptions = {},
  ) {
    positiveInteger("minLimit", minLimit);
    positiveInteger("maxLimit", maxLimit);
    positiveInteger("windowSamples", windowSamples);
    if (minLimit > maxLimit) {
      throw new RangeError(
        `Cannot create a gradient limit as 'minLimit' must not exceed 'maxLimit' (${maxLimit}): current value is ${minLimit}`,
      );
    }
    if (!(initialLimit >= minLimit && initialLimit <= maxLimit)) {
      throw new RangeError(
        `Cannot create a gradient limit as 'initialLimit' must be in [${minLimit}, ${maxLimit}]: current value is ${initialLimit}`,
      );
    }
    if (!(tolerance >= 1) || !Number.isFinite(tolerance)) {
      throw new RangeError(
        `Cannot create a gradient limit as 'tolerance' must be a finite number ≥ 1: current value is ${tolerance}`,
      );
    }
    for (
      const [name, value] of [["smoothing", smoothing], ["drift", drift], [
        "recovery",
        recovery,
      ]] as const
    ) {
      if (!(value > 0 && value <= 1)) {
        throw new RangeError(
          `Cannot create a gradient limit as '${name}' must be in (0, 1]: current value is ${value}`,
        );
      }
    }
    if (!(minWindowMs >= 0) || !Number.isFinite(minWindowMs)) {
      throw new RangeError(
        `Cannot create a gradient limit as 'minWindowMs' must be a finite number ≥ 0: current value is ${minWindowMs}`,
      );
    }
    this.#min = minLimit;
    this.#max = maxLimit;
    this.#tolerance = tolerance;
    this.#smoothing = smoothing;
    this.#windowSamples = windowSamples;
    this.#minWindowMs = minWindowMs;
    this.#drift = drift;
    this.#recovery = recovery;
    this.#estimate = initialLimit;
    this.#dropShare = dropShare;
  }

  /** The current limit: a whole number in [`minLimit`, `maxLimit`]. */
  get limit(): number {
    return Math.max(this.#min, Math.min(this.#max, Math.floor(this.#estimate)));
  }

  /** The ceiling the limit never exceeds. */
  get maxLimit(): number {
    return this.#max;
  }

  /** The long-term latency in ms, once one window has closed. */
  get baselineMs(): number | undefined {
    return this.#baseline;
  }

  /**
   * Records one finished request: its `latencyMs` (admission to answer, queueing excluded), the
   * requests in flight when it started (`inFlight`, itself included), the time `now` in ms, and
   * whether it was `dropped` (timed out or failed: its latency is then a cut-off, not a
   * measurement). Returns the limit, changed when this sample closed a window.
   */
  onSample(
    { latencyMs, inFlight, now, dropped = false }: {
      latencyMs: number;
      inFlight: number;
      now: number;
      dropped?: boolean;
    },
  ): number {
    if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) return this.limit;
    this.#windowStart ??= now;
    this.#window.push(latencyMs);
    if (dropped) this.#drops++;
    this.#maxInFlight = Math.max(this.#maxInFlight, inFlight);
    if (
      this.#window.length >= this.#windowSamples && now - this.#windowStart >= this.#minWindowMs
    ) {
      this.#closeWindow();
    }
    return this.limit;
  }

  /**
   * Backs off as a window of drops does (the limit × (1 − smoothing / 2)), on a sign of
   * overload that is not a request's latency: the gateway's own event loop running late. A
   * `severity` above 1 (how many times over its bound that sign is) backs off further, to the
   * limit ÷ severity, but never below half of it. Returns the limit.
   */
  backOff(severity = 1): number {
    const factor = Math.max(0.5, Math.min(1 - this.#smoothing / 2, 1 / severity));
    this.#estimate = Math.max(this.#min, this.#estimate * factor);
    return this.limit;
  }

  /** The limit, baseline and last window, for gauges and tests. */
  state(): GradientLimitState {
    return {
      limit: this.limit,
      baselineMs: this.#baseline,
      lastWindowMs: this.#lastWindow,
      windows: this.#windows,
    };
  }

  #closeWindow(): void {
    const short = median(this.#window);
    const used = this.#maxInFlight * 2 >= this.limit;
    const dropping = this.#drops > this.#dropShare * this.#window.length;
    this.#drops = 0;
    this.#window = [];
    this.#windowStart = undefined;
    this.#maxInFlight = 0;
    this.#windows++;
    this.#lastWindow = short;
    // Sub-millisecond medians (a downstream answering from memory) would make the ratio
    // jitter; latency below 1 ms is not a queue worth reacting to.
    const shortMs = Math.max(1, short);
    if (dropping) {
      // Latency is capped by the timeouts that cut it: it says nothing, and must not teach the
      // baseline. Many drops are overload in themselves: back off as AIMD would.
      this.backOff();
      return;
    }
    if (this.#baseline === undefined) {
      this.#baseline = shortMs;
      return;
    }
    const weight = shortMs > this.#baseline ? this.#drift : this.#recovery;
    this.#baseline += weight * (shortMs - this.#baseline);
    const gradient = Math.max(0.5, Math.min(1, (this.#tolerance * this.#baseline) / shortMs));
    // An unused limit may fall but not rise: it has not been shown to be safe.
    if (gradient >= 1 && !used) return;
    // Within tolerance, grow by √limit of headroom (Gradient2's queue allowance), unsmoothed;
    // beyond it, shrink in proportion, smoothed and without headroom, which would otherwise hold
    // a small limit up (at 4, halving plus √4 is 4 again).
    const next = gradient < 1
      ? this.#estimate * (1 - this.#smoothing) + this.#estimate * gradient * this.#smoothing
      : this.#estimate + Math.sqrt(this.#estimate);
    this.#estimate = Math.max(this.#min, Math.min(this.#max, next));
  }
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const mid = values.length >> 1;
  return values.length % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create a gradient limit as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
}
