/**
 * A seeded, deterministic model of one downstream call: how long it takes and whether it fails.
 *
 * Each call is drawn independently from its own generator, seeded by hashing
 * `${seed}\0${branch}\0${key}` with 32-bit FNV-1a (over the UTF-8 bytes). That hash seeds
 * pure-rand's xoroshiro128plus, which is warmed up by {@linkcode WARM_UP_STEPS} outputs because
 * its first outputs still echo the seed (consecutive keys then correlate visibly). Every draw
 * then consumes exactly four uniforms in a fixed order — two for the latency, one for the tail,
 * one for the error — so changing `errorRate` or `tailEvery` never moves anyone's latency.
 *
 * Latency is lognormal: `medianMs * exp(sigma * z)` with `z` standard normal (Box–Muller) and
 * `sigma = ln(p99Ms / medianMs) / 2.3263` (2.3263 is the standard normal's 99th percentile),
 * so the defaults give a median of 5 ms and a p99 of 200 ms by construction. The lognormal is
 * unbounded: with the defaults about 1 call in 1,000 takes over 670 ms and 1 in 10,000 over
 * 1.8 s, before any injected tail; cap it with the caller's budget (the downstream's
 * `x-fanfare-budget-ms` header) when that matters.
 *
 * Caveat: the uniforms are bit-identical on every runtime (integer arithmetic only), but
 * `Math.log`, `Math.cos` and `Math.exp` may differ in the last bit between engines (V8 in Deno
 * and workerd, JavaScriptCore in Bun). Latencies are rounded to whole microseconds to hide that;
 * a draw landing exactly on a rounding boundary could still differ by 1 µs.
 *
 * @module
 */
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { skipN } from "pure-rand/utils/skipN";

/** Outputs discarded after seeding, so that neighbouring keys draw unrelated values. */
const WARM_UP_STEPS = 16;
/** The standard normal distribution's 99th percentile. */
const Z_99 = 2.3263478740408408;
const encoder = new TextEncoder();

/**
 * Knobs of {@linkcode createLatencyModel}; every field has a default.
 *
 * @example Reproduce a 1 % error rate with no injected tail
 * ```ts
 * import { createLatencyModel, type LatencyModelOptions } from "./latency_model.ts";
 *
 * const options: LatencyModelOptions = { seed: 7, errorRate: 0.01, tailEvery: 0 };
 * const draw = createLatencyModel(options);
 * ```
 */
export interface LatencyModelOptions {
  /** Seed shared by all draws; same seed and key give the same draw. Default 0. */
  seed?: number;
  /** Median latency in ms. Default 5. */
  medianMs?: number;
  /** 99th-percentile latency in ms, before the injected tail. Default 200. */
  p99Ms?: number;
  /** On average one call in `tailEvery` sleeps `tailMs` instead; 0 turns the tail off. Default 1000. */
  tailEvery?: number;
  /** Latency of an injected tail call in ms. Default 2000. */
  tailMs?: number;
  /** Probability in [0, 1] that a call fails. Default 0. */
  errorRate?: number;
  /** Branches that always fail, by name or by index (see {@linkcode DrawRequest.index}). */
  failBranches?: ReadonlyArray<string | number>;
}

/**
 * One call to draw for: which branch, which request, and optional per-call overrides.
 *
 * @example
 * ```ts
 * import type { DrawRequest } from "./latency_model.ts";
 *
 * const request: DrawRequest = { branch: "price", key: "sku-42#0", index: 0 };
 * ```
 */
export interface DrawRequest {
  /** Branch name, e.g. `"price"`. */
  branch: string;
  /** Identifies the call within the branch, e.g. product id plus attempt counter. */
  key: string;
  /** Position of the branch in the fan-out, matched against numeric `failBranches`. */
  index?: number;
  /** Replaces the model's `errorRate` for this call. */
  errorRate?: number;
  /** `true` forces the injected tail for this call, `false` suppresses it. */
  tail?: boolean;
}

/**
 * What a call does: sleep `latencyMs`, then succeed or fail.
 *
 * @example
 * ```ts
 * import type { Draw } from "./latency_model.ts";
 *
 * const draw: Draw = { latencyMs: 4.2, tail: false, failure: undefined };
 * ```
 */
