/**
 * Hedged calls: `hedge()` starts a second attempt when the first is slow, under a token
 * budget and a fixed or adaptive delay, and aborts the loser.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay, hedge, HedgeBudget } from "./mod.ts";
 * const { value, winner } = await hedge(
 *   (signal, attempt) => fetch(`https://downstream.example/price/42?attempt=${attempt}`, { signal }),
 *   { delay: new AdaptiveDelay(), budget: new HedgeBudget({ ratio: 0.05 }) },
 * );
 * ```
 *
 * @module
 */

export {
  hedge,
  type HedgeAttempt,
  type HedgeDeclined,
  type HedgeOptions,
  type HedgeResult,
  type SpareCapacity,
  spareOf,
} from "./hedge.ts";
export { HedgeBudget, type HedgeBudgetOptions } from "./hedge_budget.ts";
export { AdaptiveDelay, type AdaptiveDelayOptions, type HedgeDelay } from "./adaptive_delay.ts";
