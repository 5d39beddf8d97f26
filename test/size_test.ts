import { assert } from "./_assert.ts";
import {
  type BundleSize,
  measureEntryPoints,
  measureWorker,
  SIZE_BUDGETS,
} from "../bench/_bundle_size.ts";

function withinBudget({ name, gzipBytes }: BundleSize): void {
  const budget = SIZE_BUDGETS[name];
  assert(budget !== undefined, `${name} has a budget in bench/_bundle_size.ts`);
  assert(
    gzipBytes <= budget,
    `${name} is ${gzipBytes} bytes min+gzip, over its budget of ${budget} (deno task size)`,
  );
}

Deno.test("fanOut alone and every entry point of the package stay within their size budgets", async () => {
  const sizes = await measureEntryPoints();
  const entries = Object.keys(SIZE_BUDGETS).filter((name) => !name.startsWith("the gateway"));
  assert(
    sizes.map(({ name }) => name).join() === entries.join(),
    "every entry point of deno.json has a budget, and every budget an entry point",
  );
  sizes.forEach(withinBudget);
});

Deno.test("the gateway Worker as wrangler bundles it stays within its size budget", async () => {
  const outdir = await Deno.makeTempDir({ prefix: "fanfare-worker-size-" });
  try {
    withinBudget(await measureWorker(outdir));
  } finally {
    await Deno.remove(outdir, { recursive: true });
  }
});
