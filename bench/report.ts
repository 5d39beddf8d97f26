/**
 * Regenerates `bench/REPORT.md` and its charts (`bench/plots/*.svg`, Vega-Lite rendered
 * headless) from the JSON results in `bench/results/`: one section per experiment of issue 7,
 * each with a table, a chart, the command and seed that produced it, the runtime, machine and
 * load average it ran under, and a finding in plain words. An experiment without results says
 * "not yet measured" and names the command that fills it.
 *
 * ```sh
 * deno task report
 * ```
 *
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { reportChart as chart } from "./_charts.ts";
import { bulkheadSection, overloadSection } from "./_overload_report.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const resultsDir = new URL("./results/", import.meta.url);

function load(fileName: string): Json | undefined {
  const url = new URL(fileName, resultsDir);
  return existsSync(url) ? JSON.parse(readFileSync(url, "utf8")) : undefined;
}

function num(value: unknown, digits = 1): string {
  return typeof value === "number" && Number.isFinite(value)
    ? value.toLocaleString("en", { maximumFractionDigits: digits })
    : "–";
}

function pct(share: number): string {
  return `${num(share * 100, 1)} %`;
}

function mb(bytes: number): string {
  return `${num(bytes / 2 ** 20, 0)} MB`;
}

function table(head: string[], rows: unknown[][]): string {
  const line = (cells: unknown[]) => `| ${cells.map((c) => String(c)).join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function statuses(record: Record<string, number>): string {
  return Object.entries(record).map(([s, n]) => `${s}×${n}`).join(" ");
}

/** The provenance line under each section. */
function provenance(json: Json, command: string, file: string): string {
  const load = json.loadAverage;
  const machine = json.machine;
  return `Command: \`${command}\` · seed ${json.seed ?? "–"} · ${json.runtime} ${json.version}` +
    (machine ? ` on ${machine.cores} cores (${machine.cpu}, ${machine.os} ${machine.arch})` : "") +
    (load ? ` · 1-min load ${num(load.start, 2)} → ${num(load.end, 2)}` : "") +
    ` · ${json.date ?? "date not recorded"} · from \`bench/results/${file}\``;
}

function notYet(command: string, what: string): string {
  return `**Not yet measured.** ${what} Run \`${command}\`, then \`deno task report\`.`;
}

interface Section {
  title: string;
  body: string[];
}

const sections: Section[] = [];
const loads: string[] = [];

function noteLoad(name: string, json: Json | undefined) {
  if (json?.loadAverage) {
    loads.push(`${name} ${num(json.loadAverage.start, 2)} → ${num(json.loadAverage.end, 2)}`);
  }
}

/**
 * Adds a section drawn from one results file: `render` fills `body` from its JSON, or the
 * section says "not yet measured" with the command that fills it; a provenance line closes it.
 */
async function section(
  title: string,
  source: { file: string; name: string; command: string; missing: string },
  render: (json: Json, body: string[]) => Promise<void> | void,
): Promise<void> {
  const json = load(source.file);
  noteLoad(source.name, json);
  const body: string[] = [];
  if (json === undefined) body.push(notYet(source.command, source.missing));
  else {
    await render(json, body);
    body.push(provenance(json, json.command ?? source.command, source.file));
  }
  sections.push({ title, body });
}

// ---- load generator sweep
await section("Load generator: open-model sweep", {
  file: "exp-loadgen.json",
  name: "loadgen",
  command: "deno task exp:loadgen",
  missing: "The open-model sweep has no results.",
}, async (json, body) => {
  const rows = json.sweeps.flatMap((s: Json) =>
    s.steps.map((st: Json) => ({ target: s.target, ...st }))
  );
  const inProcess = rows.filter((r: Json) => r.target === "in-process");
  const best = (rs: Json[]) =>
    rs.reduce((a: Json, b: Json) => b.answeredPerSecond > a.answeredPerSecond ? b : a, rs[0]);
  const sustained = (rs: Json[]) =>
    rs.filter((r: Json) =>
      r.achievedPerSecond >= 0.95 * r.offeredPerSecond &&
      r.latencyMs.p99 < 1000
    ).map((r: Json) => r.offeredPerSecond);
  const findings = json.sweeps.map((s: Json) => {
    const top = best(s.steps);
    const ok = sustained(s.steps);
    const skipped = s.skipped?.length
      ? ` (saturated; ${
        s.skipped.map((r: number) => `${r.toLocaleString("en")}/s`).join(" and ")
      } not run)`
      : "";
    return `**${s.target}**${skipped}: the highest rate held (achieved ≥ 95 % of offered, p99 < 1 s) was ${
      ok.length ? `${Math.max(...ok).toLocaleString("en")}/s` : "none of the steps"
    }; at most ${num(top.answeredPerSecond, 0)} answers/s (offered ${
      top.offeredPerSecond.toLocaleString("en")
    }/s).`;
  });
  const reached10k = inProcess.some((r: Json) =>
    r.offeredPerSecond >= 10_000 && r.achievedPerSecond >= 9_500 && r.latencyMs.p99 < 1000
  );
  body.push(
    `Finding: ${findings.join(" ")} The in-process target ${
      reached10k ? "reached" : "did **not** reach"
    } 10,000 requests/s. Each gateway request is six Hono requests (the gateway plus five ` +
      `in-process downstream calls), each with its own \`Request\`, headers, abort signal, zod ` +
      `validation and JSON body, all on one event loop shared with the load generator; a CPU ` +
      `profile of the saturated in-process run put about a fifth of the time in garbage ` +
      `collection, a seventh in Hono's routing and validators, and the rest spread over ` +
      `Request/Headers/AbortSignal natives, timers and error construction for cut branches, ` +
      `with no single hot spot to remove. Past saturation, latency counted from the intended ` +
      `send time grows with the backlog, which is what an open-model generator is for.`,
    table(
      [
        "target",
        "offered/s",
        "achieved/s",
        "answered/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "statuses",
        "degraded",
        "peak in-flight branches",
        "peak RSS",
      ],
      rows.map((r: Json) => [
        r.target,
        r.offeredPerSecond.toLocaleString("en"),
        num(r.achievedPerSecond, 0),
        num(r.answeredPerSecond, 0),
        num(r.latencyMs.p50),
        num(r.latencyMs.p99),
        num(r.latencyMs.p999),
        statuses(r.statuses),
        pct(r.degradedShare),
        r.peakInFlightBranches,
        mb(r.peakRssBytes),
      ]),
    ),
    await chart("loadgen-rate", "Achieved and answered rate vs offered", {
      data: {
        values: rows.flatMap((r: Json) => [
          {
            target: r.target,
            series: `${r.target} achieved`,
            offered: r.offeredPerSecond,
            rate: r.achievedPerSecond,
          },
          {
            target: r.target,
            series: `${r.target} answered`,
            offered: r.offeredPerSecond,
            rate: r.answeredPerSecond,
          },
        ]),
      },
      mark: { type: "line", point: true },
      encoding: {
        x: {
          field: "offered",
          type: "quantitative",
          scale: { type: "log" },
          title: "offered requests/s",
        },
        y: { field: "rate", type: "quantitative", scale: { type: "log" }, title: "requests/s" },
        color: { field: "series", type: "nominal" },
      },
    }),
    await chart("loadgen-latency", "p99 latency (from intended send) vs offered rate", {
      data: {
        values: rows.map((r: Json) => ({
          target: r.target,
          offered: r.offeredPerSecond,
          p99: r.latencyMs.p99,
        })),
      },
      mark: { type: "line", point: true },
      encoding: {
        x: {
          field: "offered",
          type: "quantitative",
          scale: { type: "log" },
          title: "offered requests/s",
        },
        y: { field: "p99", type: "quantitative", scale: { type: "log" }, title: "p99 ms" },
        color: { field: "target", type: "nominal" },
      },
    }),
    `Workload: ${json.description}; downstream median 5 ms, p99 200 ms (seeded lognormal, ` +
      `no injected tail); ${json.secondsPerStep} s of arrivals per step, at most ` +
      `${json.maxRequestsPerStep.toLocaleString("en")} requests. Over HTTP the load generator, ` +
      `gateway and downstream are three processes on the same two cores.`,
  );
});

