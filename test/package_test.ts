/**
 * The npm package as a user gets it: `npm pack` (which builds it), then installed from the tarball
 * into a scratch project outside the repo, where Node, Bun and Deno run `fanOut` from it, tsc
 * type-checks a consumer against its declarations, and wrangler bundles a Worker that uses the
 * Hono helpers and the Durable Object.
 *
 * Offline: the scratch project depends on the tarball and, for the package's own dependencies,
 * on `file:` links to this repo's node_modules (npm links them, as `--install-links=false`), so
 * `npm install --offline` finds every dependency satisfied and never asks the registry. The
 * package's dependency ranges are still checked against those installed versions.
 */
import { assert, assertEquals } from "./_assert.ts";

const repo = new URL("..", import.meta.url).pathname;
const bin = (name: string) => `${repo}node_modules/.bin/${name}`;
const deno = `${repo}node_modules/deno/deno`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  command: string,
  args: string[],
  { cwd, env }: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

function succeeded(result: Run, what: string): string {
  assertEquals(result.code, 0, `${what} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** Every entry point of the package.json `exports` map, with a value each must export. */
const ENTRIES: Record<string, string> = {
  "@fanfare/fanfare": "fanOut",
  "@fanfare/fanfare/executor": "Semaphore",
  "@fanfare/fanfare/limits": "LocalLimiter",
  "@fanfare/fanfare/hedging": "AdaptiveDelay",
  "@fanfare/fanfare/resilience": "CircuitBreaker",
  "@fanfare/fanfare/streams": "mergeStreams",
  "@fanfare/fanfare/metrics": "MetricsRegistry",
  "@fanfare/fanfare/gateway": "defaultRegistry",
  "@fanfare/fanfare/jobs": "JobJoin",
  "@fanfare/fanfare/tracing": "parseTraceparent",
  "@fanfare/fanfare/aggregate": "runGraph",
  "@fanfare/fanfare/hono": "createGateway",
};

/** Node and Bun: fanOut from the package, and every entry point but `./workers` (workerd only). */
const RUN_MJS = `
${
  Object.entries(ENTRIES).map(([entry, name], i) => `import { ${name} as e${i} } from "${entry}";`)
    .join("\n")
}
const { values, failed } = await e0([1, 2, 3], async (n) => n * 2, { limit: 2 });
const kinds = [${Object.keys(ENTRIES).map((_, i) => `e${i}`).join(", ")}].map((e) => typeof e);
console.log(JSON.stringify({ values, failed: failed.length, kinds: [...new Set(kinds)] }));
`;

const DENO_TS = `
import { fanOut } from "npm:@fanfare/fanfare";
import { createGateway } from "npm:@fanfare/fanfare/hono";
const { values, failed } = await fanOut([1, 2, 3], async (n: number) => n * 2, { limit: 2 });
const first: number | undefined = values[0];
console.log(JSON.stringify({ values, failed: failed.length, first, gateway: typeof createGateway }));
`;

/** A typed consumer: a wrong export, a missing declaration file or a type error fails tsc. */
const CONSUMER_TS = `
import { fanOut, type FanOutResult } from "@fanfare/fanfare";
import { Semaphore } from "@fanfare/fanfare/executor";
import { LocalLimiter } from "@fanfare/fanfare/limits";
import { AdaptiveDelay, hedge } from "@fanfare/fanfare/hedging";
import { MetricsRegistry } from "@fanfare/fanfare/metrics";
import { defaultRegistry, urlFetcher } from "@fanfare/fanfare/gateway";
import { JobJoin } from "@fanfare/fanfare/jobs";
import { createGateway, notFound } from "@fanfare/fanfare/hono";
import { Hono } from "hono";

const result: FanOutResult<number> = await fanOut([1, 2, 3], async (n) => n * 2, { limit: 2 });
const doubled: (number | undefined)[] = result.values;
const registry = defaultRegistry(urlFetcher("https://downstream.example/"));
const app = new Hono().route("/", createGateway({ registry })).notFound(notFound);
export { AdaptiveDelay, app, doubled, hedge, JobJoin, LocalLimiter, MetricsRegistry, Semaphore };
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    lib: ["ES2023", "DOM", "DOM.Iterable", "DOM.AsyncIterable", "ESNext.Disposable"],
    types: [],
  },
  files: ["consumer.ts"],
};

/** A Worker on the Hono helpers, with the package's Durable Object bound: the README's example. */
const WORKER_TS = `
import { Hono } from "hono";
import { createGatewayMetrics, defaultRegistry, urlFetcher } from "@fanfare/fanfare/gateway";
import { createGateway, createMetricsRoute, notFound } from "@fanfare/fanfare/hono";
export { PermitObject } from "@fanfare/fanfare/workers";

const registry = defaultRegistry(urlFetcher("https://downstream.example/"));
const metrics = createGatewayMetrics();
export default new Hono()
  .route("/", createGateway({ registry, metrics }))
  .route("/", createMetricsRoute(metrics.registry))
  .notFound(notFound);
`;

