/**
 * Waiting for a loaded gateway to drain between the steps of the overload experiments
 * (`exp:overload`, `exp:overload-steps`).
 *
 * @module
 */
import type { LoadTarget } from "./_load_target.ts";

/** The longest a gateway is waited for, in ms. */
export const DRAIN_MAX_MS = 90_000;
/** A gateway is drained once it and its downstream use less than this share of a core. */
const IDLE_CPU = 0.1;
/**
 * …and once the machine holds fewer TCP sockets in TIME_WAIT than this (Linux, where
 * `/proc/net/sockstat` says). A gateway without protection leaves tens of thousands behind at
 * 4× capacity (one per request its clients gave up on), which outlive the step by a minute: an
 * `exp:overload` sweep ended with 27,828 of them (read by hand with `ss -s`) against 28,232
 * ephemeral ports, and the steps that followed a collapse connected through what was left.
 */
const TIME_WAIT_MAX = 4096;

/**
 * Waits (at most `DRAIN_MAX_MS`) until `target` has no branch in flight and it and its
 * downstream are idle (under `IDLE_CPU` of a core over 250 ms) and the machine holds fewer than
 * `TIME_WAIT_MAX` sockets in TIME_WAIT, then 500 ms more; resolves with the ms it took, or
 * `null` when it gave up. An overloaded gateway works through its backlog
 * long after its clients gave up: the next step must not share the cores with it.
 *
 * @example
 * ```ts
 * import { drained } from "./_drain.ts";
 * import { httpTarget } from "./_load_target.ts";
 * const target = await httpTarget("healthy-default-timeouts", "adaptive");
 * const tookMs = await drained(target);
 * await target.close();
 * ```
 */
export async function drained(target: LoadTarget): Promise<number | null> {
  const started = performance.now();
  const sliceMs = 250;
  let took: number | null = null;
  while (performance.now() - started < DRAIN_MAX_MS) {
    const before = target.cpuSeconds();
    await new Promise((resolve) => setTimeout(resolve, sliceMs));
    const after = target.cpuSeconds();
    const busy = (after.gateway - before.gateway + after.downstream - before.downstream) /
      (sliceMs / 1000);
    if (busy >= IDLE_CPU || (socketsInTimeWait() ?? 0) >= TIME_WAIT_MAX) continue;
    try {
      if (await target.inFlightBranches() === 0) {
        took = performance.now() - started;
        break;
      }
    } catch {
      // Too busy to answer its metrics: still draining.
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  return took;
}

/** TCP sockets in TIME_WAIT on this machine, from `/proc/net/sockstat`; `undefined` elsewhere. */
export function socketsInTimeWait(): number | undefined {
  try {
    const match = /^TCP:.* tw (\d+)/m.exec(Deno.readTextFileSync("/proc/net/sockstat"));
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}
