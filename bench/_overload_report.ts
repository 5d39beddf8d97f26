/**
 * The report's overload section (experiment 12, `deno task exp:overload`): goodput and p99 of
 * admitted requests against offered load for each protection, the admission limit over time,
 * and the targets met or missed.
 *
 * @module
 */
import { reportChart as chart } from "./_charts.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

function num(value: unknown, digits = 1): string {
  return typeof value === "number" && Number.isFinite(value)
    ? value.toLocaleString("en", { maximumFractionDigits: digits })
    : "–";
}

/**
 * The section's paragraphs, table and charts from `bench/results/exp-overload.json`.
 *
 * @example
 * ```ts
 * import { overloadSection } from "./_overload_report.ts";
 * declare const json: Record<string, unknown>;
 * const body = await overloadSection(json);
 * ```
 */
export async function overloadSection(json: Json): Promise<string[]> {
  const steps: Json[] = json.steps;
  const capacity: number = json.capacityPerSecond;
  const adaptive4 = steps.find((s) => s.protection === "adaptive" && s.multiplier === 4);
  const static4 = steps.find((s) => s.protection === "static" && s.multiplier === 4);
  const none4 = steps.find((s) => s.protection === "none" && s.multiplier === 4);
  const hand4 = steps.find((s) => s.protection === "hand-written" && s.multiplier === 4);
  const loads = steps.map((s) => s.loadAverage as number);
  const body: string[] = [];
  body.push(
    `Capacity measured in the same run: **${
      num(capacity, 0)
    } answers/s** (${json.capacityMethod}). ` +
      `At 4× that, goodput was ${num(none4?.goodputPerSecond, 0)}/s with no protection, ` +
      `${num(static4?.goodputPerSecond, 0)}/s with the static ceiling and ` +
      `${num(adaptive4?.goodputPerSecond, 0)}/s with the adaptive limit and bulkheads ` +
      `(${num((adaptive4?.goodputShare ?? NaN) * 100, 0)} % of capacity); a hand-written ` +
      `handler with an in-flight counter (\`hand-written\`) kept ${
        num(hand4?.goodputPerSecond, 0)
      }/s, its 503s at ${num(hand4?.shedLatencyMs.p99, 0)} ms p99 against fanfare's ${
        num(adaptive4?.shedLatencyMs.p99, 0)
      } ms. Goodput counts the 200 ` +
      `answers within the ${num(json.budgetMs, 0)} ms budget from their intended send time; each ` +
      `step's load generator is a fresh ${
        json.generator ?? "deno"
      } process. The machine's 1-minute ` +
      `load average ran from ${num(Math.min(...loads), 1)} to ${num(Math.max(...loads), 1)} on ` +
      `2 cores during the steps: other work competed for the CPU, so capacity here is below the ` +
      `quiet machine's and single steps are noisy.`,
  );
  body.push([
    "| protection | × capacity | offered/s | sent/s | goodput/s | share | admitted p99 ms | 503 p99 ms (from actual send) | admission's 503 p99 ms | 503s from the route | send lag p99 ms | 502 / admitted | statuses | peak RSS | limit (min–max) | load |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...steps.map((s) => {
      const limits = (s.limitSeries as [number, number][]).map((p) => p[1]);
      return `| ${s.protection} | ${s.multiplier} | ${num(s.offeredPerSecond, 0)} | ${
        num(s.achievedPerSecond, 0)
      } | ${num(s.goodputPerSecond, 0)} | ${num(s.goodputShare * 100, 0)} % | ${
        num(s.admittedLatencyMs.p99, 0)
      } | ${num(s.shedLatencyMs.p99, 0)} (${num(s.shedFromSendMs?.p99, 0)}) | ${
        num(s.admissionShedLatencyMs?.p99, 0)
      } | ${num(s.lateSheds, 0)} | ${num(s.sendLagMs?.p99, 0)} | ${
        num(s.badGatewayShare * 100, 1)
      } % | ${Object.entries(s.statuses).map(([k, v]) => `${k}×${v}`).join(" ")} | ${
        num(s.peakRssBytes / 2 ** 20, 0)
      } MB | ${limits.length === 0 ? "–" : `${Math.min(...limits)}–${Math.max(...limits)}`} | ${
        num(s.loadAverage, 1)
      } |`;
    }),
  ].join("\n"));
  const counted = steps.filter((s) => s.counters !== undefined && s.multiplier >= 1);
  if (counted.length > 0) {
    body.push(
      "Where the answers came from, by the gateway's own counters over each step (read once it " +
        "drained; the 4× step's include the 0.5× recovery step after it): outcomes of the " +
        "required branches (price, inventory; `skipped` is a branch whose global permit would " +
        "have come after its deadline, `error` includes a bulkhead turning the call away) and of " +
        "the optional ones (`skipped` also when no permit came within `optionalWaitMs`), and " +
        "calls turned away by the bulkheads and requests by the admission limit, by reason " +
        "(`lag_backoffs`: the limit backed off for a late event loop); and the cores the " +
        "gateway, its downstream and the load generator used over the step:",
      [
        "| protection | × capacity | required branches | optional branches | bulkhead sheds | admission sheds | cores: gateway / downstream / generator |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        ...counted.map((s) => {
          const pick = (prefix: string) =>
            Object.entries(s.counters as Record<string, number>)
              .filter(([k]) => k.startsWith(prefix))
              .map(([k, v]) => `${k.slice(prefix.length)} ${v}`)
              .join(", ") || "–";
          const cores = s.cpuCores === undefined
            ? "–"
            : [s.cpuCores.gateway, s.cpuCores.downstream, s.cpuCores.generator]
              .map((c: number) => Number.isFinite(c) ? c.toFixed(2) : "–").join(" / ");
          return `| ${s.protection} | ${s.multiplier} | ${pick("required:")} | ${
            pick("optional:")
          } | ${pick("bulkhead:")} | ${pick("admission:")} | ${cores} |`;
        }),
      ].join("\n"),
    );
  }
  const points = steps.map((s) => ({
    protection: s.protection,
    offered: s.offeredPerSecond,
    goodput: s.goodputPerSecond,
    p99: s.admittedLatencyMs.p99,
  }));
  const lines = (y: string, title: string, extra: Record<string, unknown> = {}) => ({
    data: { values: points },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "offered", type: "quantitative", title: "offered requests/s" },
      y: { field: y, type: "quantitative", title, ...extra },
      color: { field: "protection", type: "nominal" },
    },
  });
  body.push(
    await chart(
      "exp12-goodput",
      "Goodput (200/s) vs offered load",
      lines("goodput", "200 answers/s"),
    ),
    await chart(
      "exp12-p99",
      "p99 of admitted requests vs offered load (ms, log scale)",
      lines("p99", "p99 ms from intended send", { scale: { type: "log" } }),
    ),
  );
  const series = steps.filter((s) => s.protection === "adaptive").flatMap((s) =>
    (s.limitSeries as [number, number][]).map(([t, limit]) => ({
      step: `${s.multiplier}×`,
      t: t / 1000,
      limit,
    }))
  );
  if (series.length > 0) {
    body.push(
      await chart("exp12-limit", "Adaptive admission limit during each step", {
        data: { values: series },
        mark: "line",
        encoding: {
          x: { field: "t", type: "quantitative", title: "seconds into the step" },
          y: { field: "limit", type: "quantitative", title: "requests in flight allowed" },
          color: { field: "step", type: "nominal", sort: ["0.5×", "1×", "2×", "4×", "8×"] },
        },
      }),
    );
  }
  const recoveries: Json[] = json.recoveries ?? [];
  if (recoveries.length > 0) {
    body.push(
      "Recovery: the 0.5× step right after the 4× step, its p50 per 500 ms against the p90 of " +
        "the 0.5× step before the overload:",
      [
        "| protection | baseline p90 ms | p50 per 500 ms after the overload stopped | back from |",
        "| --- | --- | --- | --- |",
        ...recoveries.map((r) =>
          `| ${r.protection} | ${num(r.baselineP90Ms, 0)} | ${
            r.buckets.map((b: Json) => num(b.p50Ms, 0)).join(" ")
          } | ${r.backToBaselineMs === null ? "never" : `${r.backToBaselineMs} ms`} |`
        ),
      ].join("\n"),
    );
  }
  body.push(
    "Targets (adaptive + bulkheads, the default):",
    json.checks.map((c: Json) =>
      `- ${c.pass ? "met" : "**missed**"}: ${c.name}: ${
        typeof c.value === "number" ? num(c.value, 3) : String(c.value)
      } (target ${c.goal})`
    ).join("\n"),
  );
  return body;
}

