import assert from "node:assert/strict";
import fc from "fast-check";
import { AdmissionQueue, type AdmissionStats, type LimitAlgorithm } from "../../src/limits/mod.ts";

/** A limit that stays where the test puts it. */
function fixed(limit: number, baselineMs?: number): LimitAlgorithm & { limit: number } {
  return { limit, baselineMs, onSample: () => limit };
}

function accounted(stats: AdmissionStats): number {
  return stats.admitted + stats.rejected + stats.shed + stats.cancelled + stats.waiting;
}

Deno.test("AdmissionQueue admits up to the limit, queues the next, and rejects past the queue", () => {
  const queue = new AdmissionQueue({ limit: fixed(2), maxQueue: 1 });
  assert.equal(queue.offer(0).kind, "admitted");
  assert.equal(queue.offer(0).kind, "admitted");
  assert.deepEqual(queue.offer(1), { kind: "queued", id: 1 });
  assert.deepEqual(queue.offer(2), { kind: "rejected", reason: "queue_full" });
  const changes = queue.release(3, { admittedAt: 0, inFlight: 1 });
  assert.deepEqual(changes, { admitted: [{ id: 1, inFlight: 2 }], shed: [] });
});

Deno.test("AdmissionQueue.rejectIfFull turns away only a request no budget would let in, and counts it once", () => {
  const queue = new AdmissionQueue({ limit: fixed(1), maxQueue: 1 });
  assert.equal(queue.rejectIfFull(0), undefined, "under the limit: a place is free");
  assert.equal(queue.offer(0).kind, "admitted");
  assert.equal(queue.rejectIfFull(1), undefined, "at the limit with room to wait");
  assert.equal(queue.offer(1).kind, "queued");
  assert.equal(queue.rejectIfFull(2), "queue_full");
  const stats = queue.stats(2);
  assert.equal(stats.offered, 3);
  assert.equal(stats.rejected, 1);
  assert.equal(stats.turnedAway.queue_full, 1);
  assert.equal(accounted(stats), stats.offered);
});

Deno.test("AdmissionQueue sheds a waiter that sat out its sojourn bound", () => {
  const queue = new AdmissionQueue({ limit: fixed(1), maxQueue: 4, intervalMs: 100 });
  queue.offer(0);
  queue.offer(10);
  assert.equal(queue.nextExpiry(10), 110);
  assert.deepEqual(queue.expire(109).shed, []);
  assert.deepEqual(queue.expire(110).shed, [{ id: 1, reason: "sojourn" }]);
  assert.equal(queue.stats(110).overloaded, true, "a shed waiter means overload");
});

Deno.test("AdmissionQueue turns away at the door a request whose budget would end before it finished", () => {
  const queue = new AdmissionQueue({ limit: fixed(1, 50), maxQueue: 4, intervalMs: 100 });
  queue.offer(0);
  assert.deepEqual(queue.offer(0, { deadline: 40 }), { kind: "rejected", reason: "budget" });
  assert.deepEqual(queue.offer(0, { deadline: 80 }), { kind: "queued", id: 1 });
  // It may start until 80 - 50 = 30 and no later.
  assert.equal(queue.nextExpiry(0), 30);
  assert.deepEqual(queue.expire(30).shed, [{ id: 1, reason: "budget" }]);
});

Deno.test("AdmissionQueue under overload shortens the sojourn bound, serves LIFO and holds only the waiters releases can admit", () => {
  const queue = new AdmissionQueue({ limit: fixed(2), maxQueue: 8, targetMs: 2, intervalMs: 10 });
  queue.offer(0);
  queue.offer(0);
  // A request finishes every ms for 100 ms: about 0.64 releases a ms, decayed over 100 ms.
  for (let t = 1; t <= 100; t++) {
    queue.release(t, { admittedAt: t - 1, inFlight: 2 });
    assert.equal(queue.offer(t).kind, "admitted");
  }
  // Not overloaded yet: the queue takes up to maxQueue.
  assert.deepEqual([queue.offer(100), queue.offer(100), queue.offer(100)].map((o) => o.kind), [
    "queued",
    "queued",
    "queued",
  ]);
  // Non-empty for a whole interval: overload, and the three sat out the 2 ms bound.
  assert.equal(queue.stats(110).overloaded, true);
  assert.deepEqual(queue.expire(110).shed.map((s) => [s.id, s.reason]), [
    [1, "sojourn"],
    [2, "sojourn"],
    [3, "sojourn"],
  ]);
  // 0.57 releases a ms by now: about 1.15 places free up within 2 ms, so two may wait.
  assert.equal(queue.offer(110).kind, "queued"); // id 4
  assert.equal(queue.offer(110).kind, "queued"); // id 5
  assert.deepEqual(queue.offer(110), { kind: "rejected", reason: "queue_full" });
  const next = queue.release(111, { admittedAt: 100, inFlight: 2 });
  assert.deepEqual(next.admitted.map((a) => a.id), [5], "the newest first");
});

