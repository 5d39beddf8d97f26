/**
 * Runs a benchmark's child process to its end and reads the one JSON line it printed: how
 * `bench:overhead` runs each gateway in a fresh process, and the overload experiments their
 * load generator.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";

/**
 * Runs `command` with `args` (standard error passed through), calls `onOutput` with its
 * standard output so far after each chunk, and resolves with the line of its output that is a
 * JSON object once it exits with 0; rejects, naming `what`, otherwise.
 *
 * @example
 * ```ts
 * import { childJson } from "./_child_json.ts";
 * const { n } = await childJson<{ n: number }>(
 *   Deno.execPath(),
 *   ["eval", "console.log(JSON.stringify({ n: 1 }))"],
 *   { what: "an example" },
 * );
 * ```
 */
export function childJson<T>(
  command: string,
  args: string[],
  { what, onOutput, env }: {
    what: string;
    onOutput?: (output: string) => void;
    /** Variables added to this process's environment for the child. */
    env?: Record<string, string>;
  },
): Promise<T> {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: env === undefined ? undefined : { ...process.env, ...env },
  });
  let output = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    output += chunk;
    onOutput?.(output);
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => {
      const line = /^(\{.*\})$/m.exec(output)?.[1];
      if (code === 0 && line !== undefined) resolve(JSON.parse(line) as T);
      else reject(new Error(`Cannot run ${what} as it exited with ${code} and no JSON line`));
    });
  });
}