// ---- the gateway's join and deadline (the gateway issue's bench)
await section("Gateway: joining five branches, and a straggler cut at the budget", {
  file: "gateway-deno.json",
  name: "gateway",
  command: "deno task bench:gateway",
  missing: "The gateway's latency bench has not run.",
}, (gateway, body) => {
  const rows: Json[] = gateway.results;
  const q = (d: Json) => `${num(d.p50)} / ${num(d.p99)} / ${num(d.max)}`;
  const slowestBranchP99 = (r: Json) =>
    Math.max(...Object.values(r.branches).map((b) => (b as Json).durationMs.p99));
  const sumOfBranchP99 = (r: Json) =>
    Object.values(r.branches).reduce((sum: number, b) => sum + (b as Json).durationMs.p99, 0);
  const straggler = rows.filter((r) => r.scenario === "straggler");
  body.push(
    `Finding: with five healthy branches the request's p99 follows the p99 of each request's ` +
      `slowest branch (a few ms of overhead), far below the sum of the branches' p99s — the ` +
      `branches run side by side, not one after another. With a 2 s straggler under ` +
      `bestEffort and a 300 ms budget, request p99 was ${
        straggler.map((r) => `${num(r.request.p99)} ms ${r.mode}`).join(" and ")
      } (target: under ${gateway.budgetToleranceMs + 300} ms).`,
    table(
      [
        "mode",
        "scenario",
        "request p50 / p99 / max ms",
        "p99 of each request's slowest branch",
        "highest single-branch p99",
        "sum of branch p99s",
        "degraded",
        "statuses",
      ],
      rows.map((r) => [
        r.mode,
        r.label,
        q(r.request),
        num(r.slowestBranchEnd.p99),
        num(slowestBranchP99(r)),
        num(sumOfBranchP99(r)),
        pct(r.degradedShare),
        statuses(r.statuses),
      ]),
    ),
    `The five branches draw independently, so the slowest of five sits at one branch's ` +
      `p99.8, not its p99: compare the request p99 with the p99 of each request's slowest ` +
      `branch end, ${
        rows.filter((r) => r.scenario === "healthy").map((r) =>
          `${num(r.slowestBranchEnd.p99)} ms ${r.mode}`
        ).join(" and ")
      }.`,
  );
});

// ---- 1. unbounded vs bounded (the streaming issue's bench)
const STREAM_FILE = "stream-deno.json";
const stream = load(STREAM_FILE);
noteLoad("stream", stream);
{
  const body: string[] = [];
  const uvb = stream?.unboundedVsBounded;
  if (uvb === undefined) {
    body.push(
      notYet("deno task bench:stream", "The streaming bench has no unbounded-vs-bounded run."),
    );
  } else {
    const rssOf = (text: string | undefined) =>
      Number(/rss ([\d.]+) MB/.exec(text ?? "")?.[1] ?? NaN);
    const inFlightOf = (text: string | undefined) =>
      Number(/in-flight ([\d,]+)/.exec(text ?? "")?.[1]?.replaceAll(",", "") ?? NaN);
    const bounded = uvb.bounded.summary ?? {};
    const unbounded = uvb.unbounded;
    const rows = [
      [
        "bounded",
        bounded.limit,
        bounded.processed,
        bounded.peakInFlight,
        bounded.peakRssMB,
        uvb.bounded.exit,
        uvb.bounded.wallMs,
      ],
      [
        "unbounded",
        "none",
        unbounded.lastProgress?.match(/([\d,]+)\/[\d,]+/)?.[1] ?? "–",
        inFlightOf(unbounded.lastProgress),
        rssOf(unbounded.lastProgress),
        unbounded.exit,
        unbounded.wallMs,
      ],
    ];
    body.push(
      `Finding: with V8 flags \`${(uvb.v8Flags ?? []).join(" ")}\`, the bounded run processed ` +
        `${num(bounded.processed, 0)} of ${
          num(uvb.tasks, 0)
        } tasks with at most ${bounded.peakInFlight} ` +
        `in flight and a peak RSS of ${num(bounded.peakRssMB)} MB; the unbounded one ` +
        `${unbounded.exit === 0 ? "finished" : `died (exit ${unbounded.exit})`} after ${
          num(unbounded.wallMs, 0)
        } ms, ` +
        `last seen with ${num(inFlightOf(unbounded.lastProgress), 0)} in flight.`,
      table(
        ["run", "limit", "processed", "peak in flight", "peak RSS MB", "exit", "wall ms"],
        rows,
      ),
      await chart("exp1-unbounded", "Peak in-flight tasks: bounded vs unbounded", {
        data: { values: rows.map((r) => ({ run: r[0], inFlight: r[3] })) },
        mark: "bar",
        encoding: {
          x: { field: "run", type: "nominal" },
          y: {
            field: "inFlight",
            type: "quantitative",
            scale: { type: "log" },
            title: "peak in flight (log)",
          },
        },
      }),
    );
  }
  const scale: Json[] | undefined = stream?.scale;
  if (scale !== undefined) {
    body.push(
      `The bounded job at scale (\`enrich\`, trivial tasks, limit ${scale[0].limit}, seed ` +
        `${scale[0].seed}): memory is a function of the limit, not of the number of tasks.`,
      table(
        ["tasks", "wall s", "tasks/s", "peak RSS MB", "peak in flight", "failed", "complete"],
        scale.map((r) => [
          r.tasks.toLocaleString("en"),
          num(r.wallMs / 1000),
          r.tasksPerSecond.toLocaleString("en"),
          num(r.peakRssMB),
          r.peakInFlight,
          r.failed,
          r.complete ? "yes" : "no",
        ]),
      ),
    );
  }
  if (stream !== undefined) {
    body.push(provenance(stream, "deno task bench:stream", STREAM_FILE));
  }
  sections.push({ title: "1. Unbounded vs bounded fan-out (batch)", body });
}