/**
 * The report's bulkhead section from `bench/results/exp-bulkhead.json`: per-branch latency and
 * share of calls not ok, healthy and with `reviews` slowed, for each protection.
 *
 * @example
 * ```ts
 * import { bulkheadSection } from "./_overload_report.ts";
 * declare const json: Record<string, unknown>;
 * const body = bulkheadSection(json);
 * ```
 */
export function bulkheadSection(json: Json): string[] {
  const rows: Json[] = json.rows;
  const branches = Object.keys(rows[0]?.branches ?? {});
  return [
    `Load: ${json.ratePerSecond} requests/s open loop for ${json.stepSeconds} s per step; ` +
    `"reviews-slow" makes every reviews call take ${json.slowMs} ms (its timeout is 200 ms). ` +
    `Per-branch figures are the gateway's own (\`/api/stats\`, a 10 s window, quantiles ` +
    `estimated from histogram buckets), read at the end of each step.`,
    [
      `| protection | mode | statuses | request p99 ms | ${
        branches.map((b) => `${b} p50 / p99 ms, not ok`).join(" | ")
      } | load |`,
      `| --- | --- | --- | --- | ${branches.map(() => "---").join(" | ")} | --- |`,
      ...rows.map((r) =>
        `| ${r.protection} | ${r.mode} | ${
          Object.entries(r.statuses).map(([k, v]) => `${k}×${v}`).join(" ")
        } | ${num(r.latencyMs.p99, 0)} | ${
          branches.map((b) => {
            const x = r.branches[b];
            return `${num(x.p50Ms, 0)} / ${num(x.p99Ms, 0)}, ${num(x.notOkShare * 100, 0)} %`;
          }).join(" | ")
        } | ${num(r.loadAverage, 1)} |`
      ),
    ].join("\n"),
  ];
}
