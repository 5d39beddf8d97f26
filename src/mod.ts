/**
 * fanfare: bounded scatter-gather for edge runtimes. This entry point re-exports every
 * subsystem; import `./executor/mod.ts`, `./limits/mod.ts`, `./hedging/mod.ts`,
 * `./resilience/mod.ts`, `./streams/mod.ts`, `./gateway/mod.ts`, `./metrics/mod.ts`, `./jobs/mod.ts`,
 * `./tracing/mod.ts` or `./aggregate/mod.ts` to load only one.
 *
 * @example
 * ```ts
 * import { fanOut } from "./mod.ts";
 * const { values } = await fanOut([1, 2, 3], async (n) => n * 2, { limit: 2 });
 * ```
 *
 * @module
 */

export * from "./executor/mod.ts";
export * from "./limits/mod.ts";
export * from "./hedging/mod.ts";
export * from "./resilience/mod.ts";
export * from "./streams/mod.ts";
export * from "./metrics/mod.ts";
export * from "./gateway/mod.ts";
export * from "./jobs/mod.ts";
export * from "./tracing/mod.ts";
export * from "./aggregate/mod.ts";