// ---- 2. cancellation leak
await section("2. Cancellation leak", {
  file: "exp-cancel.json",
  name: "cancel",
  command: "deno task exp:cancel",
  missing: "No cancellation-leak results.",
}, async (json, body) => {
  const rows = [
    ...json.phases.clientCancel,
    ...json.phases.deadlineExpiry,
    ...json.waves.correct,
    ...json.waves.broken,
  ].map((
    s: Json,
  ) => [s.phase, s.point, s.inFlightBranches, s.downstreamInFlight, s.pendingTimers]);
  const check = (i: number) => json.checks[i]?.pass ? "yes" : "**no**";
  const broken = json.waves.broken;
  body.push(
    `Finding: after a client cancel of ${json.requests} requests, in-flight branches, ` +
      `downstream calls and pending timers were back to baseline 1 s later: ${check(0)}; ` +
      `after a deadline expiry (budget ${json.deadlineBudgetMs} ms): ${check(1)}; over ` +
      `${json.wave.count} waves of ${json.wave.requests} cancelled requests the correct gateway ` +
      `stayed flat: ${check(2)}. With one branch that ignores its signal, the same measurement ` +
      `climbs: ${check(3)} — ${broken.map((s: Json) => s.downstreamInFlight).join(" → ")} ` +
      `downstream calls still running and ${
        broken.map((s: Json) => s.pendingTimers).join(" → ")
      } ` +
      `pending timers, while the gateway's own in-flight gauge reads 0: the executor lets go ` +
      `of the branch, but the work it started goes on.`,
    table(
      ["phase", "point", "in-flight branches", "downstream in flight", "pending timers"],
      rows,
    ),
    await chart("exp2-waves", "After each wave of cancels: correct vs signal-ignoring branch", {
      data: {
        values: ["correct", "broken"].flatMap((variant) =>
          json.waves[variant].flatMap((s: Json, wave: number) => [
            { variant, wave, metric: "downstream in flight", value: s.downstreamInFlight },
            { variant, wave, metric: "pending timers", value: s.pendingTimers },
          ])
        ),
      },
      mark: { type: "line", point: true },
      encoding: {
        x: {
          field: "wave",
          type: "ordinal",
          title: "waves of cancelled requests (0 = baseline)",
        },
        y: { field: "value", type: "quantitative", title: "count 1 s after the wave" },
        color: { field: "variant", type: "nominal" },
        strokeDash: { field: "metric", type: "nominal" },
      },
    }),
    await chart("exp2-series", "Correct gateway over time: cancel, then deadline expiry", {
      data: {
        values: json.series
          .filter((s: Json) => s.phase === "client cancel" || s.phase === "deadline expiry")
          .flatMap((s: Json) => [
            { t: s.tMs / 1000, metric: "in-flight branches", value: s.inFlightBranches },
            { t: s.tMs / 1000, metric: "pending timers", value: s.pendingTimers },
          ]),
      },
      mark: "line",
      encoding: {
        x: { field: "t", type: "quantitative", title: "seconds" },
        y: { field: "value", type: "quantitative", title: "count" },
        color: { field: "metric", type: "nominal" },
      },
    }),
  );
});

// ---- 3. policy sweep
await section("3. Partial-failure policy sweep", {
  file: "exp-policy.json",
  name: "policy",
  command: "deno task exp:policy",
  missing: "No policy-sweep results.",
}, async (json, body) => {
  const label = (id: string) => json.mixes.find((m: Json) => m.id === id)?.label ?? id;
  const recs = Object.entries(json.recommendations).flatMap(([mix, list]) =>
    (list as Json[]).map((r) => [label(mix), r.slo, `**${r.policy}**`, r.why])
  );
  const same = json.mixes.every((m: Json) => {
    const rs = json.rows.filter((r: Json) => r.mix === m.id);
    const c = rs.find((r: Json) => r.policy === "collectAll");
    const b = rs.find((r: Json) => r.policy === "bestEffort");
    return c && b && c.statuses["200"] === b.statuses["200"];
  });
  body.push(
    `Finding: failFast answers fastest because it gives up at the first failure, and so ` +
      `answers 200 least often; once an optional branch always fails it never answers 200. ` +
      `bestEffort and collectAll run every branch and ${
        same ? "answered exactly the same requests 200" : "differ in which requests answered 200"
      }: at the gateway they differ only in how the failures are reported (collectAll adds an ` +
      `\`errors\` list). A failed required branch (price, inventory) is a 502 under every policy.`,
    table(
      [
        "mix",
        "policy",
        "p50 ms",
        "p99 ms",
        "completed (200)",
        "completeness",
        "degraded",
        "statuses",
        "answered/s",
      ],
      json.rows.map((r: Json) => [
        label(r.mix),
        r.policy,
        num(r.latencyMs.p50),
        num(r.latencyMs.p99),
        pct(r.completedShare),
        pct(r.completeness),
        pct(r.degradedShare),
        statuses(r.statuses),
        num(r.answeredPerSecond, 0),
      ]),
    ),
    "Recommendation per SLO (computed from the rows above):",
    table(["mix", "SLO", "policy", "because"], recs),
    await chart("exp3-policy", "p99 vs share answered 200, per policy", {
      data: {
        values: json.rows.map((r: Json) => ({
          policy: r.policy,
          mix: label(r.mix),
          p99: r.latencyMs.p99,
          completed: r.completedShare * 100,
        })),
      },
      mark: { type: "point", filled: true, size: 120 },
      encoding: {
        x: { field: "completed", type: "quantitative", title: "% answered 200" },
        y: { field: "p99", type: "quantitative", title: "p99 ms" },
        color: { field: "policy", type: "nominal" },
        shape: { field: "mix", type: "nominal", legend: { orient: "bottom", columns: 1 } },
      },
    }),
    `Workload: ${json.requestsPerRun} requests per run at ${json.ratePerSecond}/s in-process, ` +
      `budget ${json.budgetMs} ms, default registry (per-branch timeouts 200–300 ms); faults ` +
      `through the gateway's \`fault.errorRate=0.1\` and \`fault.recommendations=fail\` ` +
      `(branch 3, counting from 0, optional).`,
  );
});

