/**
 * A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4):
 * counters, gauges and histograms with labels. Web APIs only, so it runs unchanged on Deno, Bun
 * and Workers; `prom-client` is written for Node (process, cluster and v8 collectors) and does
 * not. State is per isolate or process: on Workers each isolate keeps its own numbers.
 *
 * @module
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `Content-Type` of {@linkcode MetricsRegistry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Default histogram buckets, in seconds: Prometheus's usual 5 ms to 10 s ladder.
 *
 * @example
 * ```ts
 * import { DEFAULT_BUCKETS } from "./metrics.ts";
 * DEFAULT_BUCKETS[0]; // 0.005
 * ```
 */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/**
 * Label values by label name; every declared label must be given.
 *
 * @example
 * ```ts
 * import type { Labels } from "./metrics.ts";
 * const labels: Labels = { branch: "price", outcome: "ok" };
 * ```
 */
export type Labels = Readonly<Record<string, string>>;

/**
 * One series of a counter or gauge as read back by `samples()`.
 *
 * @example
 * ```ts
 * import { MetricsRegistry, type Sample } from "./metrics.ts";
 * const requests = new MetricsRegistry().counter("http_requests_total", "Requests.", ["status"]);
 * requests.inc({ status: "200" });
 * const [sample]: Sample[] = requests.samples(); // { labels: { status: "200" }, value: 1 }
 * ```
 */
export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

/**
 * One series of a histogram as read back by `samples()`: cumulative bucket counts aligned to
 * the histogram's `buckets`, the total count and the sum.
 *
 * @example
 * ```ts
 * import { type HistogramSample, MetricsRegistry } from "./metrics.ts";
 * const latency = new MetricsRegistry().histogram("latency_seconds", "Latency.", [], [0.1, 1]);
 * latency.observe({}, 0.5);
 * const [sample]: HistogramSample[] = latency.samples(); // { buckets: [0, 1], count: 1, sum: 0.5, ... }
 * ```
 */
export interface HistogramSample {
  readonly labels: Labels;
  readonly buckets: readonly number[];
  readonly count: number;
  readonly sum: number;
}

/** One series: its labels rendered, its label values, and its live state. */
interface SeriesEntry<S> {
  labels: string;
  values: Labels;
  state: S;
}

/** Series by label value, one level per label name. */
type SeriesIndex<S> = Map<string, SeriesIndex<S> | SeriesEntry<S>>;

/** What every metric shares. */
abstract class Metric<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: "counter" | "gauge" | "histogram";
  /** Every series in the order it was first recorded, which is the order it renders in. */
  #series: SeriesEntry<S>[] = [];
  /** Series by label values, one level of maps per label name (the last level holds entries). */
  #index: SeriesIndex<S> = new Map();
  /** The one series of a metric without labels. */
  #only: SeriesEntry<S> | undefined;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) {
      throw new RangeError(
        `Cannot register a metric as 'name' must match ${METRIC_NAME}: current value is ${name}`,
      );
    }
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new RangeError(
          `Cannot register metric '${name}' as label names must match ${LABEL_NAME} and not start with '__': current value is ${label}`,
        );
      }
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected abstract initial(): S;

  /**
   * The state of the series for `labels`, created on first use. Looked up through one map per
   * label, by value: recording on a hot path builds no key string.
   */
  protected series(labels: Labels): S {
    const names = this.labelNames;
    if (names.length === 0) return (this.#only ??= this.#create([])).state;
    let level = this.#index;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = this.#labelValue(labels, names[i]);
      let next = level.get(value) as SeriesIndex<S> | undefined;
      if (next === undefined) level.set(value, next = new Map());
      level = next;
    }
    const value = this.#labelValue(labels, names[last]);
    let entry = level.get(value) as SeriesEntry<S> | undefined;
    if (entry === undefined) {
      entry = this.#create(names.map((name) => labels[name]));
      level.set(value, entry);
    }
    return entry.state;
  }

  #labelValue(labels: Labels, name: string): string {
    const value = labels[name];
    if (typeof value !== "string") {
      throw new TypeError(
        `Cannot record metric '${this.name}' as label '${name}' must be a string: current value is ${value}`,
      );
    }
    return value;
  }

  #create(key: string[]): SeriesEntry<S> {
    const rendered = this.labelNames.map((name, i) => `${name}="${escapeLabel(key[i])}"`);
    const values = Object.freeze(
      Object.fromEntries(this.labelNames.map((name, i) => [name, key[i]])),
    );
    const entry = { labels: rendered.join(","), values, state: this.initial() };
    this.#series.push(entry);
    return entry;
  }

  /** Every series recorded so far: its labels and its live state (read, do not change). */
  protected allSeries(): { labels: Labels; state: Readonly<S> }[] {
    return this.#series.map(({ values, state }) => ({ labels: values, state }));
  }

  /** The exposition lines of this metric, HELP and TYPE first. */
  render(): string[] {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    for (const { labels, state } of this.#series) this.renderSeries(lines, labels, state);
    return lines;
  }

  protected abstract renderSeries(lines: string[], labels: string, state: S): void;
}

/**
 * A value that only goes up (and restarts at 0 with the process).
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 * const requests = new MetricsRegistry().counter("http_requests_total", "Requests.", ["status"]);
 * requests.inc({ status: "200" });
 * ```
 */