export interface Draw {
  /** Latency in ms, rounded to microseconds; `tailMs` when `tail` is set. */
  latencyMs: number;
  /** Whether this call is an injected tail call. */
  tail: boolean;
  /** Why the call fails, or `undefined` when it succeeds. */
  failure: "error-rate" | "always-fails" | undefined;
}

/**
 * Draws the outcome of one downstream call; pure, so the same request always gives the same draw.
 *
 * @example
 * ```ts
 * import { createLatencyModel } from "./latency_model.ts";
 *
 * const draw = createLatencyModel({ seed: 1 });
 * draw({ branch: "price", key: "sku-42#0" }); // same result on every call
 * ```
 */
export type LatencyModel = (request: DrawRequest) => Draw;

/**
 * Creates a {@linkcode LatencyModel}; see the module doc for the distribution and the hashing.
 *
 * @example
 * ```ts
 * import { createLatencyModel } from "./latency_model.ts";
 *
 * const draw = createLatencyModel({ seed: 1, errorRate: 0.1, failBranches: ["reviews"] });
 * const { latencyMs, failure } = draw({ branch: "price", key: "sku-42#0" });
 * ```
 */
export function createLatencyModel({
  seed = 0,
  medianMs = 5,
  p99Ms = 200,
  tailEvery = 1000,
  tailMs = 2000,
  errorRate = 0,
  failBranches = [],
}: LatencyModelOptions = {}): LatencyModel {
  requireFinite("seed", seed);
  requirePositive("medianMs", medianMs);
  if (!(p99Ms >= medianMs)) {
    throw new RangeError(
      `Cannot create a latency model as 'p99Ms' must be at least 'medianMs' (${medianMs}): current value is ${p99Ms}`,
    );
  }
  if (!(tailEvery === 0 || tailEvery >= 1)) {
    throw new RangeError(
      `Cannot create a latency model as 'tailEvery' must be 0 or at least 1: current value is ${tailEvery}`,
    );
  }
  requireNonNegative("tailMs", tailMs);
  requireProbability("errorRate", errorRate);
  const sigma = Math.log(p99Ms / medianMs) / Z_99;
  const tailProbability = tailEvery === 0 ? 0 : 1 / tailEvery;
  const alwaysFailing = new Set(failBranches);

  return function drawLatency(request: DrawRequest): Draw {
    const rate = request.errorRate ?? errorRate;
    requireProbability("errorRate", rate);
    const rng = xoroshiro128plus(fnv1a32(`${seed}\0${request.branch}\0${request.key}`));
    skipN(rng, WARM_UP_STEPS);
    // 1 - u lies in (0, 1], so the logarithm stays finite.
    const radius = Math.sqrt(-2 * Math.log(1 - uniformFloat64(rng)));
    const z = radius * Math.cos(2 * Math.PI * uniformFloat64(rng));
    const tailRoll = uniformFloat64(rng);
    const errorRoll = uniformFloat64(rng);

    const tail = request.tail ?? tailRoll < tailProbability;
    const latencyMs = tail ? tailMs : Math.round(medianMs * Math.exp(sigma * z) * 1000) / 1000;
    const always = alwaysFailing.has(request.branch) ||
      (request.index !== undefined && alwaysFailing.has(request.index));
    const failure = always ? "always-fails" : errorRoll < rate ? "error-rate" : undefined;
    return { latencyMs, tail, failure };
  };
}

/**
 * 32-bit FNV-1a hash of a string's UTF-8 bytes, as an unsigned integer.
 *
 * @example
 * ```ts
 * import { fnv1a32 } from "./latency_model.ts";
 *
 * fnv1a32("a"); // 0xe40c292c
 * ```
 */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  return hash >>> 0;
}

function requireFinite(name: string, value: number): void {
  if (!Number.isFinite(value)) {
    throw new RangeError(
      `Cannot create a latency model as '${name}' must be a finite number: current value is ${value}`,
    );
  }
}

function requirePositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot create a latency model as '${name}' must be a positive finite number: current value is ${value}`,
    );
  }
}

function requireNonNegative(name: string, value: number): void {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot create a latency model as '${name}' must be a non-negative finite number: current value is ${value}`,
    );
  }
}

function requireProbability(name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) {
    throw new RangeError(
      `Cannot draw a latency as '${name}' must be a probability in [0, 1]: current value is ${value}`,
    );
  }
}