// ---- 4. straggler
await section("4. Straggler vs deadline budget", {
  file: "exp-straggler.json",
  name: "straggler",
  command: "deno task exp:straggler",
  missing: "No straggler results.",
}, async (json, body) => {
  const by = (id: string) => json.rows.find((r: Json) => r.config === id);
  const none = by("no-deadline");
  const cut = by("budget-deadline");
  body.push(
    `Finding: one request in ${json.stragglerEvery} with a ${json.stragglerMs} ms branch is ` +
      `below the p99's resolution, so it shows at p99.9: without a per-branch deadline p99.9 ` +
      `was ${num(none.latencyMs.p999, 0)} ms (max ${num(none.latencyMs.max, 0)}); with each ` +
      `branch's deadline cut from the remaining ${cut.budgetMs} ms budget it was ` +
      `${num(cut.latencyMs.p999, 0)} ms (max ${num(cut.latencyMs.max, 0)}). p99 moved from ` +
      `${num(none.latencyMs.p99, 0)} to ${num(cut.latencyMs.p99, 0)} ms, because the budget also ` +
      `cuts the simulated downstream's own lognormal tail; the price is ${
        pct(cut.degradedShare)
      } ` +
      `degraded answers and ${cut.statuses["502"] ?? 0} 502s where a required branch was cut.`,
    table(
      ["configuration", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "degraded", "statuses"],
      json.rows.map((r: Json) => [
        json.configs.find((c: Json) => c.id === r.config)?.label ?? r.config,
        num(r.latencyMs.p50),
        num(r.latencyMs.p99),
        num(r.latencyMs.p999),
        num(r.latencyMs.max),
        pct(r.degradedShare),
        statuses(r.statuses),
      ]),
    ),
    await chart("exp4-straggler", "Request latency quantiles, 1 in 1,000 with a 2 s branch", {
      data: {
        values: json.rows.flatMap((r: Json) =>
          ["p50", "p90", "p99", "p999", "max"].map((q) => ({
            config: r.config,
            quantile: q === "p999" ? "p99.9" : q,
            ms: r.latencyMs[q],
          }))
        ),
      },
      mark: "bar",
      encoding: {
        x: { field: "quantile", type: "nominal", sort: ["p50", "p90", "p99", "p99.9", "max"] },
        xOffset: { field: "config" },
        y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms (log)" },
        color: { field: "config", type: "nominal" },
      },
    }),
    `Workload: ${json.requestsPerRun.toLocaleString("en")} requests per configuration at ` +
      `${json.ratePerSecond}/s in-process, bestEffort, per-branch timeouts 10 s; stragglers ` +
      `(\`fault.reviews=slow:${json.stragglerMs}\`) at seeded positions ${
        json.stragglerIndexes.join(", ")
      }.`,
  );
});

// ---- 5. ordered vs unordered fan-in
{
  const json = load("exp-fanin.json");
  noteLoad("fanin", json);
  const body: string[] = [];
  const gap = stream?.stragglerGap;
  if (json === undefined) {
    body.push(notYet("deno task exp:fanin", "No fan-in results."));
  } else {
    const by = (id: string) => json.rows.find((r: Json) => r.id === id);
    const ordered = by("fanOut-ordered");
    const onResult = by("fanOut-onResult");
    const sOrdered = by("fanOutStream-ordered");
    const sUnordered = by("fanOutStream-unordered");
    body.push(
      `Finding: collecting ordered values makes the caller wait for the last task ` +
        `(${num(ordered.firstResultMs, 0)} ms) and hold every result until then ` +
        `(${mb(ordered.retainedHeapBytes)} still held after a GC); \`onResult\` hands the first ` +
        `one over after ${
          num(onResult.firstResultMs)
        } ms and holds none. An ordered stream emits ` +
        `as soon as the head is done (${num(sOrdered.firstResultMs)} ms) but a slow head stalls ` +
        `its window (${sOrdered.peakHeld} results held behind it) and stretched the run to ` +
        `${num(sOrdered.completeMs, 0)} ms against ${num(sUnordered.completeMs, 0)} ms unordered.`,
      table(
        [
          "case",
          "first result ms",
          "complete ms",
          "results",
          "peak memory Δ",
          "held after GC",
          "peak held behind head",
        ],
        json.rows.map((r: Json) => [
          r.label,
          num(r.firstResultMs),
          num(r.completeMs, 0),
          r.results,
          mb(r.peakHeapBytes),
          mb(r.retainedHeapBytes),
          r.peakHeld ?? "–",
        ]),
      ),
      await chart("exp5-fanin", "Time to first result and to completion", {
        data: {
          values: json.rows.flatMap((r: Json) => [
            { case: r.label, metric: "first result", ms: Math.max(r.firstResultMs, 0.1) },
            { case: r.label, metric: "complete", ms: r.completeMs },
          ]),
        },
        mark: "bar",
        encoding: {
          y: { field: "case", type: "nominal", title: null },
          yOffset: { field: "metric" },
          x: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms (log)" },
          color: { field: "metric", type: "nominal" },
        },
      }),
      `Workload: ${json.tasks.toLocaleString("en")} tasks at limit ${json.limit}, seeded ` +
        `lognormal sleeps (median 5 ms, p99 200 ms), ${json.resultBytes}-byte results; memory is ` +
        `\`heapUsed + external\` above a post-GC baseline (GC exposed: ${json.gcExposed}).`,
      provenance(json, json.command, "exp-fanin.json"),
    );
  }
  if (gap !== undefined) {
    body.push(
      `The streaming bench adds a 2 s straggler at the head (${gap.straggler}, ` +
        `${gap.tasks.toLocaleString("en")} tasks, limit ${gap.limit}):`,
      table(
        ["mode", "first result ms", "peak held", "total ms"],
        gap.runs.map((r: Json) => [r.mode, r.firstResultMs, r.peakHeld, r.totalMs]),
      ),
      provenance(stream!, "deno task bench:stream", STREAM_FILE),
    );
  }
  sections.push({ title: "5. Ordered vs unordered fan-in", body });
}

