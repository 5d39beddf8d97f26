/**
 * The pure scheduling rules of `mergeStreams`: which ready source gives the next item.
 *
 * @module
 */

/**
 * Chooses the next source among those with an item ready (`ready[i]`); called only when at least
 * one is ready. Knows nothing of streams, so its fairness is tested without any I/O.
 *
 * @example
 * ```ts
 * import { priorityPicker } from "./_pickers.ts";
 * const pick = priorityPicker([1, 0], 4);
 * pick([true, true]); // 0
 * ```
 */
export type Picker = (ready: readonly boolean[]) => number;

/**
 * Highest `priority` first among the ready sources (ties: the lower index), with aging: a ready
 * source passed over `agingBound` times is served before any fresher one (the most passed over
 * first, ties: higher priority). A ready source is thus served within `agingBound + n − 1` picks,
 * `n` the number of sources: after `agingBound` skips it is aged, and each other source can get
 * ahead of it at most once more before its count of skips is the largest.
 *
 * @example
 * ```ts
 * import { priorityPicker } from "./_pickers.ts";
 * const pick = priorityPicker([1, 0], 2);
 * [pick([true, true]), pick([true, true]), pick([true, true])]; // [0, 0, 1]
 * ```
 */
export function priorityPicker(priority: readonly number[], agingBound: number): Picker {
  const skipped = priority.map(() => 0);
  return function pickByPriority(ready) {
    let best = -1;
    for (let i = 0; i < ready.length; i++) {
      if (!ready[i]) continue;
      if (best === -1) {
        best = i;
        continue;
      }
      const aged = skipped[i] >= agingBound;
      const bestAged = skipped[best] >= agingBound;
      if (aged !== bestAged) {
        if (aged) best = i;
      } else if (aged && skipped[i] !== skipped[best]) {
        if (skipped[i] > skipped[best]) best = i;
      } else if (priority[i] > priority[best]) best = i;
    }
    for (let i = 0; i < ready.length; i++) if (ready[i] && i !== best) skipped[i]++;
    skipped[best] = 0;
    return best;
  };
}

/**
 * Smooth weighted round robin (nginx's `upstream` balancer): every pick, each ready source earns
 * its weight in credit, the one with the most credit is served and pays the ready sources' total
 * weight. While every source has an item ready, source `i` gets `w_i / W` of the picks and its
 * count never strays from that share by 2 or more (by a little over 1 at worst in
 * the property test: weights 1, 1, 19, 1, 19 give source 4 eleven of the first 26 picks where its
 * share is 12.05); a source that is not ready earns nothing, so
 * it cannot come back from idling with a burst.
 *
 * @example
 * ```ts
 * import { weightedPicker } from "./_pickers.ts";
 * const pick = weightedPicker([2, 1]);
 * [pick([true, true]), pick([true, true]), pick([true, true])]; // [0, 1, 0]
 * ```
 */
export function weightedPicker(weights: readonly number[]): Picker {
  const credit = weights.map(() => 0);
  return function pickByWeight(ready) {
    let best = -1;
    let total = 0;
    for (let i = 0; i < ready.length; i++) {
      if (!ready[i]) continue;
      credit[i] += weights[i];
      total += weights[i];
      if (best === -1 || credit[i] > credit[best]) best = i;
    }
    credit[best] -= total;
    return best;
  };
}
