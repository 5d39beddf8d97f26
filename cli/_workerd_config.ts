/**
 * The gateway Worker prepared for plain `workerd serve`: bundled as `wrangler deploy` bundles it,
 * with a workerd config built from `wrangler.toml`. Shared by `npm run start:workerd`
 * (`cli/serve_workerd.ts`) and the test suites that serve the Worker on workerd.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";

/** Options of {@linkcode prepareWorkerd}. */
export interface WorkerdConfigOptions {
  /** The checkout whose Worker and `wrangler.toml` to use. */
  root: URL;
  /**
   * The port of 127.0.0.1 to serve on, asked for once the bundle is built (so that a port just
   * found free is taken soon after).
   */
  port: () => number;
  /** Worker variables over those of `wrangler.toml`'s `[vars]`. */
  vars?: Record<string, string>;
}

/** A bundled Worker and its workerd config, in a temporary directory of their own. */
export interface PreparedWorkerd {
  /** The directory holding the bundle, its source map and `config.capnp`; remove it when done. */
  dir: string;
  /** The path to pass to `workerd serve`. */
  configPath: string;
  /** The workerd binary of the checkout. */
  workerd: string;
}

/**
 * Bundles the checkout's Worker with `wrangler deploy --dry-run` and writes a workerd config for
 * it: `wrangler.toml`'s compatibility date, flags and `[vars]` (`vars` over them), its `LIMITER`
 * permit object with storage in memory, and outbound fetches allowed to public and loopback
 * addresses (a downstream or a trace collector on 127.0.0.1). No queues and no job objects, so
 * the Worker serves no `/jobs` routes: those need `wrangler dev`. Throws, naming wrangler's
 * output, when the bundle fails.
 *
 * @example
 * ```ts
 * import { prepareWorkerd } from "./_workerd_config.ts";
 * const { configPath, workerd } = await prepareWorkerd({
 *   root: new URL("../", import.meta.url),
 *   port: () => 8787,
 *   vars: { DOWNSTREAM_URL: "http://127.0.0.1:8788/" },
 * });
 * new Deno.Command(workerd, { args: ["serve", configPath, "--verbose"] }).spawn();
 * ```
 */
export async function prepareWorkerd(
  { root, port, vars = {} }: WorkerdConfigOptions,
): Promise<PreparedWorkerd> {
  const dir = await Deno.makeTempDir({ prefix: "fanfare-workerd-" });
  try {
    const bundled = await new Deno.Command(
      fileURLToPath(new URL("node_modules/.bin/wrangler", root)),
      {
        args: ["deploy", "--dry-run", "--outdir", dir],
        cwd: fileURLToPath(root),
        env: { NO_COLOR: "1", CI: "1", WRANGLER_SEND_METRICS: "false" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      },
    ).output();
    if (!bundled.success) {
      throw new Error(
        `Cannot bundle the Worker as wrangler deploy --dry-run failed: ${
          new TextDecoder().decode(bundled.stderr)
        }`,
      );
    }
    const toml = parseToml(await Deno.readTextFile(new URL("wrangler.toml", root))) as {
      main: string;
      compatibility_date: string;
      compatibility_flags?: string[];
      vars?: Record<string, string>;
    };
    const module = toml.main.split("/").at(-1)!.replace(/\.ts$/, ".js");
    const quote = (text: string) => JSON.stringify(text);
    const bindings = [
      `(name = "LIMITER", durableObjectNamespace = "PermitObject")`,
      ...Object.entries({ ...toml.vars, ...vars })
        .map(([name, value]) => `(name = ${quote(name)}, text = ${quote(value)})`),
    ];
    const configPath = `${dir}/config.capnp`;
    await Deno.writeTextFile(
      configPath,
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .gateway),
    (name = "outbound", network = (allow = ["public", "local"], tlsOptions = (trustBrowserCas = true))),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port()}", http = (), service = "main") ],
);
const gateway :Workerd.Worker = (
  modules = [ (name = ${quote(module)}, esModule = embed ${quote(module)}) ],
  compatibilityDate = ${quote(toml.compatibility_date)},
  compatibilityFlags = ${JSON.stringify(toml.compatibility_flags ?? [])},
  globalOutbound = "outbound",
  bindings = [
    ${bindings.join(",\n    ")}
  ],
  durableObjectNamespaces = [ (className = "PermitObject", uniqueKey = "permit", enableSql = true) ],
  durableObjectStorage = (inMemory = void),
);
`,
    );
    return { dir, configPath, workerd: fileURLToPath(new URL("node_modules/.bin/workerd", root)) };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}
