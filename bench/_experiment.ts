/**
 * What every experiment of the report records besides its own figures — runtime, machine, seed,
 * command, load average — and where its JSON goes (`bench/results/exp-<name>.json`).
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";

/** The header of every experiment's JSON. */
export interface ExperimentHeader {
  experiment: string;
  command: string;
  seed: number;
  runtime: string;
  version: string;
  date: string;
  machine: ReturnType<typeof machine>;
  /** 1-minute load average at start and end: the machine is shared, and load skews figures. */
  loadAverage: { start: number; end: number };
  wallSeconds: number;
}

/**
 * One experiment run: prints timestamped progress lines and writes its JSON once done.
 *
 * @example
 * ```ts
 * import { Experiment } from "./_experiment.ts";
 * const exp = new Experiment("policy", 20240601);
 * exp.log("starting");
 * exp.write({ rows: [] }); // bench/results/exp-policy.json
 * ```
 */
export class Experiment {
  readonly name: string;
  readonly seed: number;
  #started = performance.now();
  #loadAtStart = loadAverage();

  /** Starts experiment `name` with `seed` and prints its first line. */
  constructor(name: string, seed: number) {
    this.name = name;
    this.seed = seed;
    const runtime = currentRuntime();
    this.log(
      `${runtime.name} ${runtime.version}, seed ${seed}, ${machine().cores} cores, ` +
        `1-min load ${this.#loadAtStart.toFixed(2)}`,
    );
  }

  /** Prints `[exp:<name> <seconds>s] message`. */
  log(message: string): void {
    const seconds = ((performance.now() - this.#started) / 1000).toFixed(1);
    console.log(`[exp:${this.name} ${seconds}s] ${message}`);
  }

  /** Writes `bench/results/exp-<name>.json`: the header plus `figures`; returns its path. */
  write(figures: Record<string, unknown>): string {
    const runtime = currentRuntime();
    const header: ExperimentHeader = {
      experiment: this.name,
      command: `deno task exp:${this.name}`,
      seed: this.seed,
      runtime: runtime.name,
      version: runtime.version,
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: { start: this.#loadAtStart, end: loadAverage() },
      wallSeconds: (performance.now() - this.#started) / 1000,
    };
    return writeResult(`exp-${this.name}.json`, { ...header, ...figures });
  }
}

/**
 * Writes `value` as pretty JSON to `bench/results/<fileName>` and returns the repo-relative path.
 *
 * @example
 * ```ts
 * import { writeResult } from "./_experiment.ts";
 * writeResult("loadgen-deno.json", { steps: [] });
 * ```
 */
export function writeResult(fileName: string, value: unknown): string {
  const dir = new URL("./results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(fileURLToPath(new URL(fileName, dir)), JSON.stringify(value, null, 2) + "\n");
  return `bench/results/${fileName}`;
}
