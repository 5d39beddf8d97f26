/**
 * Renders a Vega-Lite spec to an SVG file, headless (vega's `renderer: "none"` view), for the
 * experiments report.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as vega from "vega";
import * as vegaLite from "vega-lite";

/** A Vega-Lite spec, as vega-lite's compiler takes it. */
export type ChartSpec = vegaLite.TopLevelSpec;

/**
 * Renders `spec` to an SVG string.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./_charts.ts";
 * const svg = await renderSvg({
 *   data: { values: [{ x: 1, y: 2 }, { x: 2, y: 3 }] },
 *   mark: "line",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 * });
 * ```
 */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Writes `bench/plots/<name>.svg` from `spec` and returns the path relative to `bench/`.
 *
 * @example
 * ```ts
 * import { renderChart } from "./_charts.ts";
 * const path = await renderChart("demo", {
 *   data: { values: [{ x: 1, y: 2 }, { x: 2, y: 3 }] },
 *   mark: "line",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 * });
 * ```
 */
export async function renderChart(name: string, spec: ChartSpec): Promise<string> {
  const svg = await renderSvg(spec);
  const dir = new URL("./plots/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(fileURLToPath(new URL(`${name}.svg`, dir)), svg);
  return `plots/${name}.svg`;
}

/**
 * Renders one chart of `bench/REPORT.md` (a Vega-Lite unit spec without size or title) at the
 * report's size and returns its Markdown image link.
 *
 * @example
 * ```ts
 * import { reportChart } from "./_charts.ts";
 * const link = await reportChart("demo", "Demo", {
 *   data: { values: [{ x: 1, y: 2 }] },
 *   mark: "point",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 * });
 * ```
 */
export async function reportChart(
  name: string,
  title: string,
  spec: Record<string, unknown>,
): Promise<string> {
  const path = await renderChart(name, {
    width: 460,
    height: 240,
    title,
    ...spec,
  } as unknown as ChartSpec);
  return `![${title}](${path})`;
}
