/**
 * `npm run start:workerd`: the gateway Worker under plain `workerd serve`, as production runs it:
 * no `wrangler dev` proxy in front and no devtools recording every fetch (which, with five
 * downstream calls a request, costs about 15 times the Worker's own CPU: see the README's
 * _Numbers_). The Worker is bundled as `wrangler deploy` bundles it and takes `wrangler.toml`'s
 * compatibility settings and `[vars]`; its permit object keeps its state in memory; there are no
 * queues, so no `/jobs` routes (use `npm run start:workers` for those). SIGINT or SIGTERM stops it.
 *
 * `--port N` (default `PORT`, else 8787) is the port of 127.0.0.1 it serves on; each
 * `--var NAME:value` sets a Worker variable over `wrangler.toml`'s. Without `DOWNSTREAM_URL` the
 * Worker answers from its in-process simulated downstream.
 *
 * @example
 * ```sh
 * npm run start:workerd
 * npm run start:workerd -- --port 9000 --var DOWNSTREAM_URL:http://127.0.0.1:8788/
 * ```
 *
 * @module
 */
import { prepareWorkerd } from "./_workerd_config.ts";

/** Reads `--port` and every `--var NAME:value` from `args`; throws naming the bad one. */
function parseArgs(args: string[]): { port: number; vars: Record<string, string> } {
  let portText = Deno.env.get("PORT") ?? "8787";
  const vars: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag !== "--port" && flag !== "--var") {
      throw new Error(
        `Cannot serve the Worker as '${flag}' is not an option: use --port N and --var NAME:value`,
      );
    }
    if (value === undefined) throw new Error(`Cannot serve the Worker as '${flag}' needs a value`);
    if (flag === "--port") {
      portText = value;
      continue;
    }
    const colon = value.indexOf(":");
    if (colon < 1) {
      throw new Error(
        `Cannot serve the Worker as '--var' must be NAME:value: current value is '${value}'`,
      );
    }
    vars[value.slice(0, colon)] = value.slice(colon + 1);
  }
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(
      `Cannot serve the Worker as the port must be an integer from 1 to 65535: current value is '${portText}'`,
    );
  }
  return { port, vars };
}

let options: { port: number; vars: Record<string, string> };
try {
  options = parseArgs(Deno.args);
} catch (error) {
  console.error((error as Error).message);
  Deno.exit(2);
}
// Listening from the start: a signal while wrangler bundles must still remove the bundle.
let child: Deno.ChildProcess | undefined;
let stopped = false;
const stop = () => {
  stopped = true;
  try {
    child?.kill("SIGTERM");
  } catch {
    // It exited already: its status is on its way.
  }
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const prepared = await prepareWorkerd({
  root: new URL("../", import.meta.url),
  port: () => options.port,
  vars: options.vars,
});
if (stopped) {
  await Deno.remove(prepared.dir, { recursive: true });
  Deno.exit(0);
}
try {
  child = new Deno.Command(prepared.workerd, {
    args: ["serve", prepared.configPath, "--verbose"],
    stdin: "null",
  }).spawn();
} catch (error) {
  await Deno.remove(prepared.dir, { recursive: true });
  throw error;
}
console.log(`gateway Worker on http://127.0.0.1:${options.port}/ (workerd serve)`);
const status = await child.status;
await Deno.remove(prepared.dir, { recursive: true });
Deno.exit(status.signal === "SIGTERM" ? 0 : status.code);
