/**
 * The executor benchmark's result shape, its targets, and how both are printed.
 *
 * @module
 */

/** One case's figures. */
export interface CaseResult {
  id: string;
  label: string;
  /** Median over the timed repeats. */
  nsPerTask: number;
  /** Every timed repeat, in run order. */
  repeatsNsPerTask: number[];
  /** Highest `heapUsed` seen in the separate, untimed memory run of the case. */
  peakHeapBytes: number;
  /** `heapUsed` after that run and a full GC, with the run's output still referenced. */
  retainedHeapBytes: number;
  /** `heapUsed` right before that run, after a full GC when one is available. */
  baselineHeapBytes: number;
}

/** What `bench/results/executor-<runtime>.json` holds. */
export interface RuntimeReport {
  runtime: string;
  version: string;
  date: string;
  machine: { cores: number; cpu: string; os: string; arch: string };
  tasks: number;
  limit: number;
  /** Tasks in the one untimed warm-up run of each case. */
  warmupTasks: number;
  repeats: number;
  gcBetweenCases: boolean;
  /** 1-minute load average before and after the run: other work on the machine skews figures. */
  loadAverage: { start: number; end: number };
  cases: CaseResult[];
  targets: TargetResult[];
}

/** A target the issue sets, checked against one runtime's figures. */
export interface TargetResult {
  name: string;
  value: number;
  unit: string;
  goal: string;
  pass: boolean;
}

/** Checks the issue's three targets; a missing case makes its target a MISS with value NaN. */
export function checkTargets(cases: CaseResult[]): TargetResult[] {
  const ns = (id: string) => cases.find((c) => c.id === id)?.nsPerTask ?? NaN;
  const overhead = ns("fanout-default") / ns("bare-loop");
  const timeoutUs = ns("fanout-timeout") / 1000;
  const advantage = ns("p-map") / ns("fanout-default");
  return [
    {
      name: "fanOut default ÷ bare loop",
      value: overhead,
      unit: "×",
      goal: "≤ 2×",
      pass: overhead <= 2,
    },
    {
      name: "fanOut timeoutMs: 1000",
      value: timeoutUs,
      unit: " µs/task",
      goal: "≤ 0.5 µs/task",
      pass: timeoutUs <= 0.5,
    },
    {
      name: "p-map ÷ fanOut default",
      value: advantage,
      unit: "×",
      goal: "≥ 5×",
      pass: advantage >= 5,
    },
  ];
}

const MB = 1024 * 1024;

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function formatTarget(t: TargetResult): string {
  const value = Number.isNaN(t.value) ? "n/a" : `${t.value.toFixed(2)}${t.unit}`;
  return `  ${t.pass ? "PASS" : "MISS"}  ${pad(t.name, 28)} ${pad(value, 16)} target ${t.goal}`;
}

/** One runtime's table and targets, as lines. */
export function formatReport(report: RuntimeReport): string[] {
  const width = Math.max(...report.cases.map((c) => c.label.length));
  const lines = [
    `${report.runtime} ${report.version} — ${report.tasks.toLocaleString("en")} tasks, ` +
    `limit ${report.limit}, median of ${report.repeats} after a warm-up of ` +
    `${report.warmupTasks.toLocaleString("en")}, ` +
    `${report.machine.cores} cores (${report.machine.cpu}), ` +
    `GC between cases: ${report.gcBetweenCases ? "yes" : "NOT AVAILABLE"}; ` +
    `heap figures are above the post-GC baseline; 1-min load ` +
    `${report.loadAverage.start.toFixed(2)} → ${report.loadAverage.end.toFixed(2)}`,
    `  ${pad("case", width)}  ${pad("ns/task", 8, true)}  ${pad("min–max", 13, true)}` +
    `  ${pad("peak Δ", 10, true)}  ${pad("retained Δ", 10, true)}`,
  ];
  for (const c of report.cases) {
    const min = Math.min(...c.repeatsNsPerTask);
    const max = Math.max(...c.repeatsNsPerTask);
    lines.push(
      `  ${pad(c.label, width)}  ${pad(c.nsPerTask.toFixed(0), 8, true)}  ` +
        `${pad(`${min.toFixed(0)}–${max.toFixed(0)}`, 13, true)}  ` +
        `${pad(`${((c.peakHeapBytes - c.baselineHeapBytes) / MB).toFixed(1)} MB`, 10, true)}  ` +
        `${pad(`${((c.retainedHeapBytes - c.baselineHeapBytes) / MB).toFixed(1)} MB`, 10, true)}`,
    );
  }
  lines.push("  targets:", ...report.targets.map(formatTarget));
  return lines;
}

/** The runtimes side by side: ns/task and heap growth per case, then each runtime's targets. */
export function formatSideBySide(reports: RuntimeReport[]): string[] {
  const labels = reports[0]?.cases.map((c) => c.label) ?? [];
  const width = Math.max(4, ...labels.map((l) => l.length));
  const head = reports.map((r) => pad(`${r.runtime} ns`, 9, true)).join("  ") + "  " +
    reports.map((r) => pad(`${r.runtime} pkMB`, 9, true)).join("  ");
  const lines = [`  ${pad("case", width)}  ${head}`];
  for (const [i, label] of labels.entries()) {
    const ns = reports.map((r) => pad(r.cases[i]?.nsPerTask.toFixed(0) ?? "-", 9, true));
    const mb = reports.map((r) => {
      const c = r.cases[i];
      return pad(c ? ((c.peakHeapBytes - c.baselineHeapBytes) / MB).toFixed(1) : "-", 9, true);
    });
    lines.push(`  ${pad(label, width)}  ${ns.join("  ")}  ${mb.join("  ")}`);
  }
  for (const r of reports) {
    lines.push(`  targets on ${r.runtime} ${r.version}:`, ...r.targets.map(formatTarget));
  }
  return lines;
}
