/**
 * The loopback half of the overhead benchmarks: processes of `bench/_overhead_serve.ts` on the
 * runtime running the benchmark, and `wrk` to load them.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { currentRuntime } from "./_runtime.ts";

/** Why `wrk` cannot run here (Debian: `apt-get install wrk`), or `undefined` when it can. */
export function wrkMissing(): string | undefined {
  const found = spawnSync("wrk", ["--version"], { encoding: "utf8" });
  return found.error === undefined ? undefined : "wrk not found (Debian: apt-get install wrk)";
}

/** A served process of `bench/_overhead_serve.ts`: its base URL and the process. */
export interface Served {
  url: string;
  child: ChildProcess;
}

/**
 * Starts `bench/_overhead_serve.ts <args>` on the runtime running this file and waits for the
 * port it prints.
 *
 * @example
 * ```ts
 * import { serve, stop } from "./_loopback.ts";
 * const downstream = await serve(["downstream"]);
 * await stop(downstream);
 * ```
 */
export function serve(args: string[]): Promise<Served> {
  const script = new URL("./_overhead_serve.ts", import.meta.url).pathname;
  const runtimeArgs = currentRuntime().name === "deno"
    ? ["run", "-A", "--unstable-no-legacy-abort", script, ...args]
    : [script, ...args];
  const child = spawn(process.execPath, runtimeArgs, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let output = "";
    child.once(
      "exit",
      (code) =>
        reject(new Error(`Cannot start '${args.join(" ")}' as it exited with ${code}: ${output}`)),
    );
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      const line = /^(\{.*\})$/m.exec(output)?.[1];
      if (line !== undefined) {
        child.removeAllListeners("exit");
        child.stdout!.removeAllListeners("data");
        child.stdout!.resume();
        resolve({ url: `http://127.0.0.1:${JSON.parse(line).port}`, child });
      }
    });
  });
}

/** Stops a served process (SIGTERM) and waits for its exit. */
export function stop({ child }: Served): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** One `wrk` run, parsed. */
export interface WrkRun {
  requestsPerSecond: number;
  requests: number;
  non2xx: number;
  socketErrors: string | undefined;
  latencyMs: { p50: number; p99: number };
}

function ms(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text ?? "");
  if (match === null) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000 }[match[2] as "us" | "ms" | "s"];
  return Number(match[1]) * scale;
}

/**
 * `wrk -t1 -c<connections> --latency -d<seconds>s <url>`, parsed.
 *
 * @example
 * ```ts
 * import { wrk } from "./_loopback.ts";
 * const { requestsPerSecond } = wrk("http://127.0.0.1:8787/product/sku-1", 2, 32);
 * ```
 */
export function wrk(url: string, durationS: number, connections: number): WrkRun {
  const run = spawnSync(
    "wrk",
    ["-t1", `-c${connections}`, "--latency", `-d${durationS}s`, url],
    { encoding: "utf8" },
  );
  if (run.status !== 0) {
    throw new Error(`Cannot run wrk against ${url}: exit ${run.status}, ${run.stderr}`);
  }
  const out = run.stdout;
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1],
    latencyMs: {
      p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
      p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
    },
  };
}
