/**
 * One step of open-model load against a {@linkcode LoadTarget}: a fixed arrival rate for a
 * bounded number of requests, with the gateway's in-flight branches and memory sampled while it
 * runs, summarised as the report's row.
 *
 * @module
 */
import type { LoadTarget } from "./_load_target.ts";
import type { ProductSummary } from "./_product_reply.ts";
import { openLoop, type Sample } from "./_open_loop.ts";
import { type Quantiles, summarize } from "./_quantiles.ts";

/** Gauge polls while a step runs, this far apart in ms. */
const SAMPLE_EVERY_MS = 25;
/** Branches per request in the default registry, for completeness. */
const BRANCHES_PER_REQUEST = 5;

/** What a step measured. */
export interface StepResult {
  label: string;
  offeredPerSecond: number;
  requests: number;
  /** Requests sent over the time from the first intended send to the last actual send. */
  achievedPerSecond: number;
  /** Requests answered over the time from the first intended send to the last answer. */
  answeredPerSecond: number;
  wallSeconds: number;
  /** Intended send time → body read, in ms. */
  latencyMs: Quantiles;
  sendLagMs: { p99: number; max: number };
  /** Count per HTTP status; `"0"` is no answer at all. */
  statuses: Record<string, number>;
  /** First reason a request got no answer, if any did. */
  firstError?: string;
  /** 200 answers missing at least one branch, over all requests. */
  degradedShare: number;
  /** 200 answers over all requests. */
  completedShare: number;
  /** Branches present per request over the five a full answer has, averaged over all requests. */
  completeness: number;
  /** Highest `fanfare_branches_in_flight` seen while the step ran. */
  peakInFlightBranches: number;
  /** Highest resident memory of the gateway's process seen while the step ran, in bytes. */
  peakRssBytes: number;
  /** Gauge polls that got no answer (an overloaded gateway over HTTP). */
  failedPolls: number;
}

/** Options of {@linkcode runStep}. */
export interface StepOptions {
  label: string;
  ratePerSecond: number;
  count: number;
  /** The path and query of request `index`. */
  path(index: number): string;
  /** Aborts any request still open this long after its send. */
  guardMs?: number;
  /** A progress line, after each quarter of the requests. */
  log?: (line: string) => void;
}

/**
 * Runs one step and summarises it.
 *
 * @example
 * ```ts
 * import { inProcessTarget } from "./_load_target.ts";
 * import { runStep } from "./_load_step.ts";
 * const step = await runStep(inProcessTarget(), {
 *   label: "100/s",
 *   ratePerSecond: 100,
 *   count: 200,
 *   path: (i) => `/product/sku-${i}`,
 * });
 * step.latencyMs.p99;
 * ```
 */
export async function runStep(
  target: LoadTarget,
  { label, ratePerSecond, count, path, guardMs, log }: StepOptions,
): Promise<StepResult> {
  let peakInFlightBranches = 0;
  let peakRssBytes = target.rssBytes();
  let polling: Promise<void> | undefined;
  let failedPolls = 0;
  const poll = async () => {
    peakRssBytes = Math.max(peakRssBytes, target.rssBytes());
    try {
      peakInFlightBranches = Math.max(peakInFlightBranches, await target.inFlightBranches());
    } catch {
      // An overloaded gateway may drop the gauge's request too; the step goes on without it.
      failedPolls++;
    }
  };
  const sampler = setInterval(() => {
    polling ??= poll().finally(() => polling = undefined);
  }, SAMPLE_EVERY_MS);
  const started = performance.now();
  let samples: Sample[];
  try {
    samples = await openLoop({
      count,
      ratePerSecond,
      guardMs,
      send: (index, signal) => target.send(path(index), signal),
      onProgress: (sent) =>
        log?.(
          `  ${label}: sent ${sent}/${count}, ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s, in-flight branches peak ${peakInFlightBranches}, RSS peak ${
            (peakRssBytes / 2 ** 20).toFixed(0)
          } MB`,
        ),
    });
  } finally {
    clearInterval(sampler);
    await polling;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  await poll();
  const result = summarizeStep(label, ratePerSecond, samples, wallSeconds);
  return { ...result, peakInFlightBranches, peakRssBytes, failedPolls };
}

function summarizeStep(
  label: string,
  ratePerSecond: number,
  samples: Sample[],
  wallSeconds: number,
): Omit<StepResult, "peakInFlightBranches" | "peakRssBytes" | "failedPolls"> {
  const statuses: Record<string, number> = {};
  let degraded = 0;
  let completed = 0;
  let present = 0;
  let firstError: string | undefined;
  for (const sample of samples) {
    statuses[sample.status] = (statuses[sample.status] ?? 0) + 1;
    if (sample.error !== undefined) firstError ??= sample.error;
    const body = sample.body as ProductSummary | undefined;
    present += body?.present ?? 0;
    if (sample.status !== 200) continue;
    completed++;
    if ((body?.degraded ?? 0) > 0) degraded++;
  }
  const lag = summarize(samples.map((s) => s.sendLagMs));
  const lastSendMs = (samples.length - 1) * 1000 / ratePerSecond +
    samples[samples.length - 1].sendLagMs;
  return {
    label,
    offeredPerSecond: ratePerSecond,
    requests: samples.length,
    achievedPerSecond: samples.length / Math.max(lastSendMs / 1000, 1 / ratePerSecond),
    answeredPerSecond: samples.length / wallSeconds,
    wallSeconds,
    latencyMs: summarize(samples.map((s) => s.latencyMs)),
    sendLagMs: { p99: lag.p99, max: lag.max },
    statuses,
    firstError,
    degradedShare: degraded / samples.length,
    completedShare: completed / samples.length,
    completeness: present / (samples.length * BRANCHES_PER_REQUEST),
  };
}

/**
 * One line of a step's figures, for progress output.
 *
 * @example
 * ```ts
 * import { formatStep, type StepResult } from "./_load_step.ts";
 * declare const step: StepResult;
 * console.log(formatStep(step));
 * ```
 */
export function formatStep(s: StepResult): string {
  const statuses = Object.entries(s.statuses).map(([k, v]) => `${k}×${v}`).join(" ");
  return `  ${s.label}: offered ${s.offeredPerSecond}/s, achieved ${
    s.achievedPerSecond.toFixed(0)
  }/s, answered ${s.answeredPerSecond.toFixed(0)}/s; p50 ${s.latencyMs.p50.toFixed(1)} p99 ${
    s.latencyMs.p99.toFixed(1)
  } p99.9 ${s.latencyMs.p999.toFixed(1)} ms; ${statuses}; degraded ${
    (s.degradedShare * 100).toFixed(1)
  } %; peak in-flight branches ${s.peakInFlightBranches}; peak RSS ${
    (s.peakRssBytes / 2 ** 20).toFixed(0)
  } MB` + (s.firstError === undefined ? "" : `; first error: ${s.firstError}`);
}

/**
 * Sends `count` untimed requests at `ratePerSecond` to warm the target up (JIT, caches, pools)
 * before a measured step.
 *
 * @example
 * ```ts
 * import { inProcessTarget } from "./_load_target.ts";
 * import { warmUp } from "./_load_step.ts";
 * await warmUp(inProcessTarget(), 500, 300);
 * ```
 */
export async function warmUp(
  target: LoadTarget,
  ratePerSecond: number,
  count: number,
): Promise<void> {
  await runStep(target, {
    label: "warm-up",
    ratePerSecond,
    count,
    path: (i) => `/product/warm-${i}`,
  });
}
