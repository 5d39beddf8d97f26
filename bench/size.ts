/**
 * `deno task size`: what fanfare costs a bundle, against each budget — `fanOut` alone, every
 * entry point of the package with its dependencies, and the gateway Worker as wrangler bundles
 * it — with p-map and p-limit measured the same way for comparison. Writes
 * `bench/results/size.json`. Sizes do not depend on load; nothing here is timed.
 *
 * @module
 */
import {
  type BundleSize,
  measureEntryPoints,
  measureModule,
  measureWorker,
  SIZE_BUDGETS,
} from "./_bundle_size.ts";
import { writeResult } from "./_experiment.ts";

const outdir = await Deno.makeTempDir({ prefix: "fanfare-size-" });
try {
  const sizes: BundleSize[] = [
    ...await measureEntryPoints(),
    await measureWorker(outdir),
  ];
  const peers = [
    await measureModule("p-map", `export { default } from "p-map";`),
    await measureModule("p-limit", `export { default } from "p-limit";`),
  ];
  const kB = (bytes: number) => (bytes / 1024).toFixed(1).padStart(7);
  console.log(`${"bundle".padEnd(32)} ${"min KiB".padStart(7)} ${"gzip".padStart(7)} budget`);
  for (const { name, minBytes, gzipBytes } of [...sizes, ...peers]) {
    const budget = SIZE_BUDGETS[name];
    const verdict = budget === undefined
      ? ""
      : `${kB(budget)}${gzipBytes > budget ? "  OVER" : ""}`;
    console.log(`${name.padEnd(32)} ${kB(minBytes)} ${kB(gzipBytes)} ${verdict}`);
  }
  const path = writeResult("size.json", {
    command: "deno task size",
    date: new Date().toISOString(),
    gzip: "node:zlib gzipSync, default level",
    sizes,
    peers,
    budgets: SIZE_BUDGETS,
  });
  console.log(`wrote ${path}`);
} finally {
  await Deno.remove(outdir, { recursive: true });
}
