import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { priorityPicker, weightedPicker } from "../../src/streams/_pickers.ts";
import { type Merged, mergeStreams } from "../../src/streams/merge_streams.ts";
import { fanOutStream } from "../../src/executor/mod.ts";

/** An async source of `items` that waits `ticks[i]` microtasks before each item. */
function source<T>(items: readonly T[], ticks: readonly number[] = [], log?: { read: number }) {
  const state = { read: 0, closed: false };
  async function* generate() {
    try {
      for (let i = 0; i < items.length; i++) {
        for (let t = 0; t < (ticks[i % Math.max(1, ticks.length)] ?? 0); t++) await null;
        state.read++;
        if (log) log.read++;
        yield items[i];
      }
    } finally {
      state.closed = true;
    }
  }
  return { iterable: generate(), state };
}

/** A source that never ends: item `i` is `i`; `closed` resolves when it is closed. */
function endless() {
  const state = { read: 0 };
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => onClosed = resolve);
  async function* generate() {
    try {
      for (let i = 0;; i++) {
        state.read++;
        yield i;
      }
    } finally {
      onClosed();
    }
  }
  return { iterable: generate(), state, closed };
}

async function take<T>(stream: AsyncIterable<Merged<T>>, n: number): Promise<Merged<T>[]> {
  const out: Merged<T>[] = [];
  if (n === 0) return out;
  for await (const item of stream) {
    out.push(item);
    if (out.length === n) break;
  }
  return out;
}

Deno.test("mergeStreams() rejects bad options naming the field and its value", () => {
  const two = [source([1]).iterable, source([2]).iterable];
  assertThrows(() => mergeStreams(two, { weights: [1, 0] }), /'weights'.*\[1,0\]/);
  assertThrows(
    () => mergeStreams(two, { priority: [1] }),
    /'priority'.*one finite number per source \(2\)/,
  );
  assertThrows(() => mergeStreams(two, { priority: [1, 0], weights: [1, 1] }), /both/);
  assertThrows(() => mergeStreams(two, { priority: [1, 0], agingBound: 0 }), /'agingBound'.*0/);
  assertThrows(() => mergeStreams([42 as never]), /source 0 must be an async iterable/);
});

Deno.test("mergeStreams() loses, repeats and reorders nothing, whatever the timing and policy", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          items: fc.array(fc.nat(), { maxLength: 30 }),
          ticks: fc.array(fc.nat(4), { minLength: 1, maxLength: 5 }),
          weight: fc.integer({ min: 1, max: 5 }),
          priority: fc.integer({ min: 0, max: 3 }),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      fc.constantFrom("weights" as const, "priority" as const, "none" as const),
      async (specs, policy) => {
        const sources = specs.map((s) => source(s.items, s.ticks));
        const options = policy === "weights"
          ? { weights: specs.map((s) => s.weight) }
          : policy === "priority"
          ? { priority: specs.map((s) => s.priority), agingBound: 3 }
          : {};
        const merged: Merged<number>[] = [];
        for await (const item of mergeStreams(sources.map((s) => s.iterable), options)) {
          merged.push(item);
        }
        specs.forEach((spec, i) => {
          const mine = merged.filter((m) => m.source === i).map((m) => m.value);
          assertEquals(mine, spec.items, `source ${i}: every item once, in its order`);
        });
        assertEquals(merged.length, specs.reduce((n, s) => n + s.items.length, 0));
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("weighted picks stay within 2 of each source's share on every prefix while all are ready", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 2_000 }),
      (weights, picks) => {
        const pick = weightedPicker(weights);
        const total = weights.reduce((a, b) => a + b, 0);
        const counts = weights.map(() => 0);
        const ready = weights.map(() => true);
        for (let n = 1; n <= picks; n++) {
          counts[pick(ready)]++;
          weights.forEach((w, i) => {
            const drift = Math.abs(counts[i] - (n * w) / total);
            assert(drift < 2, `source ${i} has ${counts[i]} of ${n}, share ${(n * w) / total}`);
          });
        }
      },
    ),
  );
});

Deno.test("weighted picks of 1, 1, 19, 1, 19 stray from a share by more than 1 but less than 2", () => {
  const weights = [1, 1, 19, 1, 19];
  const pick = weightedPicker(weights);
  const counts = weights.map(() => 0);
  for (let n = 0; n < 26; n++) counts[pick(weights.map(() => true))]++;
  const drift = Math.abs(counts[4] - (26 * 19) / 41);
  assert(drift > 1 && drift < 2, `source 4 has ${counts[4]} of 26`);
});