// ---- 6. aggregate cap (the limiter issue's bench)
await section("6. Aggregate cap at high rate", {
  file: "limiter-deno.json",
  name: "limiter",
  command: "deno task bench:limiter",
  missing:
    "The global limiter's bench (per-request limits only vs the global ceiling at 10,000 requests/s × F=5) has not written its JSON yet.",
}, async (json, body) => {
  const rows: Json[] = json.results;
  const byMode = (rate: number, mode: string) =>
    rows.find((r) => r.ratePerSecond === rate && r.mode === mode);
  const fewer = rows.filter((r) => r.mode === "blocks").map((blocks) => {
    const plain = byMode(blocks.ratePerSecond, "plain");
    return `${num(plain.ledgerCallsPerRequest / blocks.ledgerCallsPerRequest, 0)}× at ` +
      `${blocks.ratePerSecond.toLocaleString("en")}/s`;
  });
  const unbounded = rows.filter((r) => r.mode === "per-request");
  body.push(
    `Finding: with per-request limits only, the downstream saw up to ${
      Math.max(...unbounded.map((r) => r.maxInFlightBranches)).toLocaleString("en")
    } calls in flight at once; with the global ceiling of ${json.config.capacity} permits it ` +
      `never saw more than ${
        Math.max(
          ...rows.filter((r) => r.mode !== "per-request").map((r) => r.maxInFlightBranches),
        )
      }, and the excess became fast 503s instead of a queue. Block leasing cut ledger calls per ` +
      `request ${fewer.join(" and ")} against one call per acquire and release. At 10,000/s ` +
      `this 2-core machine is saturated with or without a ceiling (p50 in seconds), so those ` +
      `latencies measure the overloaded process, not the limiter.`,
    table(
      ["rate /s", "mode", "max in flight", "ledger calls / request", "p50 ms", "p99 ms", "503"],
      rows.map((r) => [
        r.ratePerSecond.toLocaleString("en"),
        r.mode,
        r.maxInFlightBranches,
        r.ledgerCallsPerRequest === null ? "–" : num(r.ledgerCallsPerRequest, 3),
        num(r.p50Ms),
        num(r.p99Ms),
        pct(r.rate503),
      ]),
    ),
    await chart("exp6-limiter", "Most downstream calls in flight at once", {
      data: {
        values: rows.map((r) => ({
          rate: `${r.ratePerSecond.toLocaleString("en")}/s`,
          mode: r.mode,
          inFlight: r.maxInFlightBranches,
        })),
      },
      mark: "bar",
      encoding: {
        y: { field: "mode", type: "nominal", title: null },
        yOffset: { field: "rate" },
        x: { field: "inFlight", type: "quantitative", title: "calls in flight (max)" },
        color: { field: "rate", type: "nominal" },
      },
    }),
    `Workload: the gateway in process, F = ${json.config.branches} branches, open-model ` +
      `arrival for ${json.config.durationS} s per point; ceiling ${json.config.capacity} ` +
      `permits with a queue of ${json.config.maxWaiters}; "plain" and "blocks" are ` +
      `${json.config.isolates} isolates sharing one ledger, blocks of ${json.config.blockSize}.`,
  );
});

// ---- 7. streaming backpressure
{
  const body: string[] = [];
  const bp = stream?.backpressure;
  if (bp === undefined) {
    body.push(notYet("deno task bench:stream", "The streaming bench has no backpressure run."));
  } else {
    const maxUnread = Math.max(...bp.samples.map((s: Json) => s.unread));
    const last = bp.samples[bp.samples.length - 1];
    body.push(
      `Finding: with the consumer at half the producer's speed (${bp.consumerMs} ms vs ` +
        `${bp.producerMs} ms per item), pulls follow reads: after ${last.ms} ms ${last.pulled} ` +
        `pulled, ${last.read} read, and never more than ${maxUnread} pulled-but-unread ` +
        `(bound: limit ${bp.limit} + highWaterMark ${bp.highWaterMark} = ${bp.maxUnread}).`,
      table(
        ["ms", "pulled", "read", "unread"],
        bp.samples.filter((_: Json, i: number) => i % 10 === 9 || i === 0).map((
          s: Json,
        ) => [s.ms, s.pulled, s.read, s.unread]),
      ),
      await chart("exp7-backpressure", "Producer pulls vs consumer reads over time", {
        data: {
          values: bp.samples.flatMap((s: Json) =>
            ["pulled", "read", "unread"].map((k) => ({ ms: s.ms, series: k, n: s[k] }))
          ),
        },
        mark: "line",
        encoding: {
          x: { field: "ms", type: "quantitative", title: "ms" },
          y: { field: "n", type: "quantitative", title: "tasks" },
          color: { field: "series", type: "nominal" },
        },
      }),
      provenance(stream!, "deno task bench:stream", STREAM_FILE),
    );
  }
  sections.push({ title: "7. Backpressure proof for streaming", body });
}

// ---- 8. hedging
await section("8. Hedging: tail and extra load", {
  file: "hedge-deno.json",
  name: "hedge",
  command: "deno task bench:hedge",
  missing: "The hedging bench has not written its JSON yet.",
}, async (json, body) => {
  const label = (id: string) => json.distributions?.find((d: Json) => d.id === id)?.label ?? id;
  const verdicts = (json.adaptiveVersusNone ?? []).map((v: Json) =>
    `${v.distribution}: adaptive p99 cut ${num(v.p99Cut, 2)}×, p99.9 cut ${num(v.p999Cut, 2)}× ` +
    `for ${pct(v.extraLoad)} extra requests (target ${v.target}: ${v.met ? "met" : "not met"})`
  );
  body.push(
    `Finding: ${verdicts.join("; ")}.`,
    table(
      [
        "distribution",
        "mode",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "extra load",
        "hedges sent / won",
      ],
      json.cases.map((c: Json) => [
        c.distribution,
        c.mode,
        num(c.p50),
        num(c.p99),
        num(c.p999),
        num(c.max),
        pct(c.extraLoad),
        `${c.hedgesSent} / ${c.hedgesWon}`,
      ]),
    ),
    await chart("exp8-hedging", "Hedging: p99 vs extra load", {
      data: {
        values: json.cases.map((c: Json) => ({
          distribution: c.distribution,
          mode: c.mode,
          p99: c.p99,
          extra: c.extraLoad * 100,
        })),
      },
      mark: { type: "point", filled: true, size: 120 },
      encoding: {
        x: { field: "extra", type: "quantitative", title: "% extra requests" },
        y: { field: "p99", type: "quantitative", scale: { type: "log" }, title: "p99 ms (log)" },
        color: { field: "mode", type: "nominal" },
        shape: { field: "distribution", type: "nominal" },
      },
    }),
    `Distributions: ${
      (json.distributions ?? []).map((d: Json) => `${d.id} — ${label(d.id)}`).join("; ")
    }.`,
  );
});