Deno.test("AdmissionQueue forgets a cancelled waiter", () => {
  const queue = new AdmissionQueue({ limit: fixed(1) });
  queue.offer(0);
  const outcome = queue.offer(0);
  assert.equal(outcome.kind, "queued");
  assert.equal(queue.cancel(outcome.kind === "queued" ? outcome.id : -1), true);
  assert.equal(queue.cancel(1), false);
  assert.deepEqual(queue.release(1, { admittedAt: 0, inFlight: 1 }).admitted, []);
  assert.equal(queue.stats(1).cancelled, 1);
});

Deno.test("AdmissionQueue feeds each finished request's latency to its limit", () => {
  const samples: number[] = [];
  const queue = new AdmissionQueue({
    limit: {
      limit: 4,
      baselineMs: undefined,
      onSample: ({ latencyMs }) => (samples.push(latencyMs), 4),
    },
  });
  queue.offer(10);
  queue.release(42, { admittedAt: 10, inFlight: 1 });
  assert.deepEqual(samples, [32]);
});

type Op =
  | { op: "offer"; dt: number; budget: number | null; early: boolean }
  | { op: "release"; dt: number }
  | { op: "expire"; dt: number }
  | { op: "cancel"; dt: number; pick: number }
  | { op: "limit"; dt: number; to: number };

const ops: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("offer" as const),
    dt: fc.integer({ min: 0, max: 30 }),
    budget: fc.option(fc.integer({ min: 0, max: 300 })),
    // Asked `rejectIfFull` first, as a gateway's early refusal does.
    early: fc.boolean(),
  }),
  fc.record({ op: fc.constant("release" as const), dt: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ op: fc.constant("expire" as const), dt: fc.integer({ min: 0, max: 200 }) }),
  fc.record({
    op: fc.constant("cancel" as const),
    dt: fc.integer({ min: 0, max: 5 }),
    pick: fc.nat(),
  }),
  fc.record({
    op: fc.constant("limit" as const),
    dt: fc.constant(0),
    to: fc.integer({ min: 1, max: 6 }),
  }),
);

Deno.test("AdmissionQueue accounts for every offered request: admitted + rejected + shed + cancelled + waiting = offered", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5 }),
      fc.option(fc.integer({ min: 0, max: 100 })),
      fc.array(ops, { maxLength: 300 }),
      (maxQueue, baselineMs, sequence) => {
        const limit = fixed(2, baselineMs ?? undefined);
        const queue = new AdmissionQueue({ limit, maxQueue, targetMs: 5, intervalMs: 50 });
        const running: { admittedAt: number; inFlight: number }[] = [];
        const waiting = new Set<number>();
        let now = 0;
        let offered = 0;
        const apply = (changes: ReturnType<AdmissionQueue["expire"]>) => {
          for (const { id, inFlight } of changes.admitted) {
            assert.ok(waiting.delete(id), `admitted ${id} was waiting`);
            running.push({ admittedAt: now, inFlight });
          }
          for (const { id } of changes.shed) {
            assert.ok(waiting.delete(id), `shed ${id} was waiting`);
          }
        };
        for (const step of sequence) {
          now += step.dt;
          if (step.op === "offer") {
            offered++;
            const deadline = step.budget === null ? undefined : now + step.budget;
            const full = step.early ? queue.rejectIfFull(now) : undefined;
            const outcome = full === undefined
              ? queue.offer(now, { deadline })
              : { kind: "rejected" as const, reason: full };
            if (outcome.kind === "admitted") {
              running.push({ admittedAt: now, inFlight: outcome.inFlight });
            }
            if (outcome.kind === "queued") waiting.add(outcome.id);
            apply(queue.expire(now));
          } else if (step.op === "release") {
            const done = running.shift();
            if (done !== undefined) apply(queue.release(now, done));
          } else if (step.op === "expire") {
            apply(queue.expire(now));
          } else if (step.op === "cancel") {
            const ids = [...waiting];
            if (ids.length > 0) {
              const id = ids[step.pick % ids.length];
              assert.equal(queue.cancel(id), true);
              waiting.delete(id);
            }
          } else {
            limit.limit = step.to;
          }
          const stats = queue.stats(now);
          assert.equal(stats.offered, offered);
          assert.equal(accounted(stats), offered);
          assert.equal(stats.waiting, waiting.size);
          assert.equal(stats.inFlight, running.length);
          assert.ok(stats.waiting <= maxQueue);
          assert.equal(
            stats.turnedAway.queue_full + stats.turnedAway.sojourn + stats.turnedAway.budget,
            stats.rejected + stats.shed,
          );
          // Nobody waits while a place is free (after the drain that follows every step).
          if (step.op !== "limit" && step.op !== "cancel") {
            assert.ok(stats.waiting === 0 || stats.inFlight >= limit.limit);
          }
          // Nobody waits past its time.
          const next = queue.nextExpiry(now);
          if (step.op !== "limit" && step.op !== "cancel") {
            assert.ok(next === undefined || next > now);
          }
        }
      },
    ),
  );
});
