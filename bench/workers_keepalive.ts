/**
 * The Workers gateway under `wrangler dev` (workerd, the committed `wrangler.toml`: a global
 * ceiling of 64 permits leased in blocks of 8) with 32 closed-loop keep-alive connections:
 * `wrk -t1 -c32 -d8s` on `GET /product/sku-1?budget=1000`, the issue #21 load. Counts answers by
 * status, and branch outcomes (`aborted` above all) from the gateway's `/metrics`, and the CPU
 * time its processes used per answer (wrangler dev's Node process and both its workerd processes).
 *
 * With `--compare <dir>` it serves a second checkout of the project (e.g. a worktree of the
 * parent commit) side by side and alternates rounds between the two, so that both see the same
 * machine load. With `--workerd` it serves each checkout with plain `workerd serve` instead: the
 * Worker as `wrangler deploy --dry-run` bundles it, its `[vars]` from that checkout's
 * `wrangler.toml`, the permit object in memory, and no jobs bindings (so no wrangler dev proxy in
 * front). With `--hosts` it serves this checkout both ways, rounds alternating. The Worker answers
 * from its in-process simulated downstream unless `--downstream` starts the simulated downstream as
 * a process of its own (seeded latency, as `npm start` has it) and points `DOWNSTREAM_URL` at it:
 * five real fetches a request. Needs `wrk` (Debian: `apt-get install wrk`). Writes
 * `bench/results/workers-keepalive.json` (`-workerd`, `-hosts` and `-downstream` added to the name
 * as the flags are).
 *
 * ```sh
 * deno task bench:workers                                 # this checkout, 3 rounds
 * deno task bench:workers --compare ../before             # and another checkout, alternating
 * deno task bench:workers --workerd --compare ../before   # the same under plain workerd serve
 * deno task bench:workers --hosts --downstream            # wrangler dev against workerd serve
 * ```
 *
 * @module
 */
import {
  type ServedProcess,
  startSimulatedDownstream,
  startWorkerd,
  startWranglerDev,
} from "../test/_servers.ts";
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
  /** CPU time the Worker's processes used per answer, in ms. */
  cpuMsPerAnswer?: number;
}

/**
 * User + system CPU time of process `pid` and all its descendants so far, in ms (Linux `/proc`,
 * 100 ticks a second): `wrangler dev` is a Node process with two workerd children.
 */
function treeCpuMs(pid: number): number {
  let ms = 0;
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    ms = (Number(fields[11]) + Number(fields[12])) * 10;
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const children = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
      for (const child of children.split(" ").filter(Boolean)) ms += treeCpuMs(Number(child));
    }
  } catch (error) {
    // A process that exited between the listing and the read has no more CPU to count.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return ms;
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
const HOSTS = Deno.args.includes("--hosts");
const DOWNSTREAM = Deno.args.includes("--downstream");

function startWorker(
  name: string,
  dir: string,
  { workerd, vars }: { workerd: boolean; vars: Record<string, string> },
): Promise<ServedProcess> {
  const root = new URL(dir.endsWith("/") ? dir : `${dir}/`, `file://${Deno.cwd()}/`);
  if (workerd) return startWorkerd({ name, root, vars });
  return startWranglerDev({
    name,
    persistTo: Deno.makeTempDirSync({ prefix: "fanfare-bench-" }),
    root,
    vars,
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
  const cpuBefore = treeCpuMs(worker.pid);
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
  const cpuUsed = treeCpuMs(worker.pid) - cpuBefore;
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
    cpuMsPerAnswer: requests === 0 ? undefined : Math.round(cpuUsed / requests * 100) / 100,
  };
}

const compareFlag = Deno.args.indexOf("--compare");
const compareDir = compareFlag === -1 ? undefined : Deno.args[compareFlag + 1];
if (HOSTS && (WORKERD || compareDir !== undefined)) {
  throw new Error(
    "Cannot run bench:workers as --hosts serves this checkout both ways: leave out --workerd and --compare",
  );
}
const here = new URL("../", import.meta.url).pathname;
const targets: [string, ServedProcess][] = [];
const downstream = DOWNSTREAM ? await startSimulatedDownstream() : undefined;
try {
  const vars: Record<string, string> = downstream ? { DOWNSTREAM_URL: downstream.url } : {};
  if (HOSTS) {
    targets.push([
      "wrangler dev",
      await startWorker("wrangler dev", here, { workerd: false, vars }),
    ]);
    targets.push([
      "workerd serve",
      await startWorker("workerd serve", here, { workerd: true, vars }),
    ]);
  } else {
    targets.push(["this", await startWorker("this checkout", here, { workerd: WORKERD, vars })]);
  }
  if (compareDir !== undefined) {
    targets.push([
      "compare",
      await startWorker(`checkout at ${compareDir}`, compareDir, { workerd: WORKERD, vars }),
    ]);
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
  const flags = [
    WORKERD ? " --workerd" : "",
    HOSTS ? " --hosts" : "",
    DOWNSTREAM ? " --downstream" : "",
    compareDir === undefined ? "" : " --compare <dir>",
  ].join("");
  const name = [
    "workers-keepalive",
    WORKERD && "workerd",
    HOSTS && "hosts",
    DOWNSTREAM && "downstream",
  ]
    .filter(Boolean).join("-");
  const path = writeResult(`${name}.json`, {
    date: new Date().toISOString(),
    command: `deno task bench:workers${flags}`,
    machine: machine(),
    load: { connections: CONNECTIONS, durationS: DURATION_S, path: PATH, downstream: DOWNSTREAM },
    rounds,
  });
  console.log(`wrote ${path}`);
} finally {
  for (const [, worker] of targets) await worker.stop();
  await downstream?.stop();
}
