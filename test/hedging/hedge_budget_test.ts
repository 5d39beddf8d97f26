import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { HedgeBudget } from "../../src/hedging/hedge_budget.ts";

Deno.test("a hedge budget starts full and allows a burst of hedges", () => {
  const budget = new HedgeBudget({ ratio: 0.05, burst: 3 });
  assertEquals([budget.tryTake(), budget.tryTake(), budget.tryTake()], [true, true, true]);
  assertEquals(budget.tryTake(), false);
});

Deno.test("a hedge budget earns one hedge per 1/ratio primaries once empty", () => {
  const budget = new HedgeBudget({ ratio: 0.05, burst: 1 });
  assert(budget.tryTake());
  for (let i = 0; i < 19; i++) budget.deposit();
  assertEquals(budget.tryTake(), false);
  budget.deposit();
  assertEquals(budget.tryTake(), true);
});

Deno.test("a hedge budget keeps hedges within burst plus ratio times primaries over any run", () => {
  const ratio = 0.05;
  const burst = 10;
  const budget = new HedgeBudget({ ratio, burst });
  let hedges = 0;
  // Every primary wants a hedge, as when the whole downstream is slow.
  for (let primaries = 1; primaries <= 10_000; primaries++) {
    budget.deposit();
    if (budget.tryTake()) hedges++;
    assert(hedges <= burst + ratio * primaries, `hedges ${hedges} after ${primaries} primaries`);
  }
  assert(hedges >= ratio * 10_000, `and no stingier than the ratio: ${hedges} hedges`);
});

Deno.test("a hedge budget never stores more than its burst", () => {
  const budget = new HedgeBudget({ ratio: 0.5, burst: 2 });
  for (let i = 0; i < 100; i++) budget.deposit();
  assertEquals(budget.tokens, 2);
});

Deno.test("a hedge budget takes back a refunded token up to its burst", () => {
  const budget = new HedgeBudget({ ratio: 0, burst: 1 });
  assert(budget.tryTake());
  budget.refund();
  budget.refund();
  assertEquals(budget.tokens, 1);
});

Deno.test("a hedge budget rejects a ratio outside [0, 1] and a burst below 1", () => {
  assertThrows(
    () => new HedgeBudget({ ratio: 1.5 }),
    /'ratio' must be in \[0, 1\]: current value is 1.5/,
  );
  assertThrows(
    () => new HedgeBudget({ burst: 0 }),
    /'burst' must be .* at least 1: current value is 0/,
  );
});