// ---- 9. peers
{
  const runtimes = ["deno", "bun", "node"].map((r) => ({ r, json: load(`executor-${r}.json`) }))
    .filter((x) => x.json !== undefined);
  const body: string[] = [];
  for (const { r, json } of runtimes) noteLoad(`executor-${r}`, json);
  if (runtimes.length === 0) {
    body.push(notYet("deno task bench:executor", "No executor results."));
  } else {
    const cases = runtimes[0].json.cases.map((c: Json) => ({ id: c.id, label: c.label }));
    const ns = (json: Json, id: string) => json.cases.find((c: Json) => c.id === id)?.nsPerTask;
    const deno = runtimes[0].json;
    const node = runtimes.find(({ r }) => r === "node")?.json;
    body.push(
      `Finding: on ${deno.runtime} ${deno.version}, fanOut (default) costs ` +
        `${num(ns(deno, "fanout-default"), 0)} ns per task against ${
          num(ns(deno, "bare-loop"), 0)
        } ` +
        `for a bare worker loop, ${num(ns(deno, "p-limit"), 0)} for p-limit and ` +
        `${num(ns(deno, "p-map"), 0)} for p-map. Targets: ${
          runtimes.flatMap(({ json }) =>
            json.targets.map((t: Json) =>
              `${json.runtime} ${t.name} ${num(t.value, 2)}${t.unit} (${t.pass ? "pass" : "miss"})`
            )
          ).join("; ")
        }.` + (node === undefined ? "" : ` The cases run one after another in one process per ` +
          `runtime, and node 20's figures drift with the process's age: its three policies run ` +
          `identical code when nothing fails, yet read ${
            ["fanout-failfast", "fanout-collectall", "fanout-default"].map((id) =>
              num(ns(node, id), 0)
            ).join(", ")
          } ns in the order they ran, so node's misses are partly the harness, not the executor.`),
      table(
        ["case", ...runtimes.map(({ json }) => `${json.runtime} ${json.version} ns/task`)],
        cases.map((c: Json) => [c.label, ...runtimes.map(({ json }) => num(ns(json, c.id), 0))]),
      ),
      await chart("exp9-peers", "ns per trivial task at limit 64", {
        data: {
          values: runtimes.flatMap(({ json }) =>
            json.cases.map((c: Json) => ({ runtime: json.runtime, case: c.label, ns: c.nsPerTask }))
          ),
        },
        mark: "bar",
        encoding: {
          y: { field: "case", type: "nominal", title: null },
          yOffset: { field: "runtime" },
          x: { field: "ns", type: "quantitative", scale: { type: "log" }, title: "ns/task (log)" },
          color: { field: "runtime", type: "nominal" },
        },
      }),
      `Workload: ${deno.tasks.toLocaleString("en")} trivial async tasks at limit ${deno.limit}, ` +
        `median of ${deno.repeats} timed runs after a warm-up.`,
      ...runtimes.map(({ r, json }) =>
        provenance(
          { ...json, seed: "n/a (no randomness)" },
          "deno task bench:executor",
          `executor-${r}.json`,
        )
      ),
    );
  }
  sections.push({ title: "9. Peers: fanOut vs Promise.all, p-limit, p-map", body });
}

// ---- 10. failure injection
await section("10. Failure injection: throughput at 10 % branch errors", {
  file: "exp-failure.json",
  name: "failure",
  command: "deno task exp:failure",
  missing: "No failure-injection results.",
}, async (json, body) => {
  const t = json.medianAnsweredPerSecond;
  body.push(
    `Finding: with 10 % of branch calls failing, the gateway answered ${num(t["errors-10"], 0)} ` +
      `requests/s against ${num(t.healthy, 0)}/s healthy (medians of ${json.rounds} alternating ` +
      `runs), a ratio of ${num(json.check.value, 3)} — ${
        json.check.pass ? "within" : "**not** within"
      } ` +
      `10 % of the baseline. In the simulated downstream a failed call takes as long as a good ` +
      `one, so this compares the gateway's own cost of handling failures.`,
    table(
      ["mode", "round", "offered/s", "answered/s", "p50 ms", "p99 ms", "statuses", "degraded"],
      json.runs.map((r: Json) => [
        r.mode,
        r.round,
        r.offeredPerSecond,
        num(r.answeredPerSecond, 0),
        num(r.latencyMs.p50),
        num(r.latencyMs.p99),
        statuses(r.statuses),
        pct(r.degradedShare),
      ]),
    ),
    await chart("exp10-failure", "Capacity (answered/s) per run: healthy vs 10 % branch errors", {
      data: {
        values: json.runs.map((r: Json) => ({
          mode: r.mode,
          round: `run ${r.round}`,
          rate: r.answeredPerSecond,
        })),
      },
      mark: "bar",
      encoding: {
        x: { field: "round", type: "nominal", title: null },
        xOffset: { field: "mode" },
        y: { field: "rate", type: "quantitative", title: "answered requests/s" },
        color: { field: "mode", type: "nominal" },
      },
    }),
    `Workload: ${json.requestsPerRun.toLocaleString("en")} requests per run offered at ` +
      `${json.ratePerSecond.toLocaleString("en")}/s in-process (above capacity, so answered/s is ` +
      `the capacity), bestEffort, budget 1000 ms.`,
  );
});

