/**
 * Streams: `mergeStreams` reads several async sources (for example the results of several
 * `fanOutStream`s) as one, by priority with aging or by weight, with backpressure and one
 * cancellation for all.
 *
 * @example
 * ```ts
 * import { mergeStreams } from "./mod.ts";
 * async function* from(...items: string[]) { yield* items; }
 * const merged = mergeStreams([from("a1", "a2"), from("b1")], { weights: [2, 1] });
 * for await (const { source, value } of merged) console.log(source, value);
 * ```
 *
 * @module
 */

export {
  type Merged,
  type MergedStream,
  type MergeOptions,
  type MergeSource,
  mergeStreams,
} from "./merge_streams.ts";
