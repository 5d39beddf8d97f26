/**
 * The Workers gateway under `wrangler dev` (workerd, the committed `wrangler.toml`: a global
 * ceiling of 64 permits leased in blocks of 8) with 32 closed-loop keep-alive connections:
 * `wrk -t1 -c32 -d8s` on `GET /product/sku-1?budget=1000`, the issue #21 load. Counts answers by
 * status, and branch outcomes (`aborted` above all) from the gateway's `/metrics`.
 *
 * With `--compare <dir>` it serves a second checkout of the project (e.g. a worktree of the
 * parent commit) side by side and alternates rounds between the two, so that both see the same
 * machine load. With `--workerd` it serves each checkout with plain `workerd serve` instead: the
 * Worker as `wrangler deploy --dry-run` bundles it, its `[vars]` from that checkout's
 * `wrangler.toml`, the permit object in memory, and no jobs bindings (so no wrangler dev proxy in
 * front). Needs `wrk` (Debian: `apt-get install wrk`). Writes
 * `bench/results/workers-keepalive.json` (or `workers-keepalive-workerd.json`).
 *
 * ```sh
 * deno task bench:workers                                 # this checkout, 3 rounds
 * deno task bench:workers --compare ../before             # and another checkout, alternating
 * deno task bench:workers --workerd --compare ../before   # the same under plain workerd serve
 * ```
 *
 * @module
 */
import { type ServedProcess, startWorkerd, startWranglerDev } from "../test/_servers.ts";
import { writeResult } from "./_experiment.ts";
import { loadAverage, machine } from "./_runtime.ts";

const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const CONNECTIONS = 32;
const DURATION_S = 8;
const PATH = "product/sku-1?budget=1000";

/** Counts every answer by status in each wrk thread; prints `status <code> <count>` lines. */
const WRK_SCRIPT = `
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) counts = {} end
response = function(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
done = function(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do totals[status] = (totals[status] or 0) + n end
  end
  for status, n in pairs(totals) do io.write("status " .. status .. " " .. n .. "\\n") end
end
`;

interface Round {
  target: string;
  round: number;
  load1: number;
  requests: number;
  statuses: Record<string, number>;
  nonOk: number;
  /** Branch outcomes counted by the gateway during the round. */
  outcomes: Record<string, number>;
  /** Lines the runtime logged during the round that name the cross-request failure modes. */
  logged: { differentRequest: number; hung: number };
  /** CPU time the runtime process used per answer, in ms (with `--workerd` only). */
  cpuMsPerAnswer?: number;
}

/** User + system CPU time of process `pid` so far, in ms (Linux `/proc`, 100 ticks a second). */
function cpuMs(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Occurrences of the cross-request failure messages in `output` so far. */
function failureLines(output: string): { differentRequest: number; hung: number } {
  return {
    differentRequest: output.split("Cannot perform I/O on behalf of a different request").length -
      1,
    hung: output.split("detected that your Worker's code had hung").length - 1,
  };
}

const WORKERD = Deno.args.includes("--workerd");

function startWorker(name: string, dir: string): Promise<ServedProcess> {
  const root = new URL(dir.endsWith("/") ? dir : `${dir}/`, `file://${Deno.cwd()}/`);
  if (WORKERD) return startWorkerd({ name, root });
  return startWranglerDev({
    name,
    persistTo: Deno.makeTempDirSync({ prefix: "fanfare-bench-" }),
    root,
  });
}

async function outcomes(worker: ServedProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${worker.url}metrics`)).text();
  const totals: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^fanfare_branch_outcomes_total\{.*outcome="(\w+)".*\} (\S+)$/);
    if (match) totals[match[1]] = (totals[match[1]] ?? 0) + Number(match[2]);
  }
  return totals;
}

async function round(target: string, worker: ServedProcess, index: number): Promise<Round> {
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(script, WRK_SCRIPT);
  const before = await outcomes(worker);
  const loggedBefore = failureLines(worker.output());
  const cpuBefore = WORKERD ? cpuMs(worker.pid) : 0;
  const load1 = loadAverage();
  const { stdout } = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${DURATION_S}s`,
      "-s",
      script,
      `${worker.url}${PATH}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  await Deno.remove(script);
  const text = new TextDecoder().decode(stdout);
  const statuses: Record<string, number> = {};
  for (const [, status, n] of text.matchAll(/^status (\d+) (\d+)$/gm)) statuses[status] = Number(n);
  const after = await outcomes(worker);
  const delta = Object.fromEntries(
    Object.entries(after).map(([outcome, n]) => [outcome, n - (before[outcome] ?? 0)]),
  );
  const requests = Object.values(statuses).reduce((sum, n) => sum + n, 0);
  const loggedAfter = failureLines(worker.output());
  const cpuUsed = WORKERD ? cpuMs(worker.pid) - cpuBefore : undefined;
  return {
    target,
    round: index,
    load1,
    requests,
    statuses,
    nonOk: requests - (statuses["200"] ?? 0),
    outcomes: delta,
    logged: {
      differentRequest: loggedAfter.differentRequest - loggedBefore.differentRequest,
      hung: loggedAfter.hung - loggedBefore.hung,
    },
    cpuMsPerAnswer: cpuUsed === undefined || requests === 0
      ? undefined
      : Math.round(cpuUsed / requests * 100) / 100,
  };
}

const compareFlag = Deno.args.indexOf("--compare");
const compareDir = compareFlag === -1 ? undefined : Deno.args[compareFlag + 1];
const targets: [string, ServedProcess][] = [];
try {
  targets.push([
    "this",
    await startWorker("this checkout", new URL("../", import.meta.url).pathname),
  ]);
  if (compareDir !== undefined) {
    targets.push(["compare", await startWorker(`checkout at ${compareDir}`, compareDir)]);
  }
  const rounds: Round[] = [];
  for (let index = 1; index <= ROUNDS; index++) {
    for (const [target, worker] of targets) {
      const result = await round(target, worker, index);
      rounds.push(result);
      console.log(
        `${target} round ${index}: load ${result.load1.toFixed(2)}, ${result.requests} answers, ` +
          `${result.nonOk} not 200 ${JSON.stringify(result.statuses)}, ` +
          `branches ${JSON.stringify(result.outcomes)}, logged ${JSON.stringify(result.logged)}` +
          (result.cpuMsPerAnswer === undefined ? "" : `, ${result.cpuMsPerAnswer} ms CPU/answer`),
      );
    }
  }
  const path = writeResult(`workers-keepalive${WORKERD ? "-workerd" : ""}.json`, {
    date: new Date().toISOString(),
    command: `deno task bench:workers${WORKERD ? " --workerd" : ""}${
      compareDir === undefined ? "" : " --compare <dir>"
    }`,
    machine: machine(),
    load: { connections: CONNECTIONS, durationS: DURATION_S, path: PATH },
    rounds,
  });
  console.log(`wrote ${path}`);
} finally {
  for (const [, worker] of targets) await worker.stop();
}