// ---- 11. retries, breakers, supervised workers
await section("11. Retries, circuit breakers and supervised workers", {
  file: "exp-retry.json",
  name: "retry",
  command: "deno task exp:retry",
  missing: "No retry, breaker or supervisor results.",
}, async (json, body) => {
  const c = json.byCase;
  const check = (start: string) => json.checks.find((k: Json) => k.name.startsWith(start));
  const recovered = check("flaky: share");
  const extra = check("flaky: extra");
  const opened = check("down: reviews calls until");
  const probe = check("down: reviews calls per second");
  const latency = check("down + breaker");
  const verdict = (k: Json) => (k.pass ? "met" : "**missed**");
  body.push(
    `Finding: with \`${json.faultyBranch}\` failing half its calls with a fast 503, ` +
      `\`guardBranches()\` (one retry a call, a retry budget of 50 % + 10 per downstream, a ` +
      `proportional breaker) raised the answers that have ${json.faultyBranch} from ` +
      `${pct(c["flaky, no policies"].answeredShare)} to ${
        pct(c["flaky, retries + breaker"].answeredShare)
      }: ${pct(recovered.value)} of the failed ones recovered (target "most": ` +
      `${verdict(recovered)}; within 10 % extra load only one retry per failure fits, and it ` +
      `fails half the time too, so half is the ceiling), for ${pct(extra.value)} extra ` +
      `downstream calls over the five branches (target ≤ 10 %: ${verdict(extra)}). With it ` +
      `down, the breaker opened after ${num(opened.value, 0)} calls (target: within its ` +
      `minimum of 20: ${verdict(opened)}), then ${json.faultyBranch} saw ` +
      `${num(probe.value, 2)} calls/s (target: the probe rate, one per second: ` +
      `${verdict(probe)}), and the other branches' p99 was ${num(latency.value, 2)}× the ` +
      `healthy runs' (target: unchanged, within ±25 % on a shared machine: ${verdict(latency)}).`,
    table(
      [
        "case",
        "answers with " + json.faultyBranch,
        "downstream calls",
        json.faultyBranch + " calls",
        "breaker opened after",
        json.faultyBranch + " calls/s while open",
        "others p50 ms",
        "others p99 ms",
      ],
      Object.entries(c).map(([id, f]) => {
        const figures = f as Json;
        return [
          id,
          pct(figures.answeredShare),
          num(figures.callsTotal, 0),
          num(figures.callsFaulty, 0),
          figures.openedAfterCalls === undefined ? "–" : `${figures.openedAfterCalls} calls`,
          num(figures.callsPerSecondWhileOpen, 2),
          num(figures.otherP50),
          num(figures.otherP99),
        ];
      }),
    ),
    await chart("exp11-retry", "Downstream calls per run, by branch", {
      data: {
        values: json.runs.flatMap((r: Json) =>
          Object.entries(r.calls).map(([branch, n]) => ({
            run: `${r.case} #${r.round}`,
            branch,
            calls: n,
          }))
        ),
      },
      mark: "bar",
      encoding: {
        y: { field: "run", type: "nominal", title: null, sort: null },
        x: { field: "calls", type: "quantitative", title: "downstream calls", stack: "zero" },
        color: { field: "branch", type: "nominal" },
      },
    }),
    `Workload: ${json.requestsPerRun.toLocaleString("en")} requests per run offered open-loop ` +
      `at ${json.ratePerSecond}/s in process, ${json.rounds} rounds alternating the cases, ` +
      `budget ${json.budgetMs} ms, bestEffort; "others" are the four branches besides ` +
      `${json.faultyBranch}, medians over runs of each branch's p50 and p99.`,
  );
  const e = json.enrich;
  if (e.runs.length === 2) {
    const [clean, crashed] = e.runs;
    const same = clean.checksum === crashed.checksum;
    body.push(
      `\`enrich\`, ${e.tasks.toLocaleString("en")} tasks, 1 in ` +
        `${e.crashEvery.toLocaleString("en")} crashing its worker once: ${crashed.restarts} ` +
        `restarts, checksum ${crashed.checksum} ${same ? "=" : "≠"} the clean run's ` +
        `${clean.checksum}${same ? "" : " (**missed**)"}. One run each on a shared machine: ` +
        `the wall times move with its load and are not a comparison (a crash costs its task a ` +
        `backoff of up to 10 ms, during which the ordered stream waits for it).`,
      table(
        ["run", "processed", "failed", "restarts", "checksum", "wall s", "tasks/s", "peak RSS"],
        e.runs.map((r: Json) => [
          r.crashEvery === 0 ? "clean" : `1 in ${r.crashEvery.toLocaleString("en")} crashes`,
          r.processed.toLocaleString("en"),
          r.failed.toLocaleString("en"),
          r.restarts,
          r.checksum,
          num(r.wallMs / 1000),
          num(r.tasksPerSecond, 0),
          `${num(r.peakRssMB, 0)} MB`,
        ]),
      ),
    );
  }
});

// ---- 12. overload
await section(
  "12. Overload: goodput from 0.5× to 8× capacity, three protections and a hand-written guard",
  {
    file: "exp-overload.json",
    name: "overload",
    command: "deno task exp:overload",
    missing: "No overload sweep results.",
  },
  async (json, body) => {
    body.push(...await overloadSection(json));
  },
);

// ---- 13. bulkheads
await section("13. Bulkheads: one slow downstream under steady load", {
  file: "exp-bulkhead.json",
  name: "bulkhead",
  command: "deno task exp:bulkhead",
  missing: "No bulkhead results.",
}, (json, body) => {
  body.push(...bulkheadSection(json));
});

// ---- 14. gateway overhead (the hot-path issue's bench)
{
  const runtimes = ["deno", "bun"].map((r) => ({ r, json: load(`overhead-${r}.json`) }))
    .filter((x) => x.json !== undefined);
  const body: string[] = [];
  for (const { r, json } of runtimes) noteLoad(`overhead-${r}`, json);
  if (runtimes.length === 0) {
    body.push(notYet("deno task bench:overhead", "No overhead results."));
  } else {
    const pick = (part: Json, id: string) => part?.cases?.find((c: Json) => c.id === id);
    const ids = ["naive", "equivalent", "fanfare", "fanfare-defaults"];
    const labels = runtimes[0].json.inProcess?.cases ?? runtimes[0].json.loopback?.cases ?? [];
    const label = (id: string) => labels.find((c: Json) => c.id === id)?.label ?? id;
    body.push(
      `Finding: ${
        runtimes.flatMap(({ json }) =>
          json.targets.map((t: Json) =>
            `${json.runtime} ${t.name.replace(/:.*/, "")} ${
              t.unit === "×" ? `${num(t.value, 2)}×` : pct(t.value)
            } (${t.pass ? "pass" : "miss"})`
          )
        ).join("; ")
      }. Targets: in process at most 1.5× the hand-written handler's µs per request, over ` +
        `loopback at least 85 % of its requests/s. The process's CPU time per request (the "cpu" ` +
        `columns) moves less with the shared machine's load than the wall time the targets name.`,
      table(
        [
          "gateway",
          ...runtimes.flatMap(({ json }) => [
            `${json.runtime} in process µs/request`,
            `${json.runtime} ×`,
            `${json.runtime} cpu µs`,
            `${json.runtime} cpu ×`,
            `${json.runtime} loopback req/s`,
            `${json.runtime} share`,
          ]),
        ],
        ids.map((id) => [
          label(id),
          ...runtimes.flatMap(({ json }) => {
            const inProcess = pick(json.inProcess, id);
            const loopback = pick(json.loopback, id);
            return [
              num(inProcess?.usPerRequest),
              inProcess ? `${num(inProcess.ratio, 2)}×` : "–",
              num(inProcess?.cpuUsPerRequest),
              inProcess?.cpuRatio ? `${num(inProcess.cpuRatio, 2)}×` : "–",
              num(loopback?.requestsPerSecond, 0),
              loopback ? pct(loopback.share) : "–",
            ];
          }),
        ]),
      ),
      `Against the hand-written handler that does the same work as fanfare's answer (a deadline ` +
        `per branch with \`AbortSignal.any\`, budget and trace headers, no redirects, bounded ` +
        `bodies, timings: \`equivalentGateway\` in \`bench/_overhead_apps.ts\`):`,
      table(
        [
          "gateway",
          ...runtimes.flatMap(({ json }) => [
            `${json.runtime} in process × the equivalent`,
            `${json.runtime} loopback share of the equivalent`,
          ]),
        ],
        ["fanfare", "fanfare-defaults"].map((id) => [
          label(id),
          ...runtimes.flatMap(({ json }) => {
            const inProcess = pick(json.inProcess, id);
            const loopback = pick(json.loopback, id);
            return [
              inProcess?.ratioToEquivalent ? `${num(inProcess.ratioToEquivalent, 2)}×` : "–",
              loopback?.shareOfEquivalent ? pct(loopback.shareOfEquivalent) : "–",
            ];
          }),
        ]),
      ),
      await chart("exp14-overhead", "In process: µs per product request, 32 concurrent", {
        data: {
          values: runtimes.flatMap(({ json }) =>
            (json.inProcess?.cases ?? []).map((c: Json) => ({
              runtime: json.runtime,
              gateway: c.id,
              us: c.usPerRequest,
            }))
          ),
        },
        mark: "bar",
        encoding: {
          y: { field: "gateway", type: "nominal", title: null, sort: ids },
          yOffset: { field: "runtime" },
          x: { field: "us", type: "quantitative", title: "µs per request" },
          color: { field: "runtime", type: "nominal" },
        },
      }),
      `Workload: five branches on a downstream that answers a small JSON at once. In process: ` +
        `${runtimes[0].json.inProcess?.requestsPerRound?.toLocaleString("en") ?? "–"} requests ` +
        `per loop from 32 callers in a closed loop, through each app's \`fetch\`, each run in a ` +
        `fresh process holding that one gateway (two warm-up loops, then the median of three), ` +
        `median of ` +
        `${runtimes[0].json.inProcess?.rounds ?? "–"} alternating rounds. Loopback: ` +
        `\`${runtimes[0].json.loopback?.tool ?? "wrk"}\`, downstream and gateways each in their ` +
        `own process of the same runtime, median of ${runtimes[0].json.loopback?.rounds ?? "–"} ` +
        `alternating rounds.`,
      ...runtimes.map(({ r, json }) =>
        provenance(json, json.command ?? "deno task bench:overhead", `overhead-${r}.json`)
      ),
    );
  }
  sections.push({ title: "14. Gateway overhead against a hand-written handler", body });
}

