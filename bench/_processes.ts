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
 * V8's flags of `npm start` for the gateway: no idle-time garbage collections, and no code
 * dropped for having not run lately, so that a gateway idle for a minute meets a burst with its
 * code as it left it.
 */
export const GATEWAY_V8_FLAGS = "--v8-flags=--no-memory-reducer,--no-flush-bytecode";

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
      // The gateway runs with the V8 flags of `npm start` (see `GATEWAY_V8_FLAGS`).
      ...(role === "gateway" ? [GATEWAY_V8_FLAGS] : []),
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