Deno.test("priority picks serve a ready source within agingBound + sources - 1 picks, and otherwise the highest priority", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 10 }),
      fc.array(fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), { maxLength: 300 }),
      (priority, agingBound, arrivals) => {
        const n = priority.length;
        const pick = priorityPicker(priority, agingBound);
        // As in the merge: a source that has an item ready keeps it until it is picked.
        const ready = priority.map(() => false);
        const waited = priority.map(() => 0);
        for (const arriving of arrivals) {
          arriving.slice(0, n).forEach((a, i) => ready[i] ||= a);
          if (!ready.some(Boolean)) continue;
          const skippedBefore = [...waited];
          const chosen = pick(ready);
          assert(ready[chosen], "only a ready source is picked");
          const anyAged = ready.some((r, i) => r && skippedBefore[i] >= agingBound);
          if (!anyAged) {
            const top = Math.max(...priority.filter((_, i) => ready[i]));
            assertEquals(priority[chosen], top, "without aged items, the highest priority wins");
          }
          ready.forEach((r, i) => {
            if (r && i !== chosen) waited[i]++;
            assert(waited[i] <= agingBound + n - 1, `source ${i} passed over ${waited[i]} times`);
          });
          ready[chosen] = false;
          waited[chosen] = 0;
        }
      },
    ),
  );
});

Deno.test("mergeStreams() by weight holds a 3:1 ratio over a long run, within 1 item", async () => {
  const a = endless();
  const b = endless();
  const items = await take(mergeStreams([a.iterable, b.iterable], { weights: [3, 1] }), 4_000);
  const fromA = items.filter((m) => m.source === 0).length;
  assert(Math.abs(fromA - 3_000) <= 1, `${fromA} of 4,000 from the weight-3 source`);
});

Deno.test("mergeStreams() by priority serves the urgent source first and the other every agingBound + 1 items", async () => {
  const urgent = endless();
  const bulk = endless();
  const items = await take(
    mergeStreams([urgent.iterable, bulk.iterable], { priority: [1, 0], agingBound: 4 }),
    50,
  );
  const fromBulk = items.filter((m) => m.source === 1).length;
  assertEquals(fromBulk, 10, "one in five: passed over four times, then served");
});

Deno.test("mergeStreams() reads each source at most one item ahead of the consumer", async () => {
  const sources = [endless(), endless(), endless()];
  const stream = mergeStreams(sources.map((s) => s.iterable), { weights: [1, 2, 3] });
  const reader = stream.getReader();
  const got = [0, 0, 0];
  for (let i = 0; i < 60; i++) {
    const { value } = await reader.read();
    got[value!.source]++;
    sources.forEach((s, j) =>
      assert(s.state.read <= got[j] + 1, `source ${j}: read ${s.state.read}, taken ${got[j]}`)
    );
  }
  await reader.cancel();
});

Deno.test("breaking out of the merged stream closes every source", async () => {
  const sources = [endless(), endless()];
  await take(mergeStreams(sources.map((s) => s.iterable)), 5);
  await Promise.all(sources.map((s) => s.closed)); // the test fails if one is never closed
});

Deno.test("aborting the signal errors the merged stream with its reason and closes every source", async () => {
  const controller = new AbortController();
  const sources = [endless(), endless()];
  const stream = mergeStreams(sources.map((s) => s.iterable), { signal: controller.signal });
  const reader = stream.getReader();
  await reader.read();
  controller.abort(new Error("caller gave up"));
  const error = await reader.read().then(() => undefined, (e) => e);
  assertEquals(error?.message, "caller gave up");
  await Promise.all(sources.map((s) => s.closed));
});

Deno.test("a failing source errors the merged stream and closes the others", async () => {
  const healthy = endless();
  async function* broken() {
    yield -1;
    throw new Error("source 1 broke");
  }
  const seen: number[] = [];
  const error = await (async () => {
    for await (const { value } of mergeStreams([healthy.iterable, broken()])) seen.push(value);
  })().then(() => undefined, (e) => e);
  assertEquals(error?.message, "source 1 broke");
  assert(seen.includes(-1), "the item before the failure came through");
  await healthy.closed;
});

Deno.test("mergeStreams() merges ReadableStream sources and cancels them on cancel", async () => {
  let cancelled = 0;
  const readable = (items: number[]) => {
    let i = 0;
    return new ReadableStream<number>({
      pull: (c) => i < items.length ? c.enqueue(items[i++]) : c.close(),
      cancel: () => void cancelled++,
    }, { highWaterMark: 0 });
  };
  const all = [];
  for await (const m of mergeStreams([readable([1, 2]), readable([3])])) all.push(m.value);
  assertEquals(all.sort(), [1, 2, 3]);
  const items = await take(mergeStreams([readable([1, 2, 3]), readable([4, 5, 6])]), 2);
  assertEquals(items.length, 2);
  assertEquals(cancelled, 2);
});

Deno.test("mergeStreams() over two fanOutStreams: break cancels both, which close their task sources", async () => {
  const urgentTasks = endless();
  const bulkTasks = endless();
  const urgent = fanOutStream(urgentTasks.iterable, (n) => n, { limit: 2 });
  const bulk = fanOutStream(bulkTasks.iterable, (n) => -n, { limit: 2 });
  const items = await take(mergeStreams([urgent, bulk], { priority: [1, 0], agingBound: 3 }), 40);
  assertEquals(items.length, 40);
  assert(items.every((m) => m.value.ok), "every branch succeeded");
  await Promise.all([urgentTasks.closed, bulkTasks.closed]);
});
