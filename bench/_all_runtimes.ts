/**
 * Runs a bench script once per runtime as a child process, without a shell, each with a full GC
 * exposed: deno with `--v8-flags=--expose-gc`, bun as is (`Bun.gc`), node on an esbuild bundle
 * with `--expose-gc` (node 20 cannot run TypeScript).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RuntimeName } from "./_runtime.ts";

/** How one child run ended. */
export interface ChildRun {
  runtime: RuntimeName;
  ok: boolean;
  detail: string;
}

function run(runtime: RuntimeName, command: string, args: string[], cwd: string): ChildRun {
  console.log(`\n=== ${runtime}: ${[path.basename(command), ...args].join(" ")}`);
  const child = spawnSync(command, args, { cwd, stdio: "inherit" });
  if (child.error) return { runtime, ok: false, detail: String(child.error) };
  const ok = child.status === 0;
  return { runtime, ok, detail: ok ? "ok" : `exit ${child.status ?? child.signal}` };
}

/**
 * Runs `script` (a path relative to `root`) with `args` on deno, bun and node in turn, with
 * `root` as the working directory. Binaries: `node_modules/.bin/{deno,bun,esbuild}` and `node`
 * from `PATH`.
 */
export function runOnAllRuntimes(root: string, script: string, args: string[]): ChildRun[] {
  const bin = (name: string) => path.join(root, "node_modules", ".bin", name);
  const runs = [
    run("deno", bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", script, ...args], root),
    run("bun", bin("bun"), [script, ...args], root),
  ];
  const dir = mkdtempSync(path.join(os.tmpdir(), "fanfare-bench-"));
  try {
    const bundle = path.join(dir, "bench.mjs");
    const built = spawnSync(bin("esbuild"), [
      script,
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--log-level=warning",
      `--outfile=${bundle}`,
    ], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) {
      runs.push({ runtime: "node", ok: false, detail: `esbuild exit ${built.status}` });
    } else runs.push(run("node", "node", ["--expose-gc", bundle, ...args], root));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return runs;
}