// ---- 15. declarative aggregation (bench:aggregate writes its own shape of JSON)
{
  const json = load("aggregate-deno.json");
  const body: string[] = [];
  if (json === undefined) {
    body.push(notYet("deno task bench:aggregate", "No aggregation results."));
  } else {
    loads.push(`aggregate ${num(json.load.before, 2)} → ${num(json.loadEnd, 2)}`);
    const q = (x: Json) => [num(x.p50), num(x.p99), num(x.p999)];
    const { graph, levels, configured, overhead } = json;
    body.push(
      `Finding: the three-level endpoint \`/orders/:orderId\` (order → customer and each item → ` +
        `offers) answered with p99 ${num(graph.request.p99)} ms against a critical-path p99 of ` +
        `${num(graph.criticalPath.p99)} ms and a sum-of-levels p99 of ` +
        `${num(graph.sumOfLevels.p99)} ms; a level-by-level executor, measured, took p99 ` +
        `${num(levels.request.p99)} ms and p50 ${num(levels.request.p50)} against ` +
        `${num(graph.request.p50)}. Target: the endpoint's p99 about that of its critical path.`,
      table(
        ["latency (ms)", "p50", "p99", "p99.9"],
        [
          ["request (graph as declared, nothing cut)", ...q(graph.request)],
          ["its critical path, from its timings", ...q(graph.criticalPath)],
          ["its levels' slowest branches, added", ...q(graph.sumOfLevels)],
          ["request, offers waiting for all of level 1", ...q(levels.request)],
          [`request as committed, budget ${configured.budgetMs} ms`, ...q(configured.request)],
          ...configured.levelEnd.map((x: Json, i: number) => [`  level ${i} ends`, ...q(x)]),
        ],
      ),
      `As committed at budget ${configured.budgetMs} ms: statuses ` +
        `${Object.entries(configured.statuses).map(([k, v]) => `${k}×${v}`).join(" ")}; outcomes ${
          Object.entries(configured.outcomes).map(([branch, o]) =>
            `${branch} ${Object.entries(o as Json).map(([k, v]) => `${k} ${v}`).join(", ")}`
          ).join("; ")
        }.`,
      `The declarative path's own cost: the product page's five branches declared as an ` +
        `endpoint took ${num(overhead.declaredUs)} µs a request against ${
          num(overhead.productUs)
        } through the product route (median per-round ratio ${num(overhead.ratio, 2)}×, range ` +
        `${num(overhead.ratioRange[0], 2)}–${num(overhead.ratioRange[1], 2)}×).`,
      `Command: \`deno task bench:aggregate\` · seed ${json.seed} · ${json.runtime.name} ` +
        `${json.runtime.version} on ${json.machine.cores} cores (${json.machine.cpu}, ` +
        `${json.machine.os} ${json.machine.arch}) · ${json.requestsPerVariant} requests per ` +
        `variant at ${json.ratePerSecond} req/s · 1-min load ${num(json.load.before, 2)} → ` +
        `${num(json.loadEnd, 2)} · ${json.date} · from \`bench/results/aggregate-deno.json\``,
    );
  }
  sections.push({ title: "15. Aggregation: a dependent endpoint against its critical path", body });
}

const machineJson = load("exp-loadgen.json") ?? load("exp-cancel.json");
const lines = [
  "# fanfare experiments report",
  "",
  "Generated by `deno task report` from the JSON in `bench/results/` (not committed); " +
  "`deno task exp:all` re-runs every benchmark and experiment (about 20 minutes) and then this report. " +
  "Do not edit by hand. Charts are Vega-Lite specs rendered to SVG headless.",
  "",
  machineJson
    ? `Machine: ${machineJson.machine.cores} cores (${machineJson.machine.cpu}), ` +
      `${machineJson.machine.os} ${machineJson.machine.arch}; runtime ${machineJson.runtime} ` +
      `${machineJson.version}. The machine is shared with other work: 1-minute load averages ` +
      `(start → end) per run: ${loads.join("; ")}. With 2 cores, a load above 2 means the ` +
      `figures were taken with other processes competing for the CPU.`
    : "Machine: no results yet.",
  "",
  "Each experiment is one command with a fixed seed; re-running it gives the same shape of " +
  "result (absolute figures move with the machine's load).",
  "",
  ...sections.flatMap((s) => [`## ${s.title}`, "", ...s.body.flatMap((b) => [b, ""])]),
];
writeFileSync(fileURLToPath(new URL("./REPORT.md", import.meta.url)), lines.join("\n"));
// Formatted the way `deno fmt --check` (part of npm test) expects, so a regenerated report passes.
const reportPath = fileURLToPath(new URL("./REPORT.md", import.meta.url));
const formatted = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", reportPath] })
  .output();
if (!formatted.success) {
  throw new Error(
    `Cannot format bench/REPORT.md as deno fmt failed: ${
      new TextDecoder().decode(formatted.stderr)
    }`,
  );
}
console.log(`wrote bench/REPORT.md with ${sections.length} sections`);