export class Counter extends Metric<{ value: number }> {
  readonly type = "counter";

  protected initial(): { value: number } {
    return { value: 0 };
  }

  /** Adds `amount` (default 1, never negative) to the series for `labels`. */
  inc(labels: Labels = {}, amount = 1): void {
    if (!(amount >= 0)) {
      throw new RangeError(
        `Cannot increment counter '${this.name}' as 'amount' must be non-negative: current value is ${amount}`,
      );
    }
    this.series(labels).value += amount;
  }

  /** The current value of every series, e.g. `[{ labels: { status: "200" }, value: 3 }]`. */
  samples(): Sample[] {
    return this.allSeries().map(({ labels, state }) => ({ labels, value: state.value }));
  }

  protected renderSeries(lines: string[], labels: string, state: { value: number }): void {
    lines.push(`${this.name}${braces(labels)} ${formatValue(state.value)}`);
  }
}

/**
 * A value that goes up and down, such as branches in flight.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 * const inFlight = new MetricsRegistry().gauge("branches_in_flight", "Branches running.");
 * inFlight.inc();
 * inFlight.dec();
 * ```
 */
export class Gauge extends Metric<{ value: number }> {
  readonly type = "gauge";

  protected initial(): { value: number } {
    return { value: 0 };
  }

  /** Adds `amount` (default 1). */
  inc(labels: Labels = {}, amount = 1): void {
    this.series(labels).value += amount;
  }

  /** Subtracts `amount` (default 1). */
  dec(labels: Labels = {}, amount = 1): void {
    this.series(labels).value -= amount;
  }

  /** Sets the value. */
  set(labels: Labels, value: number): void {
    this.series(labels).value = value;
  }

  /** The current value of every series. */
  samples(): Sample[] {
    return this.allSeries().map(({ labels, state }) => ({ labels, value: state.value }));
  }

  protected renderSeries(lines: string[], labels: string, state: { value: number }): void {
    lines.push(`${this.name}${braces(labels)} ${formatValue(state.value)}`);
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/**
 * Observations counted into cumulative buckets, with their sum and count.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 * const latency = new MetricsRegistry().histogram(
 *   "request_duration_seconds",
 *   "Request latency.",
 *   ["route"],
 * );
 * latency.observe({ route: "/product/:id" }, 0.042);
 * ```
 */
export class Histogram extends Metric<HistogramState> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    if (labelNames.includes("le")) {
      throw new RangeError(`Cannot register histogram '${name}' as 'le' is a reserved label name`);
    }
    const sorted = buckets.every((bound, i) => i === 0 || bound > buckets[i - 1]);
    if (buckets.length === 0 || !sorted || !buckets.every(Number.isFinite)) {
      throw new RangeError(
        `Cannot register histogram '${name}' as 'buckets' must be finite and strictly increasing: current value is [${buckets}]`,
      );
    }
    this.buckets = Object.freeze([...buckets]);
  }

  protected initial(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  /** Records one observation of `value`. */
  observe(labels: Labels, value: number): void {
    const state = this.series(labels);
    // Buckets are cumulative when rendered; here each observation lands in its first bucket.
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        state.counts[i]++;
        break;
      }
    }
    state.sum += value;
    state.count++;
  }

  /**
   * Every series' observations so far: `buckets[i]` counts those `<= this.buckets[i]`
   * (cumulative, as in the exposition), `count` all of them (the `+Inf` bucket).
   */
  samples(): HistogramSample[] {
    return this.allSeries().map(({ labels, state }) => {
      let cumulative = 0;
      const buckets = state.counts.map((count) => cumulative += count);
      return { labels, buckets, count: state.count, sum: state.sum };
    });
  }

  protected renderSeries(lines: string[], labels: string, state: HistogramState): void {
    const prefix = labels === "" ? "" : `${labels},`;
    let cumulative = 0;
    this.buckets.forEach((bound, i) => {
      cumulative += state.counts[i];
      lines.push(`${this.name}_bucket{${prefix}le="${formatValue(bound)}"} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket{${prefix}le="+Inf"} ${state.count}`);
    lines.push(`${this.name}_sum${braces(labels)} ${formatValue(state.sum)}`);
    lines.push(`${this.name}_count${braces(labels)} ${state.count}`);
  }
}

/**
 * Holds metrics by name and renders them all in the Prometheus text format.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * registry.counter("jobs_total", "Jobs done.", ["outcome"]).inc({ outcome: "ok" });
 * registry.render(); // '# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{outcome="ok"} 1\n'
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, Counter | Gauge | Histogram>();

  /** Registers a counter. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  /** Registers a gauge. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  /** Registers a histogram with `buckets` (upper bounds, strictly increasing; `+Inf` is implied). */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /** The metric registered as `name`, or `undefined`; check its `type` before reading it. */
  get(name: string): Counter | Gauge | Histogram | undefined {
    return this.#metrics.get(name);
  }

  /** Every metric in registration order, as one exposition document ending in a newline. */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.#metrics.values()) lines.push(...metric.render());
    return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
  }

  #add<M extends Counter | Gauge | Histogram>(metric: M): M {
    if (this.#metrics.has(metric.name)) {
      throw new RangeError(
        `Cannot register metric '${metric.name}' as a metric of that name already exists`,
      );
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

function braces(labels: string): string {
  return labels === "" ? "" : `{${labels}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(help: string): string {
  return help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}
