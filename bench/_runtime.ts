/**
 * What the benchmark needs to know about the runtime it runs on, in one place so the runtime
 * differences stay in `bench/` and never reach `src/`.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import os from "node:os";
import process from "node:process";

/** The runtimes the executor benchmark runs on. */
export type RuntimeName = "deno" | "bun" | "node";

/** Name and version of the current runtime, read from `process.versions` (set by all three). */
export function currentRuntime(): { name: RuntimeName; version: string } {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return { name: "deno", version: versions.deno };
  if (versions.bun) return { name: "bun", version: versions.bun };
  return { name: "node", version: versions.node ?? "unknown" };
}

type GcFunction = () => void;

/**
 * A full, synchronous garbage collection, or `undefined` when the runtime was not started with
 * one exposed (node `--expose-gc`, deno `--v8-flags=--expose-gc`; bun always has `Bun.gc`).
 */
export function garbageCollector(): GcFunction | undefined {
  const global = globalThis as {
    gc?: GcFunction;
    Bun?: { gc(force: boolean): void };
  };
  const bun = global.Bun;
  if (bun !== undefined) return () => bun.gc(true);
  const gc = global.gc;
  return typeof gc === "function" ? () => gc() : undefined;
}

/** Bytes of JS heap in use now. */
export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

/** Logical cores and CPU model of this machine. */
export function machine(): { cores: number; cpu: string; os: string; arch: string } {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? "unknown",
    os: os.platform(),
    arch: os.arch(),
  };
}

/** The 1-minute load average (0 where the OS does not report one). */
export function loadAverage(): number {
  return os.loadavg()[0] ?? 0;
}

/**
 * Connections the kernel dropped so far because a listen queue was full (Linux's
 * `TcpExtListenOverflows`, for the whole machine), or `undefined` where `/proc/net/netstat` is not
 * readable. Each such client sends its SYN again only after a 1 s timeout.
 *
 * @example
 * ```ts
 * import { listenOverflows } from "./_runtime.ts";
 * const before = listenOverflows();
 * ```
 */
export function listenOverflows(): number | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/net/netstat", "utf8");
  } catch {
    return undefined;
  }
  const [names, values] = text.split("\n").filter((line) => line.startsWith("TcpExt:"));
  const index = names?.split(" ").indexOf("ListenOverflows") ?? -1;
  return index === -1 ? undefined : Number(values.split(" ")[index]);
}