const WRANGLER_TOML = `
name = "fanfare-package-check"
main = "worker.ts"
compatibility_date = "2026-04-26"

[[durable_objects.bindings]]
name = "LIMITER"
class_name = "PermitObject"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["PermitObject"]
`;

Deno.test("the npm package installs from its tarball and runs on Node, Bun and Deno and in a Worker bundle", async (t) => {
  const scratch = await Deno.makeTempDir({ prefix: "fanfare-package-" });
  const app = `${scratch}/app`;
  try {
    const manifest = JSON.parse(await Deno.readTextFile(`${repo}package.json`));

    let tarball = "";
    await t.step(
      "npm pack builds the package and packs only the build (and the config's JSON Schema)",
      async () => {
        const out = succeeded(
          await run("npm", ["pack", "--offline", "--json", "--pack-destination", scratch], {
            cwd: repo,
          }),
          "npm pack",
        );
        const [packed] = JSON.parse(out.slice(out.indexOf("[")));
        tarball = `${scratch}/${packed.filename}`;
        const paths: string[] = packed.files.map((file: { path: string }) => file.path);
        for (const path of paths) {
          assert(
            path.startsWith("dist/lib/") ||
              ["package.json", "README.md", "LICENSE", "fanfare.config.schema.json"].includes(path),
            `the tarball holds only the build, not ${path}`,
          );
          assert(
            !/(_test|\/sim\/|\/bench\/)/.test(path),
            `no test or simulation in the tarball: ${path}`,
          );
        }
        for (const target of Object.values(manifest.exports)) {
          if (typeof target === "string") continue;
          for (const file of Object.values(target as Record<string, string>)) {
            assert(paths.includes(file.slice(2)), `the tarball has the exported ${file}`);
          }
        }
      },
    );

    await t.step("npm installs the tarball offline into a scratch project", async () => {
      await Deno.mkdir(app);
      const links = Object.fromEntries(
        Object.keys(manifest.dependencies).map((
          name,
        ) => [name, `file:${repo}node_modules/${name}`]),
      );
      await Deno.writeTextFile(
        `${app}/package.json`,
        JSON.stringify({
          name: "scratch",
          private: true,
          type: "module",
          dependencies: { [manifest.name]: `file:${tarball}`, ...links },
        }),
      );
      succeeded(
        await run("npm", [
          "install",
          "--offline",
          "--install-links=false",
          "--ignore-scripts",
          "--no-audit",
          "--no-fund",
        ], { cwd: app }),
        "npm install",
      );
      await Deno.writeTextFile(`${app}/run.mjs`, RUN_MJS);
    });

    const expected = { values: [2, 4, 6], failed: 0 };

    await t.step("Node 20 runs fanOut from every entry point", async () => {
      const version = succeeded(await run("node", ["--version"], { cwd: app }), "node --version");
      assert(Number(version.slice(1).split(".")[0]) >= 20, `Node 20 or later: ${version}`);
      const out = JSON.parse(succeeded(await run("node", ["run.mjs"], { cwd: app }), "node"));
      assertEquals(out, { ...expected, kinds: ["function"] });
    });

    await t.step("Bun runs fanOut from every entry point", async () => {
      const out = JSON.parse(succeeded(await run(bin("bun"), ["run.mjs"], { cwd: app }), "bun"));
      assertEquals(out, { ...expected, kinds: ["function"] });
    });

    await t.step(
      "Deno imports it through npm: and type-checks against its declarations",
      async () => {
        await Deno.writeTextFile(`${app}/deno.json`, JSON.stringify({ nodeModulesDir: "manual" }));
        await Deno.writeTextFile(`${app}/main.ts`, DENO_TS);
        succeeded(await run(deno, ["check", "main.ts"], { cwd: app }), "deno check");
        const out = JSON.parse(
          succeeded(await run(deno, ["run", "main.ts"], { cwd: app }), "deno"),
        );
        assertEquals(out, { ...expected, first: 2, gateway: "function" });
      },
    );

    await t.step("tsc type-checks a consumer of every typed entry point", async () => {
      await Deno.writeTextFile(`${app}/consumer.ts`, CONSUMER_TS);
      await Deno.writeTextFile(`${app}/tsconfig.json`, JSON.stringify(TSCONFIG));
      succeeded(await run(bin("tsc"), ["-p", "tsconfig.json"], { cwd: app }), "tsc");
    });

    await t.step(
      "wrangler bundles a Worker on the Hono helpers and the Durable Object",
      async () => {
        await Deno.writeTextFile(`${app}/worker.ts`, WORKER_TS);
        await Deno.writeTextFile(`${app}/wrangler.toml`, WRANGLER_TOML);
        const out = succeeded(
          await run(bin("wrangler"), ["deploy", "--dry-run", "--outdir", "out"], {
            cwd: app,
            env: { WRANGLER_SEND_METRICS: "false" },
          }),
          "wrangler deploy --dry-run",
        );
        assert(/Total Upload: [\d.]+ KiB/.test(out), out);
        const bundle = await Deno.readTextFile(`${app}/out/worker.js`);
        assert(
          /PermitObject = class|class PermitObject/.test(bundle),
          "the Durable Object is bundled",
        );
      },
    );
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});
