/**
 * What fanfare costs a bundle: each entry point of the package, and `fanOut` alone, bundled with
 * its dependencies by esbuild (minified ESM for a Worker: `--platform=neutral`, the `workerd`,
 * `worker` and `browser` conditions) and gzipped (zlib's default level); and the gateway Worker as
 * `wrangler deploy --dry-run` bundles it. `SIZE_BUDGETS` holds the budget of each; the size test
 * fails past any of them.
 *
 * @module
 */
import { gzipSync } from "node:zlib";

const repo = new URL("..", import.meta.url).pathname;

/** One bundle measured: bytes minified and gzipped. */
export interface BundleSize {
  /** What was bundled, as in {@linkcode SIZE_BUDGETS}. */
  name: string;
  minBytes: number;
  gzipBytes: number;
}

/**
 * Budgets in gzipped bytes. `fanOut` alone and the Worker have the targets they were given (3 kB,
 * p-map being about 1.6; 100 KiB); the others sit a few kB above their size when set, so that
 * growth is a decision: raise a budget in the commit that needs it and say why there.
 */
export const SIZE_BUDGETS: Readonly<Record<string, number>> = Object.freeze({
  "fanOut alone": 3 * 1024,
  // 36 → 47, gateway 19 → 28, hono 40 → 51: the gateway makes its spans through
  // @opentelemetry/api (about 7 kB gzipped; the trace, context and diag globals come together),
  // plus the tracing subsystem's own 2 kB.

  // 36 → 44: ./aggregate, re-exported like every subsystem: the call graph executor, templates,
  // shaping and the config's zod schema with its checks (5.9 kB). 55 → 55.5: a request's
  // timeouts on one timer (RequestTimers, and the `timers` option of fanOut and hedge). 55.5 → 56:
  // LocalLimiter keeps its own queue instead of a permit ledger's leases (0.3 kB net). 56 → 56.5:
  // permits as objects with prototype methods instead of objects of closures (fewer allocations
  // per permit, which the collector paid for). 56.5 → 57: failure policies for aggregation
  // endpoints (the config's policy, failFast in the graph runner; 0.2 kB).
  "@fanfare/fanfare": 57 * 1024,
  "@fanfare/fanfare/executor": 7 * 1024,
  // 14 → 14.5: the adaptive limiter's admit() (refusals as values) and its event-loop watch.
  // 14.5 → 15: LocalLimiter's own queue (see the main entry).
  "@fanfare/fanfare/limits": 15 * 1024,
  "@fanfare/fanfare/hedging": 4 * 1024,
  "@fanfare/fanfare/resilience": 6 * 1024,
  "@fanfare/fanfare/streams": 3 * 1024,
  "@fanfare/fanfare/metrics": 3 * 1024,
  // 16 → 19: overload protection (bulkheads, their metrics, overloadFromEnv) brings the
  // adaptive limiter into the gateway entry, about 2.5 kB gzipped. 28 → 28.5: hedge() and the
  // limiters' permits as classes rather than closures (0.2 kB).
  "@fanfare/fanfare/gateway": 28.5 * 1024,
  "@fanfare/fanfare/jobs": 5 * 1024,
  "@fanfare/fanfare/tracing": 11 * 1024,

  // The gateway entry (18 kB) plus the graph, templates, shaping and config schema (6 kB).
  // 35 → 35.5: the endpoints' failure policies (see the main entry).
  "@fanfare/fanfare/aggregate": 35.5 * 1024,
  // 40 → 52: aggregate(spec) and createAggregateRoutes bring ./aggregate (10 kB with the zod
  // object, record and array checks the config schema adds).
  "@fanfare/fanfare/hono": 63 * 1024,
  "@fanfare/fanfare/workers": 16 * 1024,
  "the gateway Worker (wrangler)": 100 * 1024,
});

/** The package's entry points (deno.json `exports`) as bundle names and their source files. */
export async function entryPoints(): Promise<Record<string, string>> {
  const config = JSON.parse(await Deno.readTextFile(`${repo}deno.json`));
  const entries: Record<string, string> = {};
  for (const [subpath, file] of Object.entries(config.exports as Record<string, string>)) {
    entries[`${config.name}${subpath === "." ? "" : subpath.slice(1)}`] = file;
  }
  return entries;
}

/** Bundles `source` (module text resolved from the repo root) with esbuild and measures it. */
export async function measureModule(name: string, source: string): Promise<BundleSize> {
  const process = new Deno.Command(`${repo}node_modules/.bin/esbuild`, {
    args: [
      "--bundle",
      "--minify",
      "--format=esm",
      "--platform=neutral",
      "--main-fields=module,main",
      "--conditions=workerd,worker,browser",
      "--external:cloudflare:workers",
      "--log-level=warning",
      "--loader=ts",
      `--sourcefile=${name}.ts`,
    ],
    cwd: repo,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = process.stdin.getWriter();
  await writer.write(new TextEncoder().encode(source));
  await writer.close();
  const { code, stdout, stderr } = await process.output();
  if (code !== 0) {
    throw new Error(
      `Cannot bundle ${name}: esbuild exited ${code}: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return { name, minBytes: stdout.length, gzipBytes: gzipSync(stdout).length };
}

/**
 * The gateway Worker as `wrangler deploy --dry-run` reports it (wrangler's own minification
 * setting, from `wrangler.toml`), written to `outdir`.
 */
export async function measureWorker(outdir: string): Promise<BundleSize> {
  const { code, stdout, stderr } = await new Deno.Command(`${repo}node_modules/.bin/wrangler`, {
    args: ["deploy", "--dry-run", "--outdir", outdir],
    cwd: repo,
    env: { WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const upload = text.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
  if (code !== 0 || upload === null) {
    throw new Error(
      `Cannot bundle the Worker: wrangler exited ${code}: ${text}${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
  return {
    name: "the gateway Worker (wrangler)",
    minBytes: Math.round(Number(upload[1]) * 1024),
    gzipBytes: Math.round(Number(upload[2]) * 1024),
  };
}

/** Every size with a budget except the Worker: `fanOut` alone, then each entry point. */
export async function measureEntryPoints(): Promise<BundleSize[]> {
  const sizes = [
    await measureModule("fanOut alone", `export { fanOut } from "./src/executor/mod.ts";`),
  ];
  for (const [name, file] of Object.entries(await entryPoints())) {
    sizes.push(await measureModule(name, `export * from "${file}";`));
  }
  return sizes;
}
