/**
 * Exponential backoff with full jitter, for retries and worker restarts.
 *
 * @module
 */

/**
 * Options of {@linkcode fullJitter}; all optional.
 *
 * @example
 * ```ts
 * import type { BackoffOptions } from "./backoff.ts";
 * const options: BackoffOptions = { baseMs: 10, capMs: 1_000 };
 * ```
 */
export interface BackoffOptions {
  /** The ceiling of the first wait, in ms; 10 by default. */
  baseMs?: number;
  /** No wait is longer than this, in ms; 1,000 by default. */
  capMs?: number;
  /** Uniform draws in [0, 1); `Math.random` by default (pass a seeded one for repeatable runs). */
  random?: () => number;
}

/**
 * How long to wait before retry number `retry` (1 for the first retry), in ms.
 *
 * @example
 * ```ts
 * import type { Backoff } from "./backoff.ts";
 * const fixed: Backoff = () => 50;
 * ```
 */
export type Backoff = (retry: number) => number;

/**
 * Exponential backoff with full jitter: retry `n` waits a uniform draw from
 * `[0, min(capMs, baseMs × 2^(n-1)))`. Of the jitter schemes compared in Marc Brooker's
 * "Exponential Backoff and Jitter" (AWS Architecture Blog), full jitter spreads the retries of
 * many clients that failed together the most, for the least total work; its price is that a
 * single wait may be near zero.
 *
 * @example
 * ```ts
 * import { fullJitter } from "./backoff.ts";
 * const backoff = fullJitter({ baseMs: 10, capMs: 1_000, random: () => 0.5 });
 * backoff(1); // 5
 * backoff(3); // 20
 * backoff(20); // 500: capped at 1,000 before the jitter
 * ```
 */
export function fullJitter(
  { baseMs = 10, capMs = 1_000, random = Math.random }: BackoffOptions = {},
): Backoff {
  if (!(baseMs >= 0) || !Number.isFinite(baseMs)) {
    throw new RangeError(
      `Cannot create a backoff as 'baseMs' must be a finite non-negative number: current value is ${baseMs}`,
    );
  }
  if (!(capMs >= baseMs) || !Number.isFinite(capMs)) {
    throw new RangeError(
      `Cannot create a backoff as 'capMs' must be a finite number of at least 'baseMs' (${baseMs}): current value is ${capMs}`,
    );
  }
  return function fullJitterBackoff(retry: number): number {
    // 2 ** 1024 is Infinity, and 0 × Infinity is NaN: the exponent stops well before.
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, retry - 1), 1000));
    return random() * ceiling;
  };
}
