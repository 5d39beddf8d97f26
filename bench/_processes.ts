/**
 * Starts the gateway benchmark's loopback processes (`bench/_serve.ts`), each a Deno process on
 * a free port of 127.0.0.1, with the same process handling as the conformance tests.
 *
 * @module
 */
import { freePort, type ServedProcess, startProcess } from "../test/_servers.ts";

/**
 * The overload protection's variables (see `overloadFromEnv`), which the adaptive gateway of
 * `bench/_serve.ts` reads from its environment: an experiment run with one set tries it.
 */
export const OVERLOAD_VARIABLES = [
  "ADMISSION",
  "ADMISSION_INITIAL_LIMIT",
  "ADMISSION_MAX_LIMIT",
  "ADMISSION_MAX_QUEUE",
  "ADMISSION_MAX_LAG_MS",
  "BULKHEADS",
  "BULKHEAD_MAX_LIMIT",
  "BULKHEAD_MAX_QUEUE",
  "OPTIONAL_WAIT_MS",
];

/** A served process and how to stop it. */
export type BenchProcess = ServedProcess;

/**
 * The `--v8-flags=…` argument of `npm start` (package.json's `start` script), for the gateway:
 * read from there, so that the benchmarks' gateway runs as `npm start` does whatever it says
 * (the README says why it sets them).
 */
function startV8Flags(): string[] {
  const { scripts } = JSON.parse(
    Deno.readTextFileSync(new URL("../package.json", import.meta.url)),
  ) as { scripts: { start: string } };
  return scripts.start.match(/--v8-flags=\S+/g) ?? [];
}

/**
 * Starts `bench/_serve.ts <role> <port> ...args` and waits until `readyPath` answers 200.
 *
 * @example
 * ```ts
 * import { startServe } from "./_processes.ts";
 * const downstream = await startServe("downstream", [], "stats");
 * await downstream.stop();
 * ```
 */
export function startServe(
  role: "downstream" | "gateway",
  args: string[],
  readyPath: string,
): Promise<BenchProcess> {
  const port = freePort();
  return startProcess({
    name: `${role} process`,
    command: Deno.execPath(),
    args: [
      "run",
      // Without it Deno 2.9 also aborts request.signal after a successful answer, and warns.
      "--unstable-no-legacy-abort",
      "--allow-net=127.0.0.1",
      `--allow-env=${OVERLOAD_VARIABLES.join(",")}`,
      ...(role === "gateway" ? startV8Flags() : []),
      new URL("./_serve.ts", import.meta.url).pathname,
      role,
      String(port),
      ...args,
    ],
    url: `http://127.0.0.1:${port}/`,
    readyPath,
    env: { NO_COLOR: "1" },
  });
}
