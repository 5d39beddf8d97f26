/**
 * The hedging benchmark's chart: latency quantiles per mode, one panel per distribution, as an
 * SVG rendered headless by vega-lite and vega.
 *
 * @module
 */
import { renderSvg } from "./_charts.ts";

/** What the chart needs of one benchmark case. */
export interface ChartCase {
  distribution: string;
  mode: string;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  extraLoad: number;
}

/**
 * An SVG of p50/p95/p99/p99.9 (log scale) per mode, a panel per distribution; each mode's label
 * carries its extra load.
 *
 * @example
 * ```ts
 * import { renderHedgeChart } from "./_hedge_chart.ts";
 * const svg = await renderHedgeChart(
 *   [{ distribution: "d", mode: "none", p50: 5, p95: 60, p99: 200, p999: 900, extraLoad: 0 }],
 *   [{ id: "d", label: "a distribution" }],
 * );
 * ```
 */
export function renderHedgeChart(
  cases: readonly ChartCase[],
  distributions: readonly { id: string; label: string }[],
): Promise<string> {
  const quantiles = [["p50", "p50"], ["p95", "p95"], ["p99", "p99"], ["p999", "p99.9"]] as const;
  const values = cases.flatMap((c) =>
    quantiles.map(([field, name]) => ({
      distribution: distributions.find(({ id }) => id === c.distribution)?.label ?? c.distribution,
      mode: `${c.mode} (+${(c.extraLoad * 100).toFixed(1)} %)`,
      quantile: name,
      ms: c[field],
    }))
  );
  return renderSvg({
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    data: { values },
    facet: {
      row: {
        field: "distribution",
        type: "nominal",
        title: null,
        // Long distribution names read across the top of each panel, not sideways over the axis.
        header: { labelAngle: 0, labelOrient: "top", labelAlign: "left", labelAnchor: "start" },
      },
    },
    spec: {
      width: 520,
      height: 200,
      mark: { type: "line", point: true },
      encoding: {
        x: {
          field: "quantile",
          type: "ordinal",
          sort: quantiles.map(([, name]) => name),
          title: "latency quantile",
        },
        y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "latency (ms)" },
        color: { field: "mode", type: "nominal", title: "mode (extra requests)" },
      },
    },
    resolve: { scale: { color: "independent" } },
    config: { font: "sans-serif", legend: { labelLimit: 400, titleLimit: 400 } },
  });
}
